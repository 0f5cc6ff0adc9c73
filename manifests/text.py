"""Per-language transcript normalisation for the ``.wrd`` / ``.ltr`` labels.

XLSR fine-tunes with a CTC output layer over the *characters* of each language
(section 4.1), so every transcript is reduced to one alphabet per language. What that
alphabet is lives in :data:`LANGUAGES`, one row per language (a table, not code):

* ``letters``   regex character class of the language's letters (after lower-casing);
* ``lower``     lower-case the text (``case_map`` first, e.g. Turkish ``I -> ı``);
* ``keep``      punctuation kept inside words (apostrophes of fr/it/en, ...); every
                other punctuation or symbol character becomes a word break;
* ``digits``    whether ``0-9`` belong to the alphabet (no language here spells them, so
                a transcript with digits is out-of-alphabet: see ``oov`` below).

Characters outside the alphabet are counted and, by the ``oov`` policy, either make the
utterance a reject (``reject``, default: a wrong label is worse than a missing one),
are deleted (``drop``) or are kept (``keep``, e.g. for pre-training-only manifests).
Languages without a row are lower-cased and stripped of punctuation, unchecked.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple

OOV_POLICIES = ("reject", "drop", "keep")

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CYRILLIC = "а-яё"


@dataclass(frozen=True)
class LanguageText:
    """One row of the normalisation table (see the module docstring)."""

    letters: str
    lower: bool = True
    keep: str = ""
    digits: bool = False
    case_map: Dict[str, str] = field(default_factory=dict)


LANGUAGES: Dict[str, LanguageText] = {
    "en": LanguageText("a-z", keep="'"),
    "es": LanguageText("a-zñáéíóúü"),
    "fr": LanguageText("a-zàâæçéèêëîïôœùûüÿ", keep="'-"),
    "it": LanguageText("a-zàèéìíîòóùú", keep="'"),
    "nl": LanguageText("a-zàäèéëïöü", keep="'-"),
    "sv": LanguageText("a-zåäöé"),
    "ru": LanguageText(_CYRILLIC, keep="-"),
    "ky": LanguageText(_CYRILLIC + "ңөү", keep="-"),
    "tt": LanguageText(_CYRILLIC + "әөүҗңһ", keep="-"),
    "tr": LanguageText("a-zçğıöşüâîû", keep="'", case_map={"I": "ı", "İ": "i"}),
    "zh": LanguageText(_CJK + "a-z", keep="'"),
    "de": LanguageText("a-zäöüß", keep="'-"),
    "pt": LanguageText("a-záàâãçéêíóôõú", keep="'-"),
    "pl": LanguageText("a-ząćęłńóśźż", keep="-"),
}
# Release-specific codes that share a row.
ALIASES = {"zh-CN": "zh", "zh-TW": "zh", "zh-HK": "zh", "sv-SE": "sv", "cmn": "zh"}

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'"})


def language_text(lang: str) -> Optional[LanguageText]:
    return LANGUAGES.get(ALIASES.get(lang, lang))


class Normalizer:
    """Normalise transcripts of one language, counting out-of-alphabet characters."""

    def __init__(self, lang: str, oov: str = "reject"):
        if oov not in OOV_POLICIES:
            raise ValueError(f"oov policy must be one of {OOV_POLICIES}, got {oov!r}")
        self.lang, self.oov = lang, oov
        self.spec = language_text(lang)
        self.oov_counts: Counter = Counter()
        if self.spec is None:
            self._alphabet = None
        else:
            digits = "0-9" if self.spec.digits else ""
            keep = re.escape(self.spec.keep)
            self._alphabet = re.compile(f"[{self.spec.letters}{digits}{keep}]")

    def _word_break(self, ch: str) -> bool:
        if ch.isspace() or ch == "|":
            return True
        keep = self.spec.keep if self.spec else "'"
        return unicodedata.category(ch)[0] in "PSZC" and ch not in keep

    def __call__(self, text: str) -> Tuple[Optional[str], Optional[str]]:
        """``(words, None)`` or ``(None, reason)`` when the utterance must be rejected."""
        text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
        if self.spec is None or self.spec.lower:
            for a, b in (self.spec.case_map if self.spec else {}).items():
                text = text.replace(a, b)
            text = text.lower()
        chars = [" " if self._word_break(c) else c for c in text]
        if self._alphabet is not None:
            bad = [c for c in chars if c != " " and not self._alphabet.fullmatch(c)]
            if bad:
                self.oov_counts.update(bad)
                if self.oov == "reject":
                    shown = "".join(sorted(set(bad)))
                    return None, f"out-of-alphabet characters {shown!r}"
                if self.oov == "drop":
                    chars = [c if c == " " or self._alphabet.fullmatch(c) else "" for c in chars]
        # apostrophes/hyphens at word edges are punctuation, not letters
        words = [w.strip(self.spec.keep if self.spec else "'") for w in "".join(chars).split()]
        words = [w for w in words if w]
        if not words:
            return None, "empty transcript after normalisation"
        return " ".join(words), None


def format_oov(counts: Counter, limit: int = 20) -> str:
    if not counts:
        return ""
    top = ", ".join(f"{c!r} x{n}" for c, n in counts.most_common(limit))
    more = f" (+{len(counts) - limit} more)" if len(counts) > limit else ""
    return f"out-of-alphabet characters: {top}{more}"


def read_text_lines(path: Path) -> Iterator[Tuple[int, Optional[str]]]:
    """``(lineno, line)``; ``line`` is None when that line is not valid UTF-8."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                yield lineno, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                yield lineno, None
