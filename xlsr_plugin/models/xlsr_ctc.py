"""Model ``xlsr_ctc``: a pre-trained XLSR encoder with a CTC output layer (Conneau et al. 2020).

fairseq's ``wav2vec_ctc`` unchanged in what it computes: the pre-trained wav2vec 2.0
model (this plugin's ``xlsr_base``/``xlsr_large`` checkpoints, or official ones of any
era such as ``xlsr_53_56k.pt``, loaded under the allow-list of ``xlsr_plugin.checkpoint``,
which also drops the config fields today's fairseq no longer knows) topped by a linear layer over the label dictionary, trained
with CTC. Its knobs are the paper's fine-tuning recipe: ``freeze_finetune_updates``
(only the output layer trains for the first N updates), ``feature_grad_mult`` (0 keeps
the convolutional feature encoder frozen throughout), ``mask_prob``/``mask_channel_prob``
(SpecAugment-like masking of the latent frames and channels), ``layerdrop``.

What this class adds are checks fairseq leaves to an ``assert`` or to luck:

* ``normalize``: the fine-tuning audio must be normalised exactly as in pre-training
  (XLSR-53 and the large models: ``task.normalize=true``); a mismatch trains a model on
  inputs it never saw, silently. Checked before anything is built, with the fix.
* the output dictionary: the symbols (in order) are stored in the model config and a
  checksum in the weights, so decoding or continuing with a different ``dict.*.txt``
  (another language's, the joint one instead of a language's, or one rebuilt from
  scratch) fails with a message naming the file of the data folder that matches.
"""


import logging
import zlib
from dataclasses import dataclass, field
from typing import Optional

import torch
from fairseq.models import register_model
from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Model
from fairseq.models.wav2vec.wav2vec2_asr import Wav2Vec2CtcConfig, Wav2VecCtc, Wav2VecEncoder
from omegaconf import MISSING

from xlsr_plugin.checkpoint import read_checkpoint, stored_config
from xlsr_plugin.models.xlsr import SeededMaskingWav2Vec2

logger = logging.getLogger(__name__)

CHECKSUM_KEY = "dictionary_checksum"
PROJ_KEY = "w2v_encoder.proj.weight"


class DictionaryMismatchError(ValueError):
    """A fine-tuned checkpoint and the label dictionary of this run disagree."""


class NormalizeMismatchError(ValueError):
    """Fine-tuning audio would be normalised differently from pre-training."""


@dataclass
class XlsrCtcConfig(Wav2Vec2CtcConfig):
    w2v_path: str = field(
        default=MISSING,
        metadata={
            "help": "pre-trained checkpoint to fine-tune: one of this plugin's pre-training runs "
            "or an official wav2vec 2.0 / XLSR / XLS-R file of any era (2020 argparse, 2021 "
            "DictConfig, plain dict)"
        },
    )
    target_symbols: Optional[str] = field(
        default=None,
        metadata={
            "help": "set at fine-tuning, not by hand: the output dictionary's symbols in order, "
            "space-separated, so a checkpoint refuses a different dictionary"
        },
    )


def dictionary_symbols(dictionary) -> str:
    return " ".join(dictionary.symbols)


def dictionary_checksum(symbols: str) -> int:
    return zlib.crc32(symbols.encode("utf-8"))


def pretrained_normalize(path: str) -> bool:
    """The ``normalize`` a pre-trained checkpoint of any era was trained with (reads only
    its config: tensors of zip checkpoints are memory-mapped, not read)."""
    try:
        state = read_checkpoint(path, mmap=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"model.w2v_path {path!r}: no such checkpoint") from None
    cfg = stored_config(state, path)
    task, model = cfg.get("task") or {}, cfg.get("model") or {}
    return bool(task.get("normalize", model.get("normalize", False)))


def _diff(stored: str, current: str) -> str:
    a, b = stored.split(), current.split()
    if len(a) != len(b):
        extra, gone = sorted(set(b) - set(a)), sorted(set(a) - set(b))
        return (f"{len(a)} symbols in the checkpoint, {len(b)} in the dictionary"
                + (f"; new: {' '.join(extra[:20])}" if extra else "")
                + (f"; missing: {' '.join(gone[:20])}" if gone else ""))
    moved = [f"{i}: {x}->{y}" for i, (x, y) in enumerate(zip(a, b)) if x != y]
    return f"same size, but {len(moved)} index(es) differ ({', '.join(moved[:10])})"


def _mismatch_message(stored: str, current: str, task) -> str:
    """What differs, and which dictionary file of the data folder the checkpoint matches."""
    path = getattr(task, "_dictionary_path", None) or "the task's dictionary"
    msg = f"this checkpoint was fine-tuned with another dictionary than {path} ({_diff(stored, current)}). "
    match = task.dictionary_matching(stored) if hasattr(task, "dictionary_matching") else None
    if match is not None:
        return msg + (
            f"It was fine-tuned with {match}: pass --target-dictionary {match} "
            "(a one-language model also decodes with --languages <its language>, which picks "
            "dict.<labels>.<lang>.txt; a multilingual one without, which picks dict.<labels>.txt)"
        )
    return msg + (
        "No dictionary in the data folder matches: use the one it was trained with "
        "(--target-dictionary FILE)"
    )


def _check_channel_masking(cfg, channels: int) -> None:
    """fairseq draws ``int(prob * channels / length + U(0,1))`` channel spans with no
    minimum and raises "this should never happens" whenever that is 0: refuse settings
    where it can be (small models), rather than crash at a random update."""
    if cfg.apply_mask and 0 < cfg.mask_channel_prob and cfg.mask_channel_prob * channels < cfg.mask_channel_length:
        raise ValueError(
            f"model.mask_channel_prob={cfg.mask_channel_prob} over {channels} channels with "
            f"mask_channel_length={cfg.mask_channel_length} sometimes draws no span, which fairseq "
            f"does not allow: use mask_channel_length <= {int(cfg.mask_channel_prob * channels)} "
            "or mask_channel_prob=0"
        )


@register_model("xlsr_ctc", dataclass=XlsrCtcConfig)
class XlsrCtcModel(Wav2VecCtc):
    """Pre-trained XLSR encoder + linear CTC layer over the task's label dictionary."""

    def __init__(self, cfg: XlsrCtcConfig, w2v_encoder, symbols: str):
        super().__init__(cfg, w2v_encoder)
        self.register_buffer(CHECKSUM_KEY, torch.tensor(dictionary_checksum(symbols), dtype=torch.long))

    @classmethod
    def build_model(cls, cfg: XlsrCtcConfig, task):
        symbols = dictionary_symbols(task.target_dictionary)
        if cfg.target_symbols is not None and cfg.target_symbols != symbols:
            raise DictionaryMismatchError(_mismatch_message(cfg.target_symbols, symbols, task))
        cfg.target_symbols = symbols
        if cfg.w2v_args is None:  # fine-tuning starts: check before loading the weights
            stored = pretrained_normalize(cfg.w2v_path)
            if stored != cfg.normalize:
                raise NormalizeMismatchError(
                    f"{cfg.w2v_path} was pre-trained with normalize={stored} (waveforms "
                    f"{'scaled to zero mean and unit variance' if stored else 'used as they are'}), "
                    f"but this run has task.normalize={cfg.normalize}. Set task.normalize="
                    f"{str(stored).lower()} ({'--normalize' if stored else 'drop --normalize'}): "
                    "a model fine-tuned on differently scaled audio trains, but badly"
                )
        encoder = Wav2VecEncoder(cfg, len(task.target_dictionary))
        if type(encoder.w2v_model) is Wav2Vec2Model:  # an official wav2vec2 / XLSR-53 checkpoint
            encoder.w2v_model.__class__ = SeededMaskingWav2Vec2  # same module, reproducible masks
        _check_channel_masking(cfg, cfg.w2v_args.model.encoder_embed_dim)
        return cls(cfg, encoder, symbols)

    def load_state_dict(self, state_dict, strict=True, model_cfg=None, args=None):
        own = self.state_dict()
        if PROJ_KEY in state_dict and state_dict[PROJ_KEY].shape != own[PROJ_KEY].shape:
            raise DictionaryMismatchError(
                f"checkpoint has an output layer for {state_dict[PROJ_KEY].shape[0]} symbols, "
                f"this run's dictionary has {own[PROJ_KEY].shape[0]}: use the dictionary the "
                "checkpoint was fine-tuned with, or start from the pre-trained model"
            )
        stored = state_dict.get(CHECKSUM_KEY)
        if stored is None:  # fairseq wav2vec_ctc weights: nothing to compare
            state_dict[CHECKSUM_KEY] = own[CHECKSUM_KEY]
        elif int(stored) != int(own[CHECKSUM_KEY]):
            raise DictionaryMismatchError(
                "checkpoint was fine-tuned with a dictionary of the same size but different "
                "symbols or order (a dict.*.txt deleted and rebuilt from scratch is sorted by "
                "frequency anew): use the dictionary it was fine-tuned with"
            )
        return super().load_state_dict(state_dict, strict, model_cfg, args)
