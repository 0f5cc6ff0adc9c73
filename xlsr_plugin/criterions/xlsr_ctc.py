"""Criterion ``xlsr_ctc``: CTC loss, with the paper's error rates per language on validation.

The loss is fairseq's ``ctc`` criterion unchanged (Graves et al. 2006; summed over
utterances, normalised by target tokens). On validation batches it also decodes
greedily and logs the error rate that fits the labels, computed exactly as the
``per``/``cer`` scorers of ``fairseq-generate`` do (``xlsr_core.errors``):

=========  ==========================  ========================================
labels     logged                      ``--best-checkpoint-metric``
=========  ==========================  ========================================
``phn``    ``per``, ``per_<lang>``     ``per``
``ltr``    ``cer``, ``wer`` (+ _lang)  ``cer`` or ``wer``
``wrd``    ``wer``, ``wer_<lang>``     ``wer``
=========  ==========================  ========================================

fairseq's own ``uer`` (all dictionary units, ``|`` included) is logged too. Lower is
better for all of them (``--maximize-best-checkpoint-metric`` stays off). Per-language
entries rely on batches holding one language (``xlsr_plugin.data.multilingual``); every
batch carries every language's entries (zeros but for its own), because fairseq adds
logging outputs up across ranks by position.

Each validation batch is decoded once: fairseq's ``ctc`` decodes greedily for its
``uer``/``wer``, so the parent computes only the loss here, and ``uer`` is counted from
the same greedy hypotheses as the paper's error rates (as fairseq counts it: edit
distance over dictionary indices).
"""


from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import editdistance
import torch
from fairseq import utils
from fairseq.criterions import register_criterion
from fairseq.criterions.ctc import CtcCriterion, CtcCriterionConfig
from fairseq.logging import metrics
from fairseq.logging.meters import safe_round

from xlsr_plugin.data.multilingual import batch_language
from xlsr_plugin.decoding.ctc import collapse
from xlsr_core.errors import KINDS, LanguageErrors
from xlsr_core.labels import label_kind

PREFIX = "_lang:"  # per-language entries of logging outputs ('_' keeps them off the console)


@dataclass
class XlsrCtcCriterionConfig(CtcCriterionConfig):
    pass


class _Forwarded:
    """The model, with its forward pass already run: lets the parent criterion compute
    the loss from the same output we decode, without a second forward. It reads as
    training, so the parent skips its own validation decode (this criterion's is the one)."""

    training = True

    def __init__(self, model, net_output):
        self._model, self._net_output = model, net_output

    def __call__(self, **unused):
        return self._net_output

    def __getattr__(self, name):
        return getattr(self._model, name)


@register_criterion("xlsr_ctc", dataclass=XlsrCtcCriterionConfig)
class XlsrCtcCriterion(CtcCriterion):
    def __init__(self, cfg: XlsrCtcCriterionConfig, task):
        if cfg.wer_kenlm_model or cfg.wer_args:
            raise ValueError(
                "criterion.wer_kenlm_model needs fairseq's examples package; decode with an LM "
                "through fairseq-generate --kenlm-model instead (validation stays greedy)"
            )
        super().__init__(cfg, task)
        labels = getattr(task.cfg, "labels", None) or "ltr"
        self.kinds = label_kind(labels).metrics
        self.languages = list(getattr(task, "languages", []))

    def forward(self, model, sample, reduce=True, **kwargs):
        net_output = model(**sample["net_input"])
        loss, sample_size, log = super().forward(_Forwarded(model, net_output), sample, reduce, **kwargs)
        if not model.training:
            log.update(self._validation_counts(model, net_output, sample))
        return loss, sample_size, log

    @torch.no_grad()
    def _validation_counts(self, model, net_output, sample) -> Dict[str, int]:
        """Greedy-decode the batch once; count fairseq's ``uer`` and the label kind's
        error rates (overall, and for the batch's language) from those hypotheses."""
        lprobs = model.get_normalized_probs(net_output, log_probs=True).transpose(0, 1).float().cpu()
        padding = net_output.get("padding_mask")
        lengths = (~padding).long().sum(-1).tolist() if padding is not None else [lprobs.size(1)] * lprobs.size(0)
        targets = sample["target_label"] if "target_label" in sample else sample["target"]
        strings = self.task.target_dictionary.string
        counts = {"c_errors": 0, "c_total": 0}
        errors = {kind: LanguageErrors(kind) for kind in self.kinds}
        for lp, n, target in zip(lprobs, lengths, targets):
            ref = target[(target != self.pad_idx) & (target != self.eos_idx)].tolist()
            hyp = collapse(lp[:n].argmax(-1), self.blank_idx).tolist()
            counts["c_errors"] += editdistance.eval(hyp, ref)
            counts["c_total"] += len(ref)
            ref_text, hyp_text = strings(ref), strings(hyp)
            for kind_errors in errors.values():
                kind_errors.add(ref_text, hyp_text)
        this = batch_language(sample, self.languages)
        for kind, kind_errors in errors.items():
            counts[f"{kind}_errors"] = kind_errors.overall.errors
            counts[f"{kind}_total"] = kind_errors.overall.total
            # every language's slots on every batch, zeros but for this batch's language:
            # fairseq sums logging outputs across ranks by position, not by key
            for lang in self.languages:
                mine = lang == this
                counts[f"{PREFIX}{lang}:{kind}_errors"] = kind_errors.overall.errors if mine else 0
                counts[f"{PREFIX}{lang}:{kind}_total"] = kind_errors.overall.total if mine else 0
        return counts

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        plain = [{k: v for k, v in log.items() if not k.startswith(PREFIX)} for log in logging_outputs]
        CtcCriterion.reduce_metrics(plain)
        counts: Dict[Tuple[str, str], List[float]] = {}  # metric name -> [errors, total]
        for log in logging_outputs:
            for key, value in log.items():
                parsed = _parse_key(key)
                if parsed:
                    name, what = parsed
                    counts.setdefault(name, [0.0, 0.0])[what == "total"] += utils.item(value)
        for name, (errors, total) in sorted(counts.items()):
            metrics.log_scalar(f"_{name}_errors", errors)
            metrics.log_scalar(f"_{name}_total", total)
            if total > 0:  # a language the subset does not hold is not reported (as fairseq's uer)
                metrics.log_derived(
                name,
                    lambda meters, n=name: safe_round(
                        meters[f"_{n}_errors"].sum * 100.0 / meters[f"_{n}_total"].sum, 3
                    ) if meters[f"_{n}_total"].sum > 0 else float("nan"),
                )


def _parse_key(key: str) -> Optional[Tuple[str, str]]:
    """``per_errors`` -> (``per``, ``errors``); ``_lang:es:per_total`` -> (``per_es``, ``total``)."""
    lang = None
    if key.startswith(PREFIX):
        lang, _, key = key[len(PREFIX):].partition(":")
    kind, _, what = key.partition("_")
    if kind not in KINDS or what not in ("errors", "total"):
        return None
    return (kind if lang is None else f"{kind}_{lang}"), what
