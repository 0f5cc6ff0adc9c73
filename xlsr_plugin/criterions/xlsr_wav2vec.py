"""Criterion ``xlsr_wav2vec``: wav2vec 2.0's contrastive + diversity loss, logged per language.

The loss is fairseq's ``wav2vec`` criterion unchanged (InfoNCE over K distractors plus
the codebook-diversity term). XLSR shares one quantiser across languages, and the
failure to watch for is a language whose codes collapse or whose loss stalls while
the average looks fine; so every batch of one language also reports ``loss_<lang>``,
``accuracy_<lang>`` and ``code_perplexity_<lang>``: validation batches always (see
``xlsr_plugin.data.multilingual``), training batches with ``task.language_batches=one``.
With ``mixed`` training batches the per-language entries stay zero in training (a
batch that happens to hold one language would report a biased subset: the smallest
batches), so per-language numbers come from validation only.

Unlike fairseq's ``wav2vec`` criterion, the logging outputs hold sums under the same
keys for every batch, so fairseq can add them up across workers with one all-reduce
(its other path, ``all_gather_list``, needs CUDA and so breaks CPU/gloo training).
"""

import math
from dataclasses import dataclass, field
from typing import List, Optional

from fairseq.criterions import register_criterion
from fairseq.criterions.wav2vec_criterion import Wav2VecCriterionConfig, Wav2vecCriterion
from fairseq.logging import metrics
from fairseq.logging.meters import safe_round

from xlsr_plugin.data.multilingual import batch_language

# Per-batch model outputs (perplexities, Gumbel temperature): always logged, averaged
# over batches. (fairseq's argparse cannot take a list-of-strings default for log_keys.)
QUANTIZER_KEYS = ("prob_perplexity", "code_perplexity", "temp")
PER_LANGUAGE = ("loss", "sample_size", "correct", "count", "code_perplexity", "batches")
PREFIX = "_xlsr:"  # our entries of the logging outputs; '_' keeps them off the console


@dataclass
class XlsrWav2vecCriterionConfig(Wav2VecCriterionConfig):
    infonce: bool = field(
        default=True,
        metadata={"help": "InfoNCE: cross-entropy over the true quantised latent and K distractors"},
    )
    loss_weights: Optional[List[float]] = field(
        default_factory=lambda: [0.1, 10.0],
        metadata={"help": "weights of the extra losses: codebook diversity, feature penalty"},
    )


@register_criterion("xlsr_wav2vec", dataclass=XlsrWav2vecCriterionConfig)
class XlsrWav2vecCriterion(Wav2vecCriterion):
    def __init__(self, cfg: XlsrWav2vecCriterionConfig, task):
        log_keys = list(cfg.log_keys) + [k for k in QUANTIZER_KEYS if k not in cfg.log_keys]
        super().__init__(task, cfg.infonce, cfg.loss_weights, log_keys)
        self.languages = list(getattr(task, "languages", []))
        # training batches mix languages unless task.language_batches=one
        self.mixed_training = getattr(getattr(task, "cfg", None), "language_batches", "one") == "mixed"

    def forward(self, model, sample, reduce=True):
        loss, sample_size, log = super().forward(model, sample, reduce=reduce)
        log[PREFIX + "batches"] = 1
        for k in QUANTIZER_KEYS:
            if k in log:
                log[PREFIX + k] = log.pop(k)

        mixed = model.training and self.mixed_training
        this = None if mixed else batch_language(sample, self.languages)  # one language a batch
        for lang in self.languages:
            mine = lang == this
            log[f"{PREFIX}{lang}:loss"] = log["loss"] if mine else 0.0
            log[f"{PREFIX}{lang}:sample_size"] = log["sample_size"] if mine else 0
            log[f"{PREFIX}{lang}:correct"] = log.get("correct", 0) if mine else 0
            log[f"{PREFIX}{lang}:count"] = log.get("count", 0) if mine else 0
            log[f"{PREFIX}{lang}:code_perplexity"] = log.get(PREFIX + "code_perplexity", 0.0) if mine else 0.0
            log[f"{PREFIX}{lang}:batches"] = 1 if mine else 0
        return loss, sample_size, log

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        plain = [{k: v for k, v in log.items() if not k.startswith(PREFIX)} for log in logging_outputs]
        Wav2vecCriterion.reduce_metrics(plain)

        totals = {}
        for log in logging_outputs:
            for k, v in log.items():
                if k.startswith(PREFIX):
                    totals[k[len(PREFIX):]] = totals.get(k[len(PREFIX):], 0.0) + float(v)
        batches = totals.get("batches", 0)
        for k in QUANTIZER_KEYS:
            if k in totals and batches:
                metrics.log_scalar(k, totals[k] / batches, batches, round=3)

        langs = sorted({k.split(":")[0] for k in totals if ":" in k})
        for lang in langs:
            def get(what):
                return totals.get(f"{lang}:{what}", 0.0)

            if not get("batches"):
                continue
            size = get("sample_size")
            metrics.log_scalar(f"loss_{lang}", get("loss") / (size or 1) / math.log(2), size, round=3)
            if get("count") > 0:
                metrics.log_scalar(f"accuracy_{lang}", safe_round(get("correct") / get("count"), 5), get("count"))
            metrics.log_scalar(
                f"code_perplexity_{lang}", get("code_perplexity") / get("batches"), get("batches"), round=3
            )

    def logging_outputs_can_be_summed(self) -> bool:
        return not self.xla
