"""What corresponds to what between fairseq's wav2vec 2.0 and transformers' Wav2Vec2.

One table of tensor names (:data:`BASE_RULES` and the feature-encoder norm, pre-training
head and CTC head rules), read in either direction by :func:`rename`, and the settings:
:data:`SAME_SETTINGS` (one value, two names), :func:`hf_settings` (fairseq model config ->
transformers ``Wav2Vec2Config`` arguments) and :func:`fairseq_settings` (the reverse), each
refusing, by name, what the other side cannot compute. Pure data and functions:
``xlsr_tools.hf`` does the reading, building and writing.
"""

from __future__ import annotations

import ast
import functools
import re
from typing import Dict, List, Optional, Tuple

# fairseq Wav2Vec2Config field -> transformers Wav2Vec2Config field, the same value on both sides
SAME_SETTINGS = (
    ("encoder_layers", "num_hidden_layers"),
    ("encoder_embed_dim", "hidden_size"),
    ("encoder_ffn_embed_dim", "intermediate_size"),
    ("encoder_attention_heads", "num_attention_heads"),
    ("conv_bias", "conv_bias"),
    ("conv_pos", "num_conv_pos_embeddings"),
    ("conv_pos_groups", "num_conv_pos_embedding_groups"),
    ("latent_vars", "num_codevectors_per_group"),
    ("latent_groups", "num_codevector_groups"),
    ("dropout", "hidden_dropout"),  # after the positional conv, attention and FFN
    ("attention_dropout", "attention_dropout"),
    ("activation_dropout", "activation_dropout"),
    ("dropout_input", "feat_proj_dropout"),
    ("dropout_features", "feat_quantizer_dropout"),
    ("encoder_layerdrop", "layerdrop"),
    ("mask_prob", "mask_time_prob"),
    ("mask_length", "mask_time_length"),
    ("mask_channel_prob", "mask_feature_prob"),
    ("mask_channel_length", "mask_feature_length"),
    ("num_negatives", "num_negatives"),
    ("logit_temp", "contrastive_logits_temperature"),
)
EXTRACTOR_MODES = {"default": "group", "layer_norm": "layer"}  # fairseq -> transformers
# fairseq activation -> transformers ACT2FN name computing the same function
ACTIVATIONS = {"gelu": "gelu", "relu": "relu", "tanh": "tanh", "linear": "linear",
               "gelu_accurate": "gelu_new", "gelu_fast": "gelu_new"}
# fairseq settings that change what the network computes and that transformers cannot
# express: (field, the value transformers computes as)
UNSUPPORTED = (
    ("layer_type", "transformer"), ("quantize_input", False), ("target_glu", False),
    ("quantizer_depth", 1), ("pos_conv_depth", 1), ("crop_seq_to_multiple", 1),
    ("conv_pos_batch_norm", False),
)
# fairseq training settings with no transformers counterpart: dropped with a note
TRAINING_ONLY = (
    "feature_grad_mult", "latent_temp", "mask_selection", "mask_other", "no_mask_overlap",
    "mask_min_space", "require_same_masks", "mask_dropout", "mask_channel_before",
    "mask_channel_selection", "mask_channel_other", "no_mask_channel_overlap",
    "mask_channel_min_space", "negatives_from_everywhere", "cross_sample_negatives",
    "codebook_negatives",
)

# Tensor names of the wav2vec 2.0 body: fairseq (pre-training model) <-> transformers
# (Wav2Vec2Model). {i} is a layer index, {p} weight or bias, {proj} an attention projection.
BASE_RULES = (
    ("feature_extractor.conv_layers.{i}.0.{p}", "feature_extractor.conv_layers.{i}.conv.{p}"),
    ("layer_norm.{p}", "feature_projection.layer_norm.{p}"),
    ("post_extract_proj.{p}", "feature_projection.projection.{p}"),
    ("mask_emb", "masked_spec_embed"),
    ("encoder.pos_conv.0.weight_g", "encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
    ("encoder.pos_conv.0.weight_v", "encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
    ("encoder.pos_conv.0.bias", "encoder.pos_conv_embed.conv.bias"),
    ("encoder.layer_norm.{p}", "encoder.layer_norm.{p}"),
    ("encoder.layers.{i}.self_attn.{proj}.{p}", "encoder.layers.{i}.attention.{proj}.{p}"),
    ("encoder.layers.{i}.self_attn_layer_norm.{p}", "encoder.layers.{i}.layer_norm.{p}"),
    ("encoder.layers.{i}.fc1.{p}", "encoder.layers.{i}.feed_forward.intermediate_dense.{p}"),
    ("encoder.layers.{i}.fc2.{p}", "encoder.layers.{i}.feed_forward.output_dense.{p}"),
    ("encoder.layers.{i}.final_layer_norm.{p}", "encoder.layers.{i}.final_layer_norm.{p}"),
)
# the feature encoder's norm: fairseq nests the layer norm in a Sequential with transposes
CONV_NORM_RULES = {
    "default": ("feature_extractor.conv_layers.{i}.2.{p}", "feature_extractor.conv_layers.{i}.layer_norm.{p}"),
    "layer_norm": ("feature_extractor.conv_layers.{i}.2.1.{p}", "feature_extractor.conv_layers.{i}.layer_norm.{p}"),
}
HEAD_RULES = (  # Wav2Vec2ForPreTraining's own modules (top level on both sides)
    ("quantizer.vars", "quantizer.codevectors"),
    ("quantizer.weight_proj.{p}", "quantizer.weight_proj.{p}"),
    ("project_q.{p}", "project_q.{p}"),
    ("final_proj.{p}", "project_hid.{p}"),
)
CTC_PREFIX = ("w2v_encoder.w2v_model.", "wav2vec2.")  # fine-tuned body: fairseq, transformers
CTC_HEAD_RULE = ("w2v_encoder.proj.{p}", "lm_head.{p}")
_PLACEHOLDERS = {"i": r"\d+", "p": "weight|bias", "proj": "[qkv]_proj|out_proj"}


class ConversionError(ValueError):
    """A checkpoint or directory that cannot be converted (the message says why and what to do)."""


# -- tensor names -----------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _compile(template: str) -> re.Pattern:
    pattern = re.escape(template)
    for name, alternatives in _PLACEHOLDERS.items():
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>{alternatives})")
    return re.compile(pattern + "$")


def rename(key: str, rules, reverse: bool = False) -> Optional[str]:
    """``key`` renamed by the first rule whose fairseq (or, ``reverse``, transformers)
    side matches it whole; None if none does."""
    for rule in rules:
        src, dst = (rule[1], rule[0]) if reverse else rule
        found = _compile(src).match(key)
        if found:
            return dst.format(**found.groupdict())
    return None


def weight_rules(extractor_mode: str, fine_tuned: bool, hf_prefix: str = "wav2vec2."):
    """(fairseq name, transformers name) rules for one model; prefixes included."""
    body = BASE_RULES + (CONV_NORM_RULES[extractor_mode],)
    fs_prefix = CTC_PREFIX[0] if fine_tuned else ""
    rules = tuple((fs_prefix + f, hf_prefix + h) for f, h in body)
    return rules + ((CTC_HEAD_RULE,) if fine_tuned else HEAD_RULES)


# -- settings ---------------------------------------------------------------------------


def parse_conv_layers(spec: str) -> List[Tuple[int, int, int]]:
    """fairseq's ``conv_feature_layers`` (``"[(512, 10, 5)] + [(512, 3, 2)] * 4 + ..."``),
    read without ``eval``: lists of int triples, ``+`` and ``*`` only."""

    def value(node):
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [value(e) for e in node.elts]
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Mult) and max(abs(x) for x in (left, right) if type(x) is int) > 1000:
                raise ValueError("a repeat count over 1000")
            return left + right if isinstance(node.op, ast.Add) else left * right
        raise ValueError(ast.dump(node))

    try:
        layers = value(ast.parse(spec, mode="eval").body)
        if not layers or not all(isinstance(l, list) and len(l) == 3 for l in layers):
            raise ValueError("not a list of (dim, kernel, stride)")
    except (SyntaxError, ValueError, TypeError) as e:
        raise ConversionError(f"conv_feature_layers {spec!r} is not a list of (dim, kernel, stride) "
                              f"triples ({e})") from None
    return [tuple(l) for l in layers]


def format_conv_layers(dims, kernels, strides) -> str:
    """The inverse of :func:`parse_conv_layers`, runs of equal layers as ``[(d, k, s)] * n``."""
    parts, layers = [], list(zip(dims, kernels, strides))
    while layers:
        n = 1
        while n < len(layers) and layers[n] == layers[0]:
            n += 1
        parts.append(f"[{tuple(layers[0])}]" + (f" * {n}" if n > 1 else ""))
        layers = layers[n:]
    return " + ".join(parts)


def _fairseq_defaults() -> Dict:
    from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Config
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.structured(Wav2Vec2Config()), enum_to_str=True)


def hf_settings(model_cfg, where: str, notes: List[str]) -> Dict:
    """transformers ``Wav2Vec2Config`` keyword arguments for a fairseq wav2vec 2.0 model
    config (a checkpoint's ``cfg.model``, or ``w2v_args.model`` of a fine-tuned one)."""
    defaults = _fairseq_defaults()

    def get(name):
        return model_cfg.get(name, defaults.get(name))

    problems = [f"{where}: {name}={get(name)!r} (transformers computes {name}={ok!r})"
                for name, ok in UNSUPPORTED if get(name) is not None and get(name) != ok]
    if get("extractor_mode") not in EXTRACTOR_MODES:
        problems.append(f"{where}: extractor_mode={get('extractor_mode')!r} (transformers: "
                        f"{' or '.join(EXTRACTOR_MODES)})")
    if get("activation_fn") not in ACTIVATIONS:
        problems.append(f"{where}: activation_fn={get('activation_fn')!r} (transformers computes "
                        f"{', '.join(ACTIVATIONS)})")
    if problems:
        raise ConversionError("cannot be expressed as a transformers Wav2Vec2 model: "
                              + "; ".join(problems))
    dropped = [f"{n}={get(n)!r}" for n in TRAINING_ONLY if n in defaults and get(n) != defaults[n]]
    if dropped:
        notes.append("training settings transformers' Wav2Vec2Config has no field for, not "
                     "carried over: " + ", ".join(dropped))
    dims, kernels, strides = zip(*parse_conv_layers(get("conv_feature_layers")))
    final_dim = get("final_dim") or get("encoder_embed_dim")
    settings = {hf: get(fs) for fs, hf in SAME_SETTINGS}
    settings.update(
        feat_extract_norm=EXTRACTOR_MODES[get("extractor_mode")],
        do_stable_layer_norm=bool(get("layer_norm_first")),
        conv_dim=list(dims), conv_kernel=list(kernels), conv_stride=list(strides),
        hidden_act=ACTIVATIONS[get("activation_fn")], feat_extract_activation="gelu",
        layer_norm_eps=1e-5, mask_time_min_masks=2, mask_feature_min_masks=0,
        proj_codevector_dim=final_dim, codevector_dim=get("latent_dim") or final_dim,
    )
    return settings


def fairseq_settings(config, where: str) -> Dict:
    """fairseq ``Wav2Vec2Config`` fields for a transformers ``Wav2Vec2Config``."""
    reverse_act = {hf: fs for fs, hf in ACTIVATIONS.items() if fs != "gelu_fast"}
    problems = []
    if config.model_type != "wav2vec2":
        problems.append(f"model_type is {config.model_type!r}, not 'wav2vec2' (HuBERT, "
                        "Wav2Vec2-Conformer, Data2VecAudio, ... are other networks)")
    checks = (("feat_extract_norm", config.feat_extract_norm in ("group", "layer"), "group or layer"),
              ("feat_extract_activation", config.feat_extract_activation == "gelu", "gelu"),
              ("hidden_act", config.hidden_act in reverse_act, " or ".join(reverse_act)),
              ("layer_norm_eps", abs(config.layer_norm_eps - 1e-5) < 1e-12, "1e-5"),
              ("add_adapter", not getattr(config, "add_adapter", False), "false"),
              ("adapter_attn_dim", getattr(config, "adapter_attn_dim", None) is None, "null"))
    problems += [f"{name}={getattr(config, name, None)!r} (fairseq computes {want})"
                 for name, ok, want in checks if not ok]
    if problems:
        raise ConversionError(f"{where}: cannot be expressed as a fairseq wav2vec 2.0 model: "
                              + "; ".join(problems))
    settings = _fairseq_defaults()
    settings.update({fs: getattr(config, hf) for fs, hf in SAME_SETTINGS})
    settings.update(
        extractor_mode={v: k for k, v in EXTRACTOR_MODES.items()}[config.feat_extract_norm],
        layer_norm_first=bool(config.do_stable_layer_norm),
        conv_feature_layers=format_conv_layers(config.conv_dim, config.conv_kernel, config.conv_stride),
        activation_fn=reverse_act[config.hidden_act],
        final_dim=config.proj_codevector_dim, latent_dim=config.codevector_dim,
        quantize_targets=True,
    )
    return settings
