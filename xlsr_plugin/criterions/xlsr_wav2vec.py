"""Criterion ``xlsr_wav2vec``: wav2vec 2.0's contrastive + diversity loss, logged per language.

The loss is fairseq's ``wav2vec`` criterion unchanged (InfoNCE over K distractors plus
the codebook-diversity term). XLSR shares one quantiser across languages, and the
failure to watch for is a language whose codes collapse or whose loss stalls while
the average looks fine; so every batch (one language each, see
``xlsr_plugin.data.multilingual``) also reports ``loss_<lang>``, ``accuracy_<lang>`` and
``code_perplexity_<lang>``, in training and validation logs.
"""


import math
from dataclasses import dataclass, field
from typing import List, Optional  # noqa: F401

from fairseq.criterions import register_criterion
from fairseq.criterions.wav2vec_criterion import Wav2VecCriterionConfig, Wav2vecCriterion
from fairseq.logging import metrics
from fairseq.logging.meters import safe_round

# Always logged, whatever criterion.log_keys adds (fairseq's argparse cannot take a
# list-of-strings default).
QUANTIZER_KEYS = ("prob_perplexity", "code_perplexity", "temp")
PREFIX = "_lang:"  # per-language entries of logging outputs; '_' keeps them off the console


@dataclass
class XlsrWav2vecCriterionConfig(Wav2VecCriterionConfig):
    infonce: bool = field(default=True, metadata={"help": "InfoNCE (cross-entropy over the true latent and K distractors)"})
    loss_weights: Optional[List[float]] = field(
        default_factory=lambda: [0.1, 10.0],
        metadata={"help": "weights of the extra losses: codebook diversity, feature penalty"},
    )


def _key(lang: str, what: str) -> str:
    return f"{PREFIX}{lang}:{what}"


@register_criterion("xlsr_wav2vec", dataclass=XlsrWav2vecCriterionConfig)
class XlsrWav2vecCriterion(Wav2vecCriterion):
    def __init__(self, cfg: XlsrWav2vecCriterionConfig, task):
        log_keys = list(cfg.log_keys) + [k for k in QUANTIZER_KEYS if k not in cfg.log_keys]
        super().__init__(task, cfg.infonce, cfg.loss_weights, log_keys)
        self.languages = list(getattr(task, "languages", []))

    def forward(self, model, sample, reduce=True):
        loss, sample_size, log = super().forward(model, sample, reduce=reduce)
        lang_ids = sample.get("lang")
        if lang_ids is None or len(lang_ids) == 0:
            return loss, sample_size, log
        lang_id = int(lang_ids[0])  # batches hold a single language
        if not 0 <= lang_id < len(self.languages) or bool((lang_ids != lang_id).any()):
            return loss, sample_size, log
        lang = self.languages[lang_id]
        log[_key(lang, "loss")] = log["loss"]
        log[_key(lang, "sample_size")] = log["sample_size"]
        log[_key(lang, "correct")] = log.get("correct", 0)
        log[_key(lang, "count")] = log.get("count", 0)
        log[_key(lang, "batches")] = 1
        if "code_perplexity" in log:
            log[_key(lang, "code_perplexity")] = log["code_perplexity"]
        return loss, sample_size, log

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        plain = [{k: v for k, v in log.items() if not k.startswith(PREFIX)} for log in logging_outputs]
        Wav2vecCriterion.reduce_metrics(plain)

        totals = {}
        for log in logging_outputs:
            for k, v in log.items():
                if k.startswith(PREFIX):
                    totals[k] = totals.get(k, 0) + float(v)
        langs = sorted({k.split(":")[1] for k in totals})
        for lang in langs:
            get = lambda what: totals.get(_key(lang, what), 0.0)  # noqa: E731
            size = get("sample_size")
            metrics.log_scalar(f"loss_{lang}", get("loss") / (size or 1) / math.log(2), size, round=3)
            if get("count") > 0:
                metrics.log_scalar(f"accuracy_{lang}", safe_round(get("correct") / get("count"), 5), get("count"))
            if _key(lang, "code_perplexity") in totals:
                metrics.log_scalar(
                    f"code_perplexity_{lang}", get("code_perplexity") / get("batches"), get("batches"), round=3
                )
