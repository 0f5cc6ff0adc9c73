"""Layer-wise representations of a wav2vec 2.0 / XLSR model: what ``xlsr-extract`` writes.

One forward pass of fairseq's ``Wav2Vec2Model.extract_features`` (eval mode, no masking)
gives every representation of the paper's Figure 1 (Conneau et al. 2020):

* ``cnn``: the feature encoder's output z_t (the convolutions, then the model's
  ``layer_norm``; *before* ``post_extract_proj``), 512 dimensions in the released models.
  It is what the quantizer reads, and what Hugging Face calls ``extract_features``.
* ``codes``: the quantizer's choice per frame, one codebook index per group (G columns,
  0..V-1; integers). Codebook analyses (which entries each language uses) need these.
* ``quantized``: q_t, the quantized vector as the contrastive loss sees it: the chosen
  entries of the G codebooks concatenated, then the linear map ``project_q``
  (``final_dim`` dimensions). Only pre-trained checkpoints have a quantizer; fine-tuning
  removes it.
* ``layer_0``: the transformer's input (``post_extract_proj``, plus the convolutional
  position embedding; then the first layer norm in post-LN models, BASE).
* ``layer_1`` .. ``layer_N``: the output of each transformer block (fairseq's
  ``layer_results``). In pre-LN models (LARGE, XLSR-53, XLS-R) these are the residual
  stream, *not* normalised; fairseq applies the encoder's final layer norm only after the
  last block.
* ``final``: the encoder output c_t that the contrastive head and CTC fine-tuning use:
  ``layer_N`` after that final layer norm in pre-LN models; identical to ``layer_N`` in
  post-LN models.

Hugging Face's ``hidden_states`` are ``layer_0 .. layer_N`` for post-LN models and
``layer_0 .. layer_{N-1}, final`` for pre-LN ones (their last entry is normalised).

All have one row per frame (50 per second at 16 kHz: stride 320 samples, receptive
field 400), the same frames for every layer, so one index serves all of them.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch
from fairseq import models
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from omegaconf import DictConfig, OmegaConf, open_dict

# importing xlsr_plugin (this does) registers xlsr_base / xlsr_large / xlsr_ctc with fairseq
from xlsr_plugin.checkpoint import NotACheckpointError, UnsafeCheckpointError, load_checkpoint

ENCODER_PREFIX = "w2v_encoder.w2v_model."  # fine-tuned (CTC) checkpoints keep the encoder here
QUANTIZER_LAYERS = ("codes", "quantized")


class ExtractError(ValueError):
    """Bad input for an extraction: the message names the file (and line) and the fix."""


@dataclass
class Encoder:
    """A wav2vec 2.0 model ready to run, with what a reader of its features needs."""

    model: torch.nn.Module  # fairseq Wav2Vec2Model, eval mode
    checkpoint: str
    source: str  # "pre-trained" or "fine-tuned (<arch>): its encoder"
    arch: str
    normalize: bool
    sample_rate: int
    stride: int  # samples per frame
    receptive_field: int  # samples the first frame needs

    @property
    def num_layers(self) -> int:
        return len(self.model.encoder.layers)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.stride

    @property
    def has_quantizer(self) -> bool:
        return getattr(self.model, "quantizer", None) is not None

    def layer_names(self) -> List[str]:
        """Every representation this model can give, in forward order."""
        names = ["cnn"] + (list(QUANTIZER_LAYERS) if self.has_quantizer else [])
        return names + [f"layer_{i}" for i in range(self.num_layers + 1)] + ["final"]

    def dims(self) -> Dict[str, int]:
        """Row width per representation (``codes``: one column per codebook group)."""
        m = self.model
        out = {"cnn": m.layer_norm.weight.numel()}
        if self.has_quantizer:
            out["codes"] = m.quantizer.groups
            out["quantized"] = m.project_q.out_features
        width = m.encoder.embedding_dim
        out.update({f"layer_{i}": width for i in range(self.num_layers + 1)}, final=width)
        return out

    def num_frames(self, samples):
        """Frames the model gives for utterances of ``samples`` (int or int64 array)."""
        return (samples - self.receptive_field) // self.stride + 1

    def resolve_layers(self, spec: str) -> List[str]:
        """``all`` or a comma list of names (``layer_-1`` is the last block) -> names in
        forward order; unknown names and quantizer outputs a model lacks are errors."""
        known = self.layer_names()
        if spec.strip() == "all":
            return known
        wanted = []
        for name in (s.strip() for s in spec.split(",") if s.strip()):
            if re.fullmatch(r"layer_-\d+", name):
                name = f"layer_{self.num_layers + 1 + int(name[6:])}"
            if name in QUANTIZER_LAYERS and not self.has_quantizer:
                raise ExtractError(
                    f"{self.checkpoint}: --layers asks for {name!r}, but this checkpoint has no "
                    f"quantizer ({self.source}; fine-tuning removes it). Extract quantized "
                    "targets from the pre-trained checkpoint it was fine-tuned from, or drop "
                    f"{name!r} from --layers"
                )
            if name not in known:
                raise ExtractError(f"--layers: unknown representation {name!r}; this model has: {', '.join(known)}")
            wanted.append(name)
        if not wanted:
            raise ExtractError("--layers is empty")
        return [n for n in known if n in wanted]


def _conv_geometry(conv_feature_layers: str):
    stride, field = 1, 1
    for _, kernel, step in eval(conv_feature_layers):
        field += (kernel - 1) * stride
        stride *= step
    return stride, field


def _as_config(cfg) -> DictConfig:
    if isinstance(cfg, argparse.Namespace):
        return convert_namespace_to_omegaconf(cfg)
    return cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)


def load_encoder(path: str, device: str = "cpu") -> Encoder:
    """The wav2vec 2.0 model in a checkpoint of any fairseq era (read with
    ``xlsr_plugin.checkpoint.load_checkpoint``): a pre-trained model as it is, a
    fine-tuned CTC model (``xlsr_ctc``, ``wav2vec_ctc``) as its encoder. Built from the
    stored config alone: no data directory, dictionary or pre-training file is needed."""
    try:
        state = load_checkpoint(path)
    except FileNotFoundError:
        raise ExtractError(f"{path}: no such checkpoint") from None
    except (UnsafeCheckpointError, NotACheckpointError) as e:  # already names the file
        raise ExtractError(str(e)) from None
    cfg = state.get("cfg")
    if cfg is None or cfg.get("model") is None:
        raise ExtractError(f"{path}: no model configuration stored (neither 'cfg' nor 'args')")
    arch = cfg.model.get("_name") or "?"
    if "w2v_args" in cfg.model:  # fine-tuned: the pre-trained config is nested
        if cfg.model.w2v_args is None:
            raise ExtractError(f"{path}: a fine-tuned ({arch}) checkpoint without w2v_args")
        pre = _as_config(cfg.model.w2v_args)
        weights = {k[len(ENCODER_PREFIX):]: v for k, v in state["model"].items() if k.startswith(ENCODER_PREFIX)}
        source = f"fine-tuned ({arch}): its encoder"
        task_cfg = cfg.get("task") or pre.task
    else:
        pre, weights, source, task_cfg = cfg, state["model"], "pre-trained", cfg.get("task") or {}
    model_cfg = pre.model
    with open_dict(model_cfg):
        if model_cfg.get("init_checkpoint"):  # the weights are loaded below, not from that file
            model_cfg.init_checkpoint = None
    model = models.build_model(model_cfg, None, from_checkpoint=True)
    if source != "pre-trained":
        model.remove_pretraining_modules()
    model.load_state_dict(weights, strict=True)
    model.eval().to(device)
    normalize = task_cfg.get("normalize", model_cfg.get("normalize", False))
    stride, field = _conv_geometry(model.cfg.conv_feature_layers)
    return Encoder(
        model=model, checkpoint=path, source=source, arch=arch, normalize=bool(normalize),
        sample_rate=int(task_cfg.get("sample_rate", 16000) or 16000), stride=stride, receptive_field=field,
    )


@torch.inference_mode()
def forward(encoder: Encoder, source: torch.Tensor, padding_mask: Optional[torch.Tensor],
            wanted: List[str]) -> Dict[str, torch.Tensor]:
    """The ``wanted`` representations of a batch (B x samples, ``padding_mask`` True on
    padding): name -> B x T x D tensor (``codes``: B x T x G integers). Rows past an
    utterance's ``num_frames`` are padding. The transformer stops after the last block
    asked for."""
    model = encoder.model
    blocks = [int(n[6:]) for n in wanted if n.startswith("layer_")]
    last = encoder.num_layers if "final" in wanted else max(blocks, default=0)
    stop = None if last >= encoder.num_layers else max(last - 1, 0)
    captured = {}
    hook = None
    if "layer_0" in wanted:
        hook = model.encoder.layers[0].register_forward_pre_hook(
            lambda module, args: captured.setdefault("layer_0", args[0])
        )
    try:
        res = model.extract_features(source, padding_mask, mask=False, layer=stop)
    finally:
        if hook is not None:
            hook.remove()
    out = {}
    for name in wanted:
        if name == "cnn":
            out[name] = res["features"]
        elif name == "final":
            out[name] = res["x"]
        elif name == "layer_0":
            out[name] = captured["layer_0"].transpose(0, 1)[:, : res["x"].size(1)]
        elif name.startswith("layer_"):
            out[name] = res["layer_results"][int(name[6:]) - 1][0].transpose(0, 1)
    if any(n in QUANTIZER_LAYERS for n in wanted):
        q = model.quantizer(res["features"], produce_targets=True)
        if "codes" in wanted:
            out["codes"] = q["targets"]
        if "quantized" in wanted:
            out["quantized"] = model.project_q(q["x"])
    return out

