"""What the training step of ``xlsr_pretraining`` / ``xlsr_finetuning`` guards against.

* **Non-finite losses and gradients.** fairseq stops a run at the first batch whose
  gradient is inf/NaN when it trains in fp32 or bf16 (``FloatingPointError: gradients
  are Nan/Inf``), and in fp16 a batch with a NaN loss halves the loss scale every time
  it comes round, until "minimum loss scale reached" stops the run (fairseq #3750,
  #2696). Here a batch whose loss is inf/NaN gets no backward pass (its gradient is
  left out of the update, its logging numbers are zero), and with fp32/bf16 a gradient
  that is not finite after the backward pass is dropped with the update's other
  gradients (fp16/AMP overflow stays with fairseq's loss scaler). Every skip is counted:
  ``nonfinite_skips`` in the training log and, as a record, the process's total in its
  checkpoints; the run stops with an error naming the batch once it has skipped more than
  ``task.max_nonfinite_skips`` since it started. (fairseq's trainer does not give a task
  its saved state back on resume, so a resumed run counts from 0; each rank counts its
  own batches.)
* **Codebook collapse.** The quantiser's code perplexity (per codebook: 1 = one code
  used) or its diversity (softmax perplexity over ``G*V``: 1 = every entry used) can
  sink and stay down, for the whole model or for one language while the average looks
  fine. A warning names it once it has stayed below ``task.collapse_perplexity`` /
  ``task.collapse_diversity`` for ``task.collapse_updates`` batches in a row.
* **Which utterances each update used** (``task.batch_log``): a debugging and
  reproducibility aid; a resumed run appends to the same file, so it shows whether the
  updates after a resume saw the batches an uninterrupted run would have.
"""

import logging
from typing import Dict, Optional

import torch

logger = logging.getLogger(__name__)

SKIPPED = "nonfinite_skipped"  # logging-output key: 1 for a skipped batch, 0 otherwise
CRITERION_PREFIX = "_xlsr:"  # xlsr_wav2vec's own entries of the logging outputs


class TooManyNonFiniteBatches(FloatingPointError):
    """More batches had an inf/NaN loss or gradient than ``task.max_nonfinite_skips``."""


def batch_description(sample, languages=()) -> str:
    """The batch's utterances as ``lang:index`` (``index`` in that language's manifest)."""
    ids = sample.get("id") if isinstance(sample, dict) else None
    if ids is None:
        return "(empty batch)"
    langs = sample.get("lang")
    ids = [int(i) for i in ids]
    if langs is None or len(langs) != len(ids):
        return " ".join(str(i) for i in ids)
    names = {k: name for k, name in enumerate(languages)}
    return " ".join(f"{names.get(int(l), int(l))}:{i}" for l, i in zip(langs, ids))


def zeroed(log: dict) -> dict:
    """``log`` with the same keys, every number zero (a skipped batch adds nothing, and
    every rank keeps the same keys for fairseq's sum across ranks)."""
    out = {}
    for k, v in log.items():
        if torch.is_tensor(v):
            out[k] = torch.zeros_like(v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = type(v)(0)
        else:
            out[k] = v
    return out


def gradients_finite(model) -> bool:
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return True
    norms = torch._foreach_norm(grads) if hasattr(torch, "_foreach_norm") else [g.norm() for g in grads]
    return bool(torch.isfinite(torch.stack([n.float() for n in norms]).sum()))


def has_loss_scaler(optimizer) -> bool:
    """fp16 and AMP optimizers deal with overflowing gradients themselves."""
    return getattr(optimizer, "scaler", None) is not None


class NonFiniteGuard:
    """Counts skipped batches and stops the run past ``limit`` (``-1``: never)."""

    def __init__(self, limit: int, languages=()):
        self.limit = limit
        self.languages = list(languages)
        self.skips = 0

    def skip(self, what: str, sample, update_num: int) -> None:
        self.skips += 1
        message = (
            f"update {update_num + 1}: {what}; batch skipped ({self.skips} so far). "
            f"Utterances (language:index): {batch_description(sample, self.languages)[:500]}"
        )
        if 0 <= self.limit < self.skips:
            raise TooManyNonFiniteBatches(
                f"{message}. More than task.max_nonfinite_skips={self.limit} batches had an "
                "inf/NaN loss or gradient: the run is diverging (lower the learning rate, "
                "raise warmup, check clip_norm) or some data is broken (the utterances above)"
            )
        logger.warning(message)


class CodebookMonitor:
    """Warns when code perplexity or diversity stays low for ``updates`` batches in a row,
    for the model as a whole (``all``) and for each language whose batches are logged
    apart (``xlsr_wav2vec``'s per-language entries)."""

    def __init__(self, updates: int, perplexity: float, diversity: float, languages=()):
        self.updates = updates
        self.perplexity = perplexity
        self.diversity = diversity
        self.languages = list(languages)
        self.low: Dict[str, int] = {}
        self.warnings = 0

    def observe(self, model, log: dict, update_num: int) -> None:
        if self.updates <= 0:
            return
        quantizer = getattr(getattr(model, "module", model), "quantizer", None)
        code = log.get(CRITERION_PREFIX + "code_perplexity", log.get("code_perplexity"))
        if quantizer is None or code is None:
            return
        groups, entries = int(quantizer.groups), int(quantizer.num_vars)
        prob = log.get(CRITERION_PREFIX + "prob_perplexity", log.get("prob_perplexity"))
        diversity = None if prob is None else float(prob) / (groups * entries)
        self._check("all", float(code) / groups, diversity, update_num)
        for lang in self.languages:
            if log.get(f"{CRITERION_PREFIX}{lang}:batches"):
                per_lang = float(log[f"{CRITERION_PREFIX}{lang}:code_perplexity"]) / groups
                self._check(lang, per_lang, None, update_num)

    def _check(self, name: str, code: float, diversity: Optional[float], update_num: int) -> None:
        low = code < self.perplexity or (diversity is not None and diversity < self.diversity)
        self.low[name] = self.low.get(name, 0) + 1 if low else 0
        if self.low[name] == self.updates:
            self.warnings += 1
            what = "the whole model" if name == "all" else f"language {name}"
            div = "" if diversity is None else f", diversity {diversity:.3f} (task.collapse_diversity={self.diversity})"
            logger.warning(
                f"codebook collapse? update {update_num + 1}: for {what}, code perplexity per "
                f"codebook {code:.2f} (task.collapse_perplexity={self.perplexity}){div} has stayed "
                f"low for {self.updates} batches in a row: the quantiser uses few codes. Raise the "
                "diversity loss weight (criterion.loss_weights), lower the learning rate, or check "
                "that language's audio"
            )


def log_batch(path: Optional[str], sample, update_num: int, languages=()) -> None:
    """Append ``<update>\\t<lang:index ...>`` for a training batch (rank-suffixed with
    several processes), flushed at once, so that a killed run leaves complete lines."""
    if not path:
        return
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        if torch.distributed.get_world_size() > 1:
            path = f"{path}.rank{torch.distributed.get_rank()}"
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{update_num + 1}\t{batch_description(sample, languages)}\n")
