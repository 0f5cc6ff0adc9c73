"""Architectures ``xlsr_base`` and ``xlsr_large``: fairseq's wav2vec 2.0 with XLSR's settings.

The model is fairseq's ``Wav2Vec2Model`` unchanged; what XLSR fixes are its settings
(Conneau et al. 2020, §4.2): BASE has N=12 blocks, d_model 768, FFN 3072, H=8
heads; LARGE N=24, 1024, 4096, H=16; dropout 0.1; product quantisation with G=2
codebooks of V=320 entries. LARGE takes the LibriVox-large settings the authors used
for XLSR-53 (layer-norm feature extractor, pre-LN transformer, final_dim 768, no
input/feature dropout, full feature-encoder gradient).

fairseq's released *base* checkpoints use 12 heads while the paper's table says 8 for
XLSR base; ``xlsr_base`` follows the paper. A checkpoint always rebuilds with the
settings stored in it, and ``init_checkpoint`` (continued pre-training) takes the
checkpoint's architecture over the recipe's, so the two can never be mixed up silently.
"""


import logging
from dataclasses import dataclass, field, fields
from typing import Optional, Tuple

import torch
from fairseq.data.data_utils import compute_mask_indices
from fairseq.models import register_model
from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Config, Wav2Vec2Model
from omegaconf import open_dict

from xlsr_plugin.checkpoint import load_checkpoint, stored_model_config

logger = logging.getLogger(__name__)

# Fields that define the network (parameter shapes or what a layer computes). When
# continuing pre-training, these come from the checkpoint, everything else (dropout,
# masking, temperatures) from the recipe.
ARCHITECTURE_FIELDS = (
    "extractor_mode", "encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim",
    "encoder_attention_heads", "activation_fn", "layer_type", "final_dim",
    "layer_norm_first", "conv_feature_layers", "conv_bias", "quantize_targets",
    "quantize_input", "same_quantizer", "target_glu", "quantizer_depth",
    "quantizer_factor", "latent_vars", "latent_groups", "latent_dim", "conv_pos",
    "conv_pos_groups", "pos_conv_depth", "max_positions", "attn_type", "pos_enc_type",
)


def _help(text: str) -> dict:
    return {"help": text}


@dataclass
class XlsrBaseConfig(Wav2Vec2Config):
    encoder_attention_heads: int = field(default=8, metadata=_help("attention heads (paper: 8 for BASE)"))
    quantize_targets: bool = field(default=True, metadata=_help("targets are product-quantised latents"))
    latent_vars: int = field(default=320, metadata=_help("V: entries per codebook"))
    latent_groups: int = field(default=2, metadata=_help("G: number of codebooks"))
    final_dim: int = field(default=256, metadata=_help("dimension of the contrastive projection"))
    encoder_layerdrop: float = field(default=0.05, metadata=_help("probability of dropping a transformer layer"))
    dropout_input: float = field(default=0.1, metadata=_help("dropout on the feature-encoder output"))
    dropout_features: float = field(default=0.1, metadata=_help("dropout on the unmasked features (targets)"))
    feature_grad_mult: float = field(default=0.1, metadata=_help("scale of the gradient into the feature encoder"))
    init_checkpoint: Optional[str] = field(
        default=None,
        metadata=_help(
            "continue pre-training from this wav2vec 2.0 / XLSR checkpoint (fairseq format, "
            "any era: 2020 argparse, 2021 DictConfig, plain dict): its architecture fields "
            "replace the recipe's and its weights are loaded"
        ),
    )


@dataclass
class XlsrLargeConfig(XlsrBaseConfig):
    encoder_layers: int = field(default=24, metadata=_help("N: number of transformer blocks"))
    encoder_embed_dim: int = field(default=1024, metadata=_help("d_model: transformer model dimension"))
    encoder_ffn_embed_dim: int = field(default=4096, metadata=_help("FFN inner dimension"))
    encoder_attention_heads: int = field(default=16, metadata=_help("number of attention heads"))
    extractor_mode: str = field(default="layer_norm", metadata=_help("feature-encoder normalisation (LibriVox large)"))
    layer_norm_first: bool = field(default=True, metadata=_help("pre-LN transformer (LibriVox large)"))
    conv_bias: bool = field(default=True, metadata=_help("bias in the feature-encoder convolutions"))
    final_dim: int = field(default=768, metadata=_help("dimension of the contrastive projection"))
    latent_temp: Tuple[float, float, float] = field(
        default=(2.0, 0.1, 0.999995), metadata=_help("Gumbel temperature (start, end, decay)")
    )
    encoder_layerdrop: float = field(default=0.0, metadata=_help("probability of dropping a transformer layer"))
    dropout_input: float = field(default=0.0, metadata=_help("dropout on the feature-encoder output"))
    dropout_features: float = field(default=0.0, metadata=_help("dropout on the unmasked features"))
    feature_grad_mult: float = field(default=1.0, metadata=_help("scale of the gradient into the feature encoder"))


def _take_architecture(cfg, stored) -> None:
    changed = []
    for name in ARCHITECTURE_FIELDS:
        if name in stored and getattr(cfg, name, None) != stored[name]:
            changed.append(f"{name}: {getattr(cfg, name, None)} -> {stored[name]}")
            setattr(cfg, name, stored[name])
    if changed:
        logger.warning("init_checkpoint's architecture replaces the recipe's: " + "; ".join(changed))


def record_architecture(model, model_cfg) -> None:
    """After ``init_checkpoint`` was loaded, make the training config (what checkpoints
    store) describe the weights: the architecture actually built, and no
    ``init_checkpoint`` (the weights now live in this run's checkpoints, so a model
    rebuilt from them, e.g. for fine-tuning, neither re-reads nor needs that file)."""
    built = getattr(model, "cfg", None)
    source = getattr(built, "init_checkpoint", None)
    if not source:
        return
    with open_dict(model_cfg):
        for name in ARCHITECTURE_FIELDS:
            if name in model_cfg:
                model_cfg[name] = getattr(built, name)
        model_cfg.init_checkpoint = None
    logger.info(f"weights initialised from {source}; saved configs record its architecture")


class SeededMaskingWav2Vec2(Wav2Vec2Model):
    """fairseq's wav2vec 2.0 model with reproducible masks (the base of ``xlsr_base`` /
    ``xlsr_large``; ``xlsr_ctc`` gives an official ``wav2vec2`` encoder this class too)."""

    def apply_mask(self, x, padding_mask, mask_indices=None, mask_channel_indices=None):
        """fairseq draws time and channel masks from ``np.random.default_rng(None)``: fresh
        OS entropy on every call, so two runs with the same seed mask differently and end
        with different weights. Here they come from a seed drawn from torch's generator,
        which fairseq seeds (``common.seed`` + update number) before every training step
        and the task seeds per validation batch; fairseq's own ``apply_mask`` then applies
        them. (Channel masks before the time masks, ``mask_channel_before``, stay fairseq's.)"""
        x = x.to(self.mask_emb.dtype)  # autocast made it bf16/fp16: fairseq's index_put needs one dtype
        B, T, C = x.shape
        need_time = self.mask_prob > 0 and mask_indices is None
        need_channels = self.mask_channel_prob > 0 and not self.mask_channel_before and mask_channel_indices is None
        if need_time or need_channels:
            seed, rows = int(torch.randint(0, 2**31 - 1, (1,))), torch.arange(B)
        if need_time:
            mask_indices = torch.from_numpy(compute_mask_indices(
                (B, T), padding_mask, self.mask_prob, self.mask_length, self.mask_selection, self.mask_other,
                min_masks=2, no_overlap=self.no_mask_overlap, min_space=self.mask_min_space,
                require_same_masks=self.cfg.require_same_masks, mask_dropout=self.cfg.mask_dropout,
                seed=seed, epoch=0, indices=rows,
            )).to(x.device)
        if need_channels:
            channels = compute_mask_indices(
                (B, C), None, self.mask_channel_prob, self.mask_channel_length, self.mask_channel_selection,
                self.mask_channel_other, no_overlap=self.no_mask_channel_overlap,
                min_space=self.mask_channel_min_space, seed=seed, epoch=1, indices=rows,
            )
            mask_channel_indices = torch.from_numpy(channels).to(x.device).unsqueeze(1).expand(-1, T, -1)
        return super().apply_mask(x, padding_mask, mask_indices, mask_channel_indices)

    def compute_preds(self, x, y, negatives):
        """The contrastive logits in fp32 under autocast too (fairseq casts the cosine
        similarities back to the projection's bf16/fp16, ~3 significant digits before
        the division by the temperature); in fp32 training this changes nothing."""
        return super().compute_preds(x.float(), y.float(), negatives.float())


class _XlsrModel(SeededMaskingWav2Vec2):
    @classmethod
    def build_model(cls, cfg, task=None):
        if not cfg.init_checkpoint:
            return cls(cfg)
        state = load_checkpoint(cfg.init_checkpoint)
        _take_architecture(cfg, stored_model_config(state, cfg.init_checkpoint))
        model = cls(cfg)
        model.load_state_dict(state["model"], strict=True)
        logger.info(f"initialised from {cfg.init_checkpoint}")
        return model


@register_model("xlsr_base", dataclass=XlsrBaseConfig)
class XlsrBaseModel(_XlsrModel):
    """XLSR BASE (paper §4.2)."""


@register_model("xlsr_large", dataclass=XlsrLargeConfig)
class XlsrLargeModel(_XlsrModel):
    """XLSR LARGE / XLSR-53 (paper §4.2, LibriVox-large settings)."""


assert {f.name for f in fields(XlsrBaseConfig)} >= set(ARCHITECTURE_FIELDS)
