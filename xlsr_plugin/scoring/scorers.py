"""Scorers ``per`` and ``cer`` for ``fairseq-generate --scoring``, beside fairseq's ``wer``.

``fairseq-generate`` hands a scorer one (reference, hypothesis) string pair per
utterance, nothing else, and gives neither the task nor the scorer a reference to the
other. To report a multilingual test subset per language too, the ``xlsr_finetuning``
task announces the languages of each batch it decodes (:func:`announce_batch_languages`,
in the batch's order, which is the order ``fairseq-generate`` scores the hypotheses in)
to the scorers that exist at that moment; each scorer queues them itself and takes the
next one for every pair. A scorer made later starts with nothing queued; with no
announcement (outside ``fairseq-generate``) scores are overall only.

What counts as an error is defined in :mod:`xlsr_core.errors`, including the
choice on word boundaries ``|``: PER never counts them, CER counts one per space
between words (``--cer-ignore-separator`` to count letters only).
"""

import logging
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Optional

from fairseq.dataclass import FairseqDataclass
from fairseq.scoring import BaseScorer, register_scorer

from xlsr_core.errors import LanguageErrors
from xlsr_core.labels import SEPARATOR

logger = logging.getLogger(__name__)


UNIT_NAMES = {"per": "phones", "cer": "characters", "wer": "words"}
_SCORERS: "weakref.WeakSet[_ErrorRateScorer]" = weakref.WeakSet()  # the ones alive


def announce_batch_languages(langs: Iterable[Optional[str]]) -> None:
    """The languages of the next batch's utterances, in order, to every live scorer."""
    langs = list(langs)
    for scorer in list(_SCORERS):
        scorer.expect_languages(langs)


class _ErrorRateScorer(BaseScorer):
    kind = ""

    def __init__(self, cfg, separator: str = SEPARATOR, ignore_separator: bool = False):
        super().__init__(cfg)
        self.errors = LanguageErrors(self.kind, separator, ignore_separator)
        self._languages: deque = deque()
        _SCORERS.add(self)

    def expect_languages(self, langs: Iterable[Optional[str]]) -> None:
        self._languages = deque(langs)  # a new batch replaces what was not consumed

    def add_string(self, ref: str, pred: str) -> None:
        self.errors.add(ref, pred, self._languages.popleft() if self._languages else None)

    def score(self) -> float:
        return self.errors.overall.rate

    def result_string(self) -> str:
        for lang, count in sorted(self.errors.by_language.items()):
            logger.info(
                f"{self.kind.upper()} {lang}: {count.rate:.2f} "
                f"({count.errors} errors / {count.total} {UNIT_NAMES[self.kind]}, {count.utterances} utterances)"
            )
        return self.errors.summary()


@dataclass
class PerScorerConfig(FairseqDataclass):
    per_separator: str = field(
        default=SEPARATOR, metadata={"help": "word-boundary symbol of .phn lines; never counted as a phone"}
    )


@register_scorer("per", dataclass=PerScorerConfig)
class PerScorer(_ErrorRateScorer):
    """Phone error rate over ``.phn`` lines (word boundaries excluded)."""

    kind = "per"

    def __init__(self, cfg: PerScorerConfig):
        super().__init__(cfg, cfg.per_separator)


@dataclass
class CerScorerConfig(FairseqDataclass):
    cer_separator: str = field(
        default=SEPARATOR, metadata={"help": "word-boundary symbol of .ltr lines (scored as one space)"}
    )
    cer_ignore_separator: bool = field(
        default=False,
        metadata={"help": "score letters only; by default a word boundary counts like a space in the text"},
    )


@register_scorer("cer", dataclass=CerScorerConfig)
class CerScorer(_ErrorRateScorer):
    """Character error rate over ``.ltr`` lines (a word boundary counts as one space)."""

    kind = "cer"

    def __init__(self, cfg: CerScorerConfig):
        super().__init__(cfg, cfg.cer_separator, cfg.cer_ignore_separator)
