"""The label kinds of CTC fine-tuning, in one table.

The paper fine-tunes on phonemes (CommonVoice, PER), characters (BABEL, CER) and words
(MLS, WER). Each kind is a fairseq label file beside the manifest,
``<split>_<lang>.<suffix>``, with its dictionary ``dict.<suffix>.txt``, one line per
utterance and space-separated symbols. What differs is the word separator ``|`` and the
error rates that make sense:

* ``phn`` (``o l a | m u n d o``): phonemes; a ``|`` between words only on request
  (``xlsr-manifest phonemize --word-boundary``), never counted as a phone; PER.
* ``ltr`` (``o l a | m u n d o |``): letters, ``|`` after every word, the last one too
  (fairseq's ``libri_labels.py``); CER and WER.
* ``wrd`` (``ola mundo``): words are the symbols, no separator; WER.

The first error rate is the primary one (``checkpoint.best_checkpoint_metric``).
How each rate counts the separator is :mod:`xlsr_core.errors`.
"""

from dataclasses import dataclass
from typing import Dict, Tuple

SEPARATOR = "|"


@dataclass(frozen=True)
class LabelKind:
    suffix: str
    units: str  # what the symbols of a line are
    metrics: Tuple[str, ...]  # error rates, the primary one first
    separator: str  # "optional", "after every word" or "none"

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]


LABEL_KINDS: Dict[str, LabelKind] = {
    kind.suffix: kind
    for kind in (
        LabelKind("ltr", "letters", ("cer", "wer"), "after every word"),
        LabelKind("wrd", "words", ("wer",), "none"),
        LabelKind("phn", "phonemes", ("per",), "optional"),
    )
}


def label_kind(suffix: str) -> LabelKind:
    """The kind of ``suffix``, or a ValueError that lists the kinds."""
    try:
        return LABEL_KINDS[suffix]
    except KeyError:
        raise ValueError(
            f"label kind {suffix!r}; expected one of "
            + ", ".join(f"{k} ({v.units})" for k, v in LABEL_KINDS.items())
        ) from None
