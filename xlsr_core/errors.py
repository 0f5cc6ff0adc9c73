"""Error rates of the XLSR paper: PER (phonemes), CER (characters), WER (words).

Every score is ``100 * edit_distance(ref units, hyp units) / len(ref units)``, summed over
utterances before dividing (a corpus-level rate, as fairseq's ``wer`` scorer and the
``uer``/``wer`` of its CTC criterion). Lines are fairseq label lines, as
``fairseq-generate`` prints them without ``--post-process``:

* ``.phn``: ``"o l a | m u n d o"``: PER counts phones. A ``|`` word boundary (written
  only on request by ``xlsr-manifest phonemize``) is not a phone and never counts.
* ``.ltr``: ``"o l a | m u n d o |"``: CER counts letters **and word boundaries**: a
  ``|`` is the space between two words, so runs of ``|`` collapse to one and leading /
  trailing ones are dropped, exactly as a character error rate over the plain text
  ``"ola mundo"`` counts its space. This is also what fairseq's validation ``uer``
  measures up to the trailing ``|``, so the best checkpoint and the decoded test set
  agree. ``ignore_separator=True`` scores letters only (spaces deleted).
* ``.wrd`` (``"ola mundo"``) or ``.ltr``: WER counts words (``.ltr`` lines are split at ``|``).

The same functions serve the validation metrics of the ``xlsr_ctc`` criterion, the
``per``/``cer`` scorers of ``fairseq-generate`` and the demo's report, so all three
report the same numbers. Which rates fit which labels: :mod:`xlsr_core.labels`.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import editdistance

from xlsr_core.labels import SEPARATOR

KINDS = ("per", "cer", "wer")


def phones(line: str, separator: str = SEPARATOR) -> List[str]:
    return [t for t in line.split() if t != separator]


def characters(line: str, separator: str = SEPARATOR, ignore_separator: bool = False) -> List[str]:
    units: List[str] = []
    for tok in line.split():
        chars = [separator] if tok == separator else list(tok)
        for ch in chars:
            if ch == separator and (not units or units[-1] == separator):
                continue  # leading or repeated boundary
            units.append(ch)
    while units and units[-1] == separator:
        units.pop()
    return [u for u in units if u != separator] if ignore_separator else units


def words(line: str, separator: str = SEPARATOR) -> List[str]:
    toks = line.split()
    if separator in toks:  # letter line: "o l a | m u n d o |"
        return [w for w in "".join(" " if t == separator else t for t in toks).split()]
    return toks


def units(kind: str, line: str, separator: str = SEPARATOR, ignore_separator: bool = False) -> List[str]:
    """The units ``kind`` (``per``/``cer``/``wer``) counts in a label line."""
    if kind == "per":
        return phones(line, separator)
    if kind == "cer":
        return characters(line, separator, ignore_separator)
    if kind == "wer":
        return words(line, separator)
    raise ValueError(f"unknown error rate {kind!r}; expected one of {', '.join(KINDS)}")


@dataclass
class ErrorCount:
    """Edit operations and reference length, summed over utterances."""

    errors: int = 0
    total: int = 0
    utterances: int = 0

    def add(self, ref: List[str], hyp: List[str]) -> None:
        self.errors += editdistance.eval(ref, hyp)
        self.total += len(ref)
        self.utterances += 1

    @property
    def rate(self) -> float:
        """Percent; an empty reference set scores 0 (nothing to get wrong)."""
        return 100.0 * self.errors / self.total if self.total else 0.0


@dataclass
class LanguageErrors:
    """An error rate overall and per language (``lang=None``: language unknown)."""

    kind: str
    separator: str = SEPARATOR
    ignore_separator: bool = False
    overall: ErrorCount = field(default_factory=ErrorCount)
    by_language: Dict[str, ErrorCount] = field(default_factory=dict)

    def add(self, ref: str, hyp: str, lang: Optional[str] = None) -> None:
        r = units(self.kind, ref, self.separator, self.ignore_separator)
        h = units(self.kind, hyp, self.separator, self.ignore_separator)
        self.overall.add(r, h)
        if lang is not None:
            self.by_language.setdefault(lang, ErrorCount()).add(r, h)

    def summary(self) -> str:
        """``PER: 12.50`` or, with several languages, ``PER: 12.50 (es 10.00, ru 15.00)``."""
        text = f"{self.kind.upper()}: {self.overall.rate:.2f}"
        if len(self.by_language) > 1:
            text += " (" + ", ".join(
                f"{lang} {c.rate:.2f}" for lang, c in sorted(self.by_language.items())
            ) + ")"
        return text
