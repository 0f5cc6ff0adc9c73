"""Words -> phones (``.phn`` labels) with espeak-ng, for the paper's phoneme recognition.

XLSR's CommonVoice experiments (section 4.1, following Rivière et al. 2020) report phone
error rates on labels made by phonemizing the transcripts with espeak-ng, dropping
utterances that contain phones rarer than a threshold. This module does that through
``phonemizer``'s ``EspeakBackend`` with the ``libespeak-ng`` and voice data shipped by the
``espeakng-loader`` wheel, so no system espeak is needed.

Language -> voice is :data:`VOICES`. Mandarin: espeak-ng 1.51 read Han characters as
"Chinese letter"; with the 1.52 library shipped by espeakng-loader the ``cmn`` voice
reads Han characters through its dictionary, and ``cmn-latn-pinyin`` gives the identical
output for the same characters (checked: ``世界`` -> ``s. i.5 | tɕ iɛ5`` with both), so
``zh*`` maps to ``cmn``. Note that espeak treats every Han character as a word.

Phones are separated by spaces. The paper's CommonVoice phone labels have no word
boundary symbol, so none is written by default; ``word_boundary="|"`` puts one between
words (handy for a lexicon-free phone LM).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from . import formats, layout
from .audio import Reject
from .pipeline import rebuild_dicts

VOICES: Dict[str, str] = {
    "en": "en-us", "es": "es", "fr": "fr-fr", "it": "it", "nl": "nl", "ru": "ru",
    "sv": "sv", "sv-SE": "sv", "tr": "tr", "tt": "tt", "ky": "ky", "zh": "cmn",
    "zh-CN": "cmn", "zh-TW": "cmn", "zh-HK": "yue", "de": "de", "pt": "pt", "pl": "pl",
    "eu": "eu", "ca": "ca", "fa": "fa", "ar": "ar", "cy": "cy", "ta": "ta", "ja": "ja",
    "id": "id", "mn": "mn", "et": "et", "ia": "ia", "ro": "ro", "lv": "lv", "sl": "sl",
}
_SEP = "|"  # internal word separator handed to phonemizer


def _backend(voice: str):
    import espeakng_loader
    from phonemizer.backend import EspeakBackend
    from phonemizer.backend.espeak.wrapper import EspeakWrapper

    # the environment variables reach phonemizer's worker processes (njobs > 1) too
    os.environ.setdefault("PHONEMIZER_ESPEAK_LIBRARY", espeakng_loader.get_library_path())
    os.environ.setdefault("PHONEMIZER_ESPEAK_DATA_PATH", espeakng_loader.get_data_path())
    EspeakWrapper.set_library(os.environ["PHONEMIZER_ESPEAK_LIBRARY"])
    EspeakWrapper.set_data_path(os.environ["PHONEMIZER_ESPEAK_DATA_PATH"])
    if voice not in EspeakBackend.supported_languages():
        raise ValueError(f"espeak-ng has no voice {voice!r}; pick one of "
                         f"{sorted(EspeakBackend.supported_languages())} with --voice LANG=VOICE")
    quiet = logging.getLogger("xlsr-phonemize")
    quiet.setLevel(logging.ERROR)
    return EspeakBackend(voice, language_switch="remove-flags", words_mismatch="ignore",
                         logger=quiet)


def phonemize_lines(lines: Sequence[str], voice: str, word_boundary: Optional[str] = None,
                    num_jobs: int = 1) -> List[str]:
    """One phone string per input line, phones separated by spaces (batch espeak call)."""
    from phonemizer.separator import Separator

    out = _backend(voice).phonemize(
        list(lines), separator=Separator(phone=" ", word=f" {_SEP} ", syllable=""),
        strip=True, njobs=max(1, min(num_jobs, len(lines) // 20_000)))  # workers cost ~1 s to start
    result = []
    for line in out:
        toks = [t for t in line.split() if t]
        if word_boundary is None:
            toks = [t for t in toks if t != _SEP]
        else:
            toks = [word_boundary if t == _SEP else t for t in toks]
        result.append(" ".join(toks))
    return result


@dataclass
class PhonemizeResult:
    written: List[Path] = field(default_factory=list)
    removed: Counter = field(default_factory=Counter)  # subset -> utterances removed
    rare: Dict[str, Counter] = field(default_factory=dict)  # lang -> rare phone counts

    def summary(self) -> str:
        lines = [f"wrote {p}" for p in self.written]
        for lang, rare in self.rare.items():
            if rare:
                shown = ", ".join(f"{p!r} x{n}" for p, n in rare.most_common(20))
                lines.append(f"{lang}: rare phones {shown}")
        for sub, n in self.removed.items():
            lines.append(f"{sub}: {n} utterance(s) removed (rare phone or empty phonemization)")
        return "\n".join(lines)


def _subsets(data: Path, languages: Optional[Sequence[str]], splits: Optional[Sequence[str]]):
    found = []
    for wrd in sorted(data.glob("*.wrd")):
        split, lang = layout.split_subset(wrd.stem)
        if lang and (not languages or lang in languages) and (not splits or split in splits):
            found.append((split, lang))
    return found


def _rewrite(data: Path, split: str, lang: str, keep: List[int], phn: List[str],
             removed: List[Reject]) -> None:
    """Drop utterances from a subset's manifest and every parallel file, atomically each."""
    man = formats.read_manifest(layout.manifest_path(data, split, lang))
    rate = formats.verified_rate(layout.manifest_path(data, split, lang))  # kept lines stay verified
    for kind in (*layout.LABEL_KINDS, layout.SPEAKER_LABELS):
        path = layout.label_path(data, split, lang, kind)
        if kind == "phn":
            formats.write_lines(path, [phn[i] for i in keep])
        elif path.is_file():
            lines = formats.read_lines(path)
            formats.write_lines(path, [lines[i] for i in keep])
    if removed:
        rej = layout.rejects_path(data, split, lang)
        with open(rej, "a", encoding="utf-8") as f:
            if rej.stat().st_size == 0:
                print("key\tsource\treason\tdetail", file=f)
            for r in removed:
                print(f"{r.key}\t{r.source}\t{r.reason}\t{r.detail}", file=f)
    formats.write_manifest(layout.manifest_path(data, split, lang),
                           formats.Manifest(man.root, [man.entries[i] for i in keep]), verified_rate=rate)


def phonemize_data(
    data,
    languages: Optional[Sequence[str]] = None,
    splits: Optional[Sequence[str]] = None,
    *,
    voices: Optional[Dict[str, str]] = None,
    word_boundary: Optional[str] = None,
    min_phone_count: int = 0,
    num_jobs: int = 1,
) -> PhonemizeResult:
    """Write ``<split>_<lang>.phn`` for every ``.wrd`` in ``data`` and the ``dict.phn`` files.

    ``min_phone_count`` > 0: phones seen fewer times than that (over all chosen splits of
    the language) are rare; utterances containing one are removed from the manifest and
    all its label files, and listed in the rejects file.
    """
    data = Path(data)
    table = {**VOICES, **(voices or {})}
    subsets = _subsets(data, languages, splits)
    if not subsets:
        raise ValueError(f"{data}: no <split>_<lang>.wrd files to phonemize")
    missing = sorted({l for _, l in subsets if l not in table})
    if missing:
        raise ValueError(f"no espeak voice for {missing}; add --voice LANG=VOICE")
    result = PhonemizeResult()
    by_lang: Dict[str, Dict[str, List[str]]] = {}
    for split, lang in subsets:
        words = formats.read_lines(layout.label_path(data, split, lang, "wrd"))
        by_lang.setdefault(lang, {})[split] = phonemize_lines(
            words, table[lang], word_boundary, num_jobs)
    for lang, per_split in by_lang.items():
        counts = formats.count_symbols(l for lines in per_split.values() for l in lines)
        rare = Counter({p: n for p, n in counts.items()
                        if n < min_phone_count and p != word_boundary})
        result.rare[lang] = rare
        for split, phn in per_split.items():
            man = formats.read_manifest(layout.manifest_path(data, split, lang))
            if len(man) != len(phn):
                raise formats.ManifestError(
                    f"{layout.label_path(data, split, lang, 'wrd')}: {len(phn)} lines, "
                    f"manifest has {len(man)}; rebuild the subset")
            keep, removed = [], []
            for i, line in enumerate(phn):
                bad = sorted({p for p in line.split() if p in rare})
                if bad or not line:
                    why = f"rare phone(s) {' '.join(bad)}" if bad else "empty phonemization"
                    removed.append(Reject(man.entries[i][0], man.root, "phonemize", why))
                else:
                    keep.append(i)
            _rewrite(data, split, lang, keep, phn, removed)
            if removed:
                result.removed[layout.subset_name(split, lang)] = len(removed)
            result.written.append(layout.label_path(data, split, lang, "phn"))
    for kind in ("phn", "ltr"):
        result.written += rebuild_dicts(data, kind)
    return result
