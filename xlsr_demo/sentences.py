"""Read-speech prompts per language: what the synthetic CommonVoice speakers read.

CommonVoice speakers read short sentences. Here each language gets a ranked lexicon and
sentences of 3-8 words drawn from it with Zipf-like weights (``p(rank) ∝ 1/(rank+10)``),
so frequent words recur as they do in real text:

* where ``wordfreq`` has the language (es fr it nl ru sv tr zh en), the lexicon is its
  ``top_n_list`` filtered to the language's alphabet (wordfreq silently answers Russian
  for Kyrgyz and Tatar, so membership is checked against ``available_languages()``);
* otherwise (Kyrgyz, Tatar) the lexicon is made of pseudo-words generated from the
  language's alphabet and syllable structure ((C)V(C) syllables with front/back vowel
  harmony, as in Turkic languages). They are pronounceable, not meaningful.

Per-language knowledge is the :data:`TEXT` table. The lexicon depends only on the
language (it stands for "the language"); the sentences depend on the seed.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

LEXICON_SIZE = 2000
MIN_WORDS, MAX_WORDS = 3, 8


@dataclass(frozen=True)
class Phonotactics:
    """Syllable structure used to generate pseudo-words for a language wordfreq lacks."""

    onsets: Tuple[str, ...]
    codas: Tuple[str, ...]
    harmony: Tuple[Tuple[str, ...], ...]  # vowel sets; one word uses one set
    templates: Tuple[Tuple[str, float], ...] = (("CV", 0.4), ("CVC", 0.35), ("V", 0.1), ("VC", 0.15))
    syllables: Tuple[int, int] = (1, 3)


@dataclass(frozen=True)
class LanguageText:
    """How sentences are written in one language."""

    letters: str  # regex character class body: the letters a word may contain
    wordfreq: Optional[str] = None  # wordfreq language code, None to generate
    phonotactics: Optional[Phonotactics] = None
    joiner: str = " "  # between words (CommonVoice zh-CN writes no spaces)
    end: str = "."
    upper: Dict[str, str] = field(default_factory=dict)  # special upper-casing
    min_word_chars: int = 2  # drops elision fragments such as French "l", "d"


_LATIN = "a-z"
_CYR_RU = "а-яё"
_KY = Phonotactics(
    onsets=tuple("бгджзйклмнпрстчш"),
    codas=tuple("йклмнңпрстш"),
    harmony=(tuple("аыоу"), tuple("еиөү")),
)
_TT = Phonotactics(
    onsets=tuple("бгджҗзйклмнпрстчшһ"),
    codas=tuple("йклмнңпрстшф"),
    harmony=(tuple("аыоу"), tuple("әеиөү")),
)

#: The XLSR-10 languages of the paper's CommonVoice table, plus English.
TEXT: Dict[str, LanguageText] = {
    "es": LanguageText(_LATIN + "áéíóúüñ", wordfreq="es"),
    "fr": LanguageText(_LATIN + "àâæçéèêëîïôœùûüÿ", wordfreq="fr"),
    "it": LanguageText(_LATIN + "àèéìíîòóùú", wordfreq="it"),
    "ky": LanguageText("а-яёңөү", phonotactics=_KY),
    "nl": LanguageText(_LATIN + "éëïöüè", wordfreq="nl"),
    "ru": LanguageText(_CYR_RU, wordfreq="ru"),
    "sv": LanguageText(_LATIN + "åäöé", wordfreq="sv"),
    "tr": LanguageText("abcçdefgğhıijklmnoöprsştuüvyzâîû", wordfreq="tr", upper={"i": "İ", "ı": "I"}),
    "tt": LanguageText("а-яёәөүҗңһ", phonotactics=_TT),
    "zh": LanguageText("\u4e00-\u9fff", wordfreq="zh", joiner="", end="。", min_word_chars=1),
    "en": LanguageText(_LATIN, wordfreq="en"),
}


def text_spec(lang: str) -> LanguageText:
    if lang not in TEXT:
        raise ValueError(
            f"no sentence source for language {lang!r}; known: {', '.join(sorted(TEXT))} "
            "(add a LanguageText entry to xlsr_demo.sentences.TEXT)"
        )
    return TEXT[lang]


def wordfreq_covers(lang: str) -> bool:
    """True when wordfreq has real data for ``lang`` (not a nearest-language fallback)."""
    code = text_spec(lang).wordfreq
    if code is None:
        return False
    import wordfreq

    return code in wordfreq.available_languages()


def source_name(lang: str) -> str:
    """A one-line description of where ``lang``'s sentences come from."""
    if wordfreq_covers(lang):
        return f"wordfreq top_n_list({text_spec(lang).wordfreq!r})"
    return "generated (alphabet + syllables)"


def stable_seed(*parts) -> int:
    """A seed from strings/ints that is the same in every process (unlike ``hash``)."""
    return zlib.crc32("\x1f".join(str(p) for p in parts).encode("utf-8"))


def _generate_word(ph: Phonotactics, rng: np.random.Generator) -> str:
    vowels = ph.harmony[rng.integers(len(ph.harmony))]
    names = [t for t, _ in ph.templates]
    weights = np.array([w for _, w in ph.templates])
    out = []
    for _ in range(rng.integers(ph.syllables[0], ph.syllables[1] + 1)):
        template = names[rng.choice(len(names), p=weights / weights.sum())]
        if out and out[-1] in vowels and template[0] == "V":
            template = "C" + template  # no vowel hiatus across syllables
        for i, slot in enumerate(template):
            # a consonant before the nucleus is an onset, after it a coda
            pool = vowels if slot == "V" else ph.codas if "V" in template[:i] else ph.onsets
            out.append(pool[rng.integers(len(pool))])
    return "".join(out)


def _generated_lexicon(lang: str, ph: Phonotactics, size: int) -> List[str]:
    rng = np.random.default_rng(stable_seed("lexicon", lang))
    words: List[str] = []
    seen = set()
    while len(words) < size:
        w = _generate_word(ph, rng)
        if len(w) >= 2 and w not in seen:
            seen.add(w)
            words.append(w)
    return words


@lru_cache(maxsize=None)
def lexicon(lang: str, size: int = LEXICON_SIZE) -> Tuple[str, ...]:
    """The ranked word list (most frequent first) sentences of ``lang`` are drawn from."""
    spec = text_spec(lang)
    if wordfreq_covers(lang):
        import wordfreq

        word_re = re.compile(f"^[{spec.letters}]+$")
        words = [
            w
            for w in wordfreq.top_n_list(spec.wordfreq, size * 3)
            if word_re.match(w) and len(w) >= spec.min_word_chars
        ]
        if len(words) < 100:
            raise RuntimeError(f"wordfreq gave only {len(words)} usable {lang} words")
        return tuple(words[:size])
    if spec.phonotactics is None:
        raise ValueError(f"{lang}: wordfreq lacks it and TEXT[{lang!r}] has no phonotactics")
    return tuple(_generated_lexicon(lang, spec.phonotactics, size))


def _capitalize(word: str, spec: LanguageText) -> str:
    if not word:
        return word
    head = spec.upper.get(word[0], word[0].upper())
    return head + word[1:]


class SentenceSource:
    """An endless, reproducible stream of prompts for one (language, seed, stream)."""

    def __init__(self, lang: str, seed: int, stream: str = ""):
        self.spec = text_spec(lang)
        self.words = lexicon(lang)
        ranks = np.arange(len(self.words))
        weights = 1.0 / (ranks + 10.0)
        self.probs = weights / weights.sum()
        self.rng = np.random.default_rng(stable_seed("sentences", lang, seed, stream))

    def next(self) -> str:
        n = int(self.rng.integers(MIN_WORDS, MAX_WORDS + 1))
        idx = self.rng.choice(len(self.words), size=n, p=self.probs)
        words = [self.words[i] for i in idx]
        words[0] = _capitalize(words[0], self.spec)
        return self.spec.joiner.join(words) + self.spec.end


def sentences(lang: str, seed: int, count: int, stream: str = "") -> List[str]:
    src = SentenceSource(lang, seed, stream)
    return [src.next() for _ in range(count)]


def languages() -> Sequence[str]:
    return tuple(TEXT)
