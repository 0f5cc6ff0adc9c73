"""``xlsr-checkpoint from-hf`` and ``to-hf``: fairseq <-> transformers Wav2Vec2.

transformers' ``Wav2Vec2*`` classes are fairseq's wav2vec 2.0 under other names: the
same feature encoder (group norm in the first block as in BASE, ``feat_extract_norm
"group"`` = fairseq ``extractor_mode default``; layer norm in every block as in LARGE /
XLSR-53, ``"layer"`` = ``layer_norm``), the same post-LN or pre-LN transformer
(``do_stable_layer_norm`` = ``layer_norm_first``), the same Gumbel product quantiser.
So a conversion renames tensors and translates settings (both in
:mod:`xlsr_tools.hf_mapping`, one table each, read in both directions), and refuses
what one side cannot compute, naming the setting.

* ``from-hf`` writes an ordinary fairseq wav2vec 2.0 checkpoint (model ``wav2vec2``,
  task ``audio_pretraining``, plain tensors and a plain-dict config): this plugin continues
  pre-training from it (``model.init_checkpoint``) and fine-tunes it (``model.w2v_path``
  of ``xlsr_ctc``); so do stock fairseq and transformers' own conversion script.
  ``Wav2Vec2Model`` / ``Wav2Vec2ForCTC`` have no quantiser, ``project_q`` or
  ``final_proj``: those start from fairseq's initialisation (a note says so), and the CTC
  head of ``Wav2Vec2ForCTC`` is left out.
* ``to-hf`` writes ``Wav2Vec2ForPreTraining`` for a pre-trained checkpoint and
  ``Wav2Vec2ForCTC`` plus a processor for a CTC fine-tuned one (``xlsr_ctc`` or fairseq's
  ``wav2vec_ctc``). fairseq's dictionary has the CTC blank ``<s>`` at index 0 and
  ``<pad>`` at 1; transformers' tokenizers drop ``pad_token`` as the blank, so vocab.json
  swaps the two *names* and keeps every index (the logits are unchanged). Letters
  (``ltr``) decode with ``Wav2Vec2CTCTokenizer`` (``|`` between words); phonemes and words
  (``phn``, ``wrd``) with ``Wav2Vec2PhonemeCTCTokenizer``, which joins symbols with spaces
  as fairseq prints them.

Both directions keep ``normalize`` (fairseq ``task.normalize`` = the feature extractor's
``do_normalize``) and write atomically: a temporary file or folder beside the output,
renamed when complete. transformers is imported only here, inside the functions (the
``hf`` extra).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pickle
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch

from xlsr_tools.hf_mapping import (
    CTC_PREFIX, EXTRACTOR_MODES, ConversionError, fairseq_settings, hf_settings, rename, weight_rules,
)

__all__ = ["Conversion", "ConversionError", "from_hf", "register", "to_hf"]

HF_CLASSES = ("Wav2Vec2ForPreTraining", "Wav2Vec2Model", "Wav2Vec2ForCTC")
PRETRAINING_HEAD = ("quantizer.", "project_q.", "final_proj.")  # fairseq keys Wav2Vec2Model lacks
FAIRSEQ_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # fairseq Dictionary: blank, pad, eos, unk
HF_SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")  # the same indices as transformers names them
SEPARATED_LABELS = ("phn", "wrd")  # label kinds printed as space-separated symbols


@dataclass
class Conversion:
    """What a conversion wrote, and what the user should know about it."""

    source: Path
    output: Path
    kind: str  # "pre-trained" or "CTC fine-tuned"
    notes: List[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"{self.source} -> {self.output} ({self.kind})"]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


# -- fairseq checkpoints ----------------------------------------------------------------


def _plain(cfg):
    from omegaconf import OmegaConf

    if cfg is None or isinstance(cfg, dict):
        return cfg
    if OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    return vars(cfg)  # argparse.Namespace (w2v_args of old fine-tuned checkpoints)


def read_fairseq(path) -> Tuple[Dict, Dict, Dict]:
    """(full config, encoder model config, weights) of a fairseq checkpoint, as plain dicts;
    for a fine-tuned one the encoder config is its ``w2v_args.model``."""
    from xlsr_plugin.checkpoint import load_checkpoint, stored_model_config

    state = load_checkpoint(str(path))
    model = _plain(stored_model_config(state, str(path)))
    cfg = _plain(state.get("cfg")) or {}
    cfg["model"] = model
    w2v = model.get("w2v_args")
    if w2v is not None:
        w2v = _plain(w2v)
        if "model" not in w2v:  # an argparse namespace: fairseq's own conversion
            from fairseq.dataclass.utils import convert_namespace_to_omegaconf

            w2v = _plain(convert_namespace_to_omegaconf(argparse.Namespace(**w2v)))
        model["w2v_args"] = w2v
        encoder = _plain(w2v["model"])
    elif "w2v_path" in model:
        raise ConversionError(f"{path}: a fine-tuned model without w2v_args (its encoder's "
                              "settings); load and re-save it with fairseq first")
    else:
        encoder = model
    return cfg, encoder, state["model"]


def _write_atomically(out: Path, write, force: bool) -> None:
    """``write(tmp)`` into a temporary sibling of ``out``, then rename it to ``out`` (with
    ``force``, an existing ``out`` is moved aside first and removed once the new one is in
    place, or put back if that fails)."""
    out = Path(out)
    if out.exists() and not force:
        raise ConversionError(f"{out} exists: remove it, choose another name, or pass --force")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.")) / out.name
    try:
        write(tmp)
        old = tmp.parent / (out.name + ".old") if out.exists() else None
        if old:  # os.replace cannot put a folder over a non-empty folder, nor over a file
            os.replace(out, old)
        try:
            os.replace(tmp, out)
        except OSError:
            if old:
                os.replace(old, out)
            raise
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


# -- transformers -> fairseq ------------------------------------------------------------


def _import_transformers():
    try:
        import transformers

        importlib.import_module("transformers.models.wav2vec2.modeling_wav2vec2")
    except ImportError as e:
        raise ConversionError("the Hugging Face conversions need transformers: pip install "
                              f"'xlsr-plugin[hf]' ({e})") from None
    except OSError as e:  # a torchaudio built for another torch fails to load its library
        raise ConversionError(f"transformers' Wav2Vec2 could not be imported: {e}. A torchaudio that "
                              "does not match torch breaks it; nothing here needs torchaudio: "
                              "pip uninstall torchaudio") from None
    return transformers


def _fresh_fairseq_state(model_cfg: Dict, seed: int) -> Dict[str, torch.Tensor]:
    from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Config, Wav2Vec2Model

    fields = {k: v for k, v in model_cfg.items() if k in Wav2Vec2Config.__dataclass_fields__}
    fields["latent_temp"] = tuple(fields["latent_temp"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Wav2Vec2Model(Wav2Vec2Config(**fields)).state_dict()


def from_hf(hf_dir, out, normalize: Optional[bool] = None, force: bool = False, seed: int = 1) -> Conversion:
    """A transformers ``Wav2Vec2ForPreTraining`` / ``Wav2Vec2Model`` / ``Wav2Vec2ForCTC``
    directory (config.json and weights, read locally) into a fairseq checkpoint ``out``.
    ``normalize`` overrides ``do_normalize`` of preprocessor_config.json (one is needed);
    parts the directory lacks are initialised as fairseq does, from ``seed``."""
    transformers = _import_transformers()
    hf_dir, notes = Path(hf_dir), []
    if not (hf_dir / "config.json").is_file():
        raise ConversionError(f"{hf_dir}: no config.json; expected a directory written by "
                              "transformers' save_pretrained (config.json and model.safetensors)")
    config = transformers.AutoConfig.from_pretrained(hf_dir, local_files_only=True)
    model_cfg = fairseq_settings(config, str(hf_dir / "config.json"))
    names = [a for a in (config.architectures or []) if a in HF_CLASSES]
    if not names:
        raise ConversionError(f"{hf_dir / 'config.json'}: architectures={config.architectures}; this "
                              f"converts {', '.join(HF_CLASSES)} (set 'architectures' to the class the "
                              "weights are for)")
    try:
        model, info = getattr(transformers, names[0]).from_pretrained(
            hf_dir, local_files_only=True, output_loading_info=True)
    except pickle.UnpicklingError as e:  # transformers reads .bin files with weights_only=True
        weights = ", ".join(str(p) for p in sorted(hf_dir.glob("*.bin"))) or str(hf_dir)
        raise ConversionError(
            f"{weights}: refused to load: the weight file asks to unpickle something other than "
            "tensors, which could run code. Re-save it as model.safetensors in an environment you "
            f"trust. torch said: {str(e).strip().splitlines()[-1][:200]}") from None
    if info["missing_keys"]:
        raise ConversionError(f"{hf_dir}: weights missing for {sorted(info['missing_keys'])[:8]}: "
                              "the weight file does not match config.json")
    converted = _fairseq_weights(model.state_dict(), config, names[0], hf_dir, notes)
    del model

    fresh = _fresh_fairseq_state(model_cfg, seed)  # names, shapes, and fairseq's initialisation
    missing = [k for k in fresh if k not in converted]
    head = sorted({k.split(".")[0] for k in missing if k.startswith(PRETRAINING_HEAD)})
    if head:
        notes.append(f"{names[0]} has no {', '.join(head)}: initialised as fairseq does (continued "
                     "pre-training trains them; fine-tuning removes them)")
    if "mask_emb" in missing:
        notes.append("no masked_spec_embed (mask_time_prob and mask_feature_prob are 0): mask_emb "
                     "initialised as fairseq does (training with masks learns it)")
    converted.update({k: fresh[k] for k in missing})
    wrong = [f"{k} {tuple(converted[k].shape)} != {tuple(v.shape)}" for k, v in fresh.items()
             if converted[k].shape != v.shape] + sorted(set(converted) - set(fresh))
    if wrong:
        raise ConversionError(f"{hf_dir}: weights do not fit config.json: {wrong[:8]}")

    preprocessor = _preprocessor_config(hf_dir)
    task = _task_config(_normalize(preprocessor, hf_dir, normalize, notes), preprocessor)
    state = _fairseq_checkpoint(model_cfg, task, config, {k: converted[k] for k in fresh}, hf_dir, names[0])
    _write_atomically(Path(out), lambda tmp: torch.save(state, tmp), force)
    return Conversion(hf_dir, Path(out), "pre-trained", notes)


def _fairseq_weights(weights, config, hf_class: str, hf_dir: Path, notes: List[str]) -> Dict:
    """transformers' tensors under fairseq's names; the CTC head left out."""
    prefix = "" if hf_class == "Wav2Vec2Model" else "wav2vec2."
    mode = {v: k for k, v in EXTRACTOR_MODES.items()}[config.feat_extract_norm]
    rules = weight_rules(mode, fine_tuned=False, hf_prefix=prefix)
    converted, left = {}, []
    for key, value in weights.items():
        name = rename(key, rules, reverse=True)
        if name is not None:
            converted[name] = value.detach()
        elif not key.startswith("lm_head."):
            left.append(key)
    if left:
        raise ConversionError(f"{hf_dir}: tensors with no fairseq counterpart: {left[:8]}")
    if "lm_head.weight" in weights:
        notes.append(f"the CTC output layer (lm_head, {weights['lm_head.weight'].shape[0]} symbols) is "
                     "left out: fine-tune the converted encoder with xlsr_ctc and your dictionary")
    if config.conv_dim[-1] == config.hidden_size:  # fairseq has no projection between equal sizes
        w, b = converted.pop("post_extract_proj.weight"), converted.pop("post_extract_proj.bias")
        if not (torch.equal(w, torch.eye(w.shape[0], dtype=w.dtype)) and not b.any()):
            raise ConversionError(f"{hf_dir}: feature_projection.projection maps {w.shape[1]} to "
                                  f"{w.shape[0]} channels and is not the identity; fairseq has no "
                                  "projection between equal sizes")
    return converted


def _preprocessor_config(hf_dir: Path) -> Dict:
    path = hf_dir / "preprocessor_config.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _normalize(preprocessor: Dict, hf_dir: Path, normalize: Optional[bool], notes: List[str]) -> bool:
    stored = preprocessor.get("do_normalize")
    if normalize is None and stored is None:
        raise ConversionError(
            f"{hf_dir}: no preprocessor_config.json with do_normalize, so it is unknown whether "
            "the model was trained on normalised waveforms: pass --normalize (XLSR-53, XLS-R and "
            "the other large models) or --no-normalize (fairseq's BASE models)")
    if normalize is not None and stored is not None and normalize != bool(stored):
        notes.append(f"normalize={normalize} as asked, although preprocessor_config.json says "
                     f"do_normalize={stored}")
    return bool(stored) if normalize is None else normalize


def _task_config(normalize: bool, preprocessor: Dict):
    from fairseq.tasks.audio_pretraining import AudioPretrainingConfig
    from omegaconf import OmegaConf

    task = OmegaConf.structured(AudioPretrainingConfig())
    task.data = ""  # a converted model has no data folder; fine-tuning sets its own
    task.normalize = normalize
    task.sample_rate = int(preprocessor.get("sampling_rate", task.sample_rate))
    return task


def _fairseq_checkpoint(model_cfg, task, config, weights, hf_dir, hf_class) -> Dict:
    """What fairseq-train saves, without training state: a plain-dict config whose model is
    ``wav2vec2`` and task ``audio_pretraining`` (stock fairseq reads it too)."""
    from fairseq.dataclass.configs import FairseqConfig
    from omegaconf import OmegaConf, open_dict

    cfg = OmegaConf.structured(FairseqConfig())
    with open_dict(cfg):
        cfg.task = task
        cfg.task._name = "audio_pretraining"
        cfg.model = dict(model_cfg, _name="wav2vec2")
        cfg.criterion = {"_name": "wav2vec", "infonce": True, "log_keys": ["prob_perplexity", "code_perplexity", "temp"],
                         "loss_weights": [float(config.diversity_loss_weight), 10.0]}
    return {
        "args": None,
        "cfg": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
        "model": weights,
        "optimizer_history": [{"criterion_name": "Wav2vecCriterion", "optimizer_name": None,
                               "lr_scheduler_state": {}, "num_updates": 0}],
        "extra_state": {"converted_from": {"format": "transformers", "class": hf_class,
                                           "path": str(Path(hf_dir).resolve())}},
        "last_optimizer_state": None,
    }


# -- fairseq -> transformers ------------------------------------------------------------


def _symbols(cfg: Dict, ckpt: Path, dictionary: Optional[str], n_out: int) -> List[str]:
    stored = cfg["model"].get("target_symbols")
    symbols = stored.split() if stored else None
    if dictionary:
        from fairseq.data import Dictionary

        given = Dictionary.load(str(dictionary)).symbols
        if symbols is not None and given != symbols:
            raise ConversionError(f"{dictionary} is not the dictionary {ckpt} was fine-tuned with "
                                  "(its model.target_symbols differ): leave --dict out")
        symbols = given
    if symbols is None:
        raise ConversionError(f"{ckpt}: no dictionary stored (fairseq's wav2vec_ctc keeps none): "
                              "pass --dict with the dict.<labels>.txt it was fine-tuned with")
    if tuple(symbols[:4]) != FAIRSEQ_SPECIALS or len(symbols) != n_out:
        raise ConversionError(f"{ckpt}: the dictionary has {len(symbols)} symbols starting "
                              f"{symbols[:4]}, the output layer {n_out}; expected fairseq's "
                              f"{' '.join(FAIRSEQ_SPECIALS)} first and one output per symbol")
    return symbols


def _tokenizer(transformers, vocab_file: Path, labels: Optional[str]):
    special = dict(zip(("pad_token", "bos_token", "eos_token", "unk_token"), HF_SPECIALS))
    if labels in SEPARATED_LABELS:  # symbols printed with spaces between, "|" a symbol
        return transformers.Wav2Vec2PhonemeCTCTokenizer(
            str(vocab_file), do_phonemize=False, phone_delimiter_token=" ", word_delimiter_token=None,
            clean_up_tokenization_spaces=False, **special)
    return transformers.Wav2Vec2CTCTokenizer(  # letters, "|" between words (fairseq's "letter")
        str(vocab_file), word_delimiter_token="|", do_lower_case=False,
        clean_up_tokenization_spaces=False, **special)


def to_hf(ckpt, out_dir, dictionary: Optional[str] = None, force: bool = False) -> Conversion:
    """A fairseq checkpoint into a transformers directory: ``Wav2Vec2ForPreTraining`` for a
    pre-trained model, ``Wav2Vec2ForCTC`` with a processor for a CTC fine-tuned one
    (``dictionary``: its dict.<labels>.txt, if the checkpoint stores no symbols)."""
    transformers = _import_transformers()
    ckpt, notes = Path(ckpt), []
    cfg, encoder, weights = read_fairseq(ckpt)
    fine_tuned = "w2v_args" in cfg["model"]
    settings = hf_settings(encoder, f"{ckpt} ({'w2v_args.' if fine_tuned else ''}model)", notes)
    task = cfg.get("task") or {}
    normalize = bool(task.get("normalize", encoder.get("normalize", False)))
    mode = encoder.get("extractor_mode", "default")
    if fine_tuned:
        ctc = cfg["model"]
        symbols = _symbols(cfg, ckpt, dictionary, weights["w2v_encoder.proj.weight"].shape[0])
        settings.update(vocab_size=len(symbols), pad_token_id=0, bos_token_id=1, eos_token_id=2,
                        final_dropout=ctc.get("final_dropout", 0.0),
                        apply_spec_augment=bool(ctc.get("apply_mask", False)),
                        ctc_zero_infinity=bool((cfg.get("criterion") or {}).get("zero_infinity", False)))
        weights = _fold_blank_weight(weights, ctc, ckpt)
        tokenizer_class = ("Wav2Vec2PhonemeCTCTokenizer, symbols joined by spaces"
                           if task.get("labels") in SEPARATED_LABELS else "Wav2Vec2CTCTokenizer, '|' between words")
        notes.append(f"vocab.json: {len(symbols)} symbols at fairseq's indices, the blank <s> named <pad> "
                     f"(transformers' blank) and <pad> named <s>; {task.get('labels')} labels: {tokenizer_class}")
    else:
        if not encoder.get("quantize_targets", True):
            raise ConversionError(f"{ckpt}: quantize_targets=False (no quantiser); transformers' "
                                  "Wav2Vec2ForPreTraining always has one")
        loss_weights = (cfg.get("criterion") or {}).get("loss_weights") or []
        if loss_weights:
            settings["diversity_loss_weight"] = float(loss_weights[0])
    hf_weights = _hf_weights(weights, weight_rules(mode, fine_tuned), settings["hidden_size"], fine_tuned, ckpt)
    cls = transformers.Wav2Vec2ForCTC if fine_tuned else transformers.Wav2Vec2ForPreTraining
    model = _built(cls, transformers.Wav2Vec2Config(**settings), hf_weights, ckpt)
    feature_extractor = transformers.Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=int(task.get("sample_rate", 16000)), padding_value=0.0,
        do_normalize=normalize, return_attention_mask=mode == "layer_norm")

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        if not fine_tuned:
            feature_extractor.save_pretrained(tmp)
            return
        vocab = tmp / "vocab.json"
        names = list(HF_SPECIALS) + symbols[4:]
        vocab.write_text(json.dumps({s: i for i, s in enumerate(names)}, ensure_ascii=False, indent=1))
        tokenizer = _tokenizer(transformers, vocab, task.get("labels"))
        transformers.Wav2Vec2Processor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(tmp)

    _write_atomically(Path(out_dir), write, force)
    return Conversion(ckpt, Path(out_dir), "CTC fine-tuned" if fine_tuned else "pre-trained", notes)


def _hf_weights(weights: Dict, rules, hidden_size: int, fine_tuned: bool, ckpt: Path) -> Dict:
    """fairseq's tensors under transformers' names."""
    weights = {k: v for k, v in weights.items() if k != "dictionary_checksum"}  # xlsr_ctc's own check
    prefix = CTC_PREFIX[0] if fine_tuned else ""
    if prefix + "post_extract_proj.weight" not in weights:
        # equal sizes: fairseq has no projection, transformers always one: the identity
        like = weights[prefix + "layer_norm.weight"]
        weights = dict(weights, **{prefix + "post_extract_proj.weight": torch.eye(hidden_size, dtype=like.dtype),
                                   prefix + "post_extract_proj.bias": torch.zeros_like(like)})
    converted, left = {}, []
    for key, value in weights.items():
        name = rename(key, rules)
        if name is None:
            left.append(key)
        else:
            converted[name] = value
    if left:
        raise ConversionError(f"{ckpt}: tensors with no transformers counterpart: {left[:8]}")
    return converted


def _built(cls, config, weights: Dict, ckpt: Path):
    """``cls(config)`` holding ``weights``, built on the meta device: no random
    initialisation of a large model whose every tensor is replaced."""
    with torch.device("meta"):
        model = cls(config)
    if "wav2vec2.masked_spec_embed" not in model.state_dict():
        weights.pop("wav2vec2.masked_spec_embed", None)  # no masking configured, no mask embedding
    try:
        model.load_state_dict(weights, strict=True, assign=True)
    except RuntimeError as e:
        raise ConversionError(f"{ckpt}: weights do not fit the configuration: {e}") from None
    unset = [n for n, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if unset:
        raise ConversionError(f"{ckpt}: no weights for {unset[:8]}")
    return model.eval()


def _fold_blank_weight(weights: Dict, ctc: Dict, ckpt: Path) -> Dict:
    """fairseq's ``blank_weight`` (added to the blank's logit at decoding) as the output
    layer's bias, where transformers computes it."""
    blank_weight = float(ctc.get("blank_weight", 0.0) or 0.0)
    if blank_weight == 0:
        return weights
    if ctc.get("blank_mode", "add") != "add":
        raise ConversionError(f"{ckpt}: blank_mode={ctc.get('blank_mode')!r} replaces the blank's "
                              "logit, which transformers cannot express; use blank_mode=add or blank_weight=0")
    bias = weights["w2v_encoder.proj.bias"].clone()
    bias[0] += blank_weight
    return dict(weights, **{"w2v_encoder.proj.bias": bias})


# -- command line ----------------------------------------------------------------------


def _run(convert):
    def run(args) -> int:
        from xlsr_plugin.checkpoint import NotACheckpointError, UnsafeCheckpointError

        try:
            result = convert(args)
        except (ConversionError, FileNotFoundError, UnsafeCheckpointError, NotACheckpointError) as e:
            print(f"xlsr-checkpoint {args.command}: error: {e}", file=sys.stderr)
            return 2
        print(result.summary())
        return 0

    return run


def register(sub) -> None:
    """Add the ``from-hf`` and ``to-hf`` subparsers (each sets ``run``)."""
    p = sub.add_parser(
        "from-hf", help="a transformers Wav2Vec2 directory -> a fairseq checkpoint",
        description="Convert a local transformers Wav2Vec2ForPreTraining / Wav2Vec2Model / Wav2Vec2ForCTC "
        "directory into a fairseq wav2vec 2.0 checkpoint (model wav2vec2) that model.init_checkpoint "
        "(continued pre-training) and model.w2v_path (fine-tuning) accept. Parts the directory lacks "
        "(quantiser, project_q, final_proj) are initialised as fairseq does; a CTC head is left out.")
    p.add_argument("hf_dir", help="local directory with config.json and model.safetensors or pytorch_model.bin")
    p.add_argument("out", help="fairseq checkpoint to write (model.init_checkpoint / model.w2v_path)")
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                   help="whether the model was trained on normalised waveforms; default: "
                   "do_normalize of the directory's preprocessor_config.json")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.set_defaults(run=_run(lambda a: from_hf(a.hf_dir, a.out, a.normalize, a.force)))

    p = sub.add_parser(
        "to-hf", help="a fairseq checkpoint -> a transformers Wav2Vec2 directory",
        description="Convert a pre-trained fairseq wav2vec 2.0 / XLSR checkpoint into a transformers "
        "Wav2Vec2ForPreTraining directory, or a CTC fine-tuned one (xlsr_ctc, wav2vec_ctc) into "
        "Wav2Vec2ForCTC with its processor (vocab.json, tokenizer and feature extractor), loadable "
        "offline with from_pretrained(OUT_DIR).")
    p.add_argument("ckpt", help="pre-trained or CTC fine-tuned fairseq checkpoint")
    p.add_argument("out_dir", help="directory to write (config.json, model.safetensors, processor files)")
    p.add_argument("--dict", dest="dictionary", default=None,
                   help="dict.<labels>.txt of a fine-tuned checkpoint that stores no dictionary "
                   "(fairseq's wav2vec_ctc); xlsr_ctc checkpoints store theirs")
    p.add_argument("--force", action="store_true", help="replace OUT_DIR if it exists")
    p.set_defaults(run=_run(lambda a: to_hf(a.ckpt, a.out_dir, a.dictionary, a.force)))

