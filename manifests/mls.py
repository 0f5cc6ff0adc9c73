"""Multilingual LibriSpeech -> fairseq manifests with the paper's fine-tuning subsets.

XLSR fine-tunes on MLS with 1 h, 10 h, 100 h and all labeled data per language
(section 4.1). MLS ships the limited-supervision lists: six 10-minute folds under
``limited_supervision/1hr/{0..5}/handles.txt`` (together the 1 h set) and
``limited_supervision/9hr/handles.txt``; the 10 h set is 9 h plus the 1 h set. A 100 h
list is not part of MLS; pass your own with ``train_100h``. Split names:

    train-1h, train-10h, [train-100h], train (full), dev, test

MLS audio is already 16 kHz (FLAC, or Opus in the ``_opus`` releases, both readable by
fairseq through libsndfile), so files are referenced in place and counted from their
headers, nothing is decoded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from . import layout
from .audio import AudioSettings, Reject
from .pipeline import PrepareResult, Utterance, build_subset, finish
from .text import read_text_lines

# MLS folder suffix -> language code
MLS_LANGUAGES = {
    "english": "en", "german": "de", "dutch": "nl", "french": "fr",
    "spanish": "es", "italian": "it", "portuguese": "pt", "polish": "pl",
}
SPLITS = ("train", "dev", "test")


def _find_release(corpus_dir: Path, lang: str) -> Path:
    names = [n for n, c in MLS_LANGUAGES.items() if c == lang or n == lang] or [lang]
    for name in names:
        for cand in (corpus_dir / f"mls_{name}", corpus_dir / f"mls_{name}_opus"):
            if cand.is_dir():
                return cand
    raise ValueError(f"{corpus_dir}: no mls_<language> folder for {lang!r} "
                     f"(known: {', '.join(f'{n}={c}' for n, c in MLS_LANGUAGES.items())})")


def read_transcripts(path: Path) -> Tuple[Dict[str, str], List[Reject]]:
    """``<spk>_<book>_<seg><TAB><text>`` lines; undecodable or malformed lines are rejects."""
    texts, bad = {}, []
    for lineno, line in read_text_lines(path):
        where = f"{path.name}:{lineno}"
        if line is None:
            bad.append(Reject(where, str(path), "bad transcript", "line is not valid UTF-8"))
        elif line.strip():
            key, sep, text = line.partition("\t")
            if not sep or key.count("_") != 2:
                bad.append(Reject(where, str(path), "bad transcript",
                                  "expected '<spk>_<book>_<seg><TAB>text'"))
            else:
                texts[key] = text
    return texts, bad


def _read_ids(paths: Sequence[Path]) -> List[str]:
    ids = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            ids += [line.split()[0] for line in f if line.strip()]
    return ids


def _audio_for(audio_dir: Path, key: str) -> Tuple[str, str]:
    spk, book, _ = key.split("_")
    for ext in (".flac", ".opus"):
        rel = f"{spk}/{book}/{key}{ext}"
        if (audio_dir / rel).is_file():
            return str(audio_dir / rel), rel
    rel = f"{spk}/{book}/{key}.flac"
    return str(audio_dir / rel), rel  # missing: the probe rejects it


def prepare_mls(
    corpus_dir,
    output_dir,
    languages: Optional[Sequence[str]] = None,
    num_jobs: int = 1,
    *,
    train_100h: Optional[str] = None,
    settings: AudioSettings = AudioSettings(),
    oov: str = "reject",
) -> PrepareResult:
    """Build the MLS subsets of every language (see module doc for split names).

    Expected input (the OpenSLR tarballs unpacked side by side)::

        corpus_dir/
          mls_spanish/                       (or mls_spanish_opus/)
            train/ transcripts.txt           "<spk>_<book>_<seg>\\t<text>"
                   audio/<spk>/<book>/<spk>_<book>_<seg>.flac|.opus
                   limited_supervision/1hr/{0..5}/handles.txt
                   limited_supervision/9hr/handles.txt
            dev/  transcripts.txt audio/...
            test/ transcripts.txt audio/...

    The manifest root of a split is ``<release>/<split>/audio`` (absolute).
    """
    corpus_dir, output_dir = Path(corpus_dir).resolve(), Path(output_dir)
    if languages is None:
        languages = sorted(
            MLS_LANGUAGES.get(p.name[4:].replace("_opus", ""), p.name[4:].replace("_opus", ""))
            for p in corpus_dir.glob("mls_*") if p.is_dir())
    if not languages:
        raise ValueError(f"{corpus_dir}: no mls_<language> folders")
    plan = []
    for lang in languages:
        release = _find_release(corpus_dir, layout.check_language(lang))
        for split in SPLITS:
            split_dir = release / split
            if not (split_dir / "transcripts.txt").is_file():
                raise ValueError(f"{split_dir}/transcripts.txt not found")
            texts, bad = read_transcripts(split_dir / "transcripts.txt")
            subsets = {split: (list(texts), bad)}
            if split == "train":
                limited = split_dir / "limited_supervision"
                one = sorted((limited / "1hr").glob("*/handles.txt"))
                nine = [limited / "9hr" / "handles.txt"]
                if one:
                    subsets["train-1h"] = (_read_ids(one), [])
                    if nine[0].is_file():
                        subsets["train-10h"] = (_read_ids(one + nine), [])
                if train_100h:
                    subsets["train-100h"] = (_read_ids([Path(train_100h.format(lang=lang))]), [])
            for name, (keys, pre) in subsets.items():
                plan.append((lang, name, split_dir, texts, keys, pre))
    result = PrepareResult(output_dir)
    for lang, name, split_dir, texts, keys, pre in plan:
        audio_dir = split_dir / "audio"
        utts, rejects = [], list(pre)
        for key in keys:
            if key not in texts:
                rejects.append(Reject(key, str(split_dir / "transcripts.txt"), "missing audio",
                                      "listed in a subset but not in transcripts.txt"))
                continue
            if key.count("_") != 2:
                rejects.append(Reject(key, str(split_dir), "bad transcript", "malformed id"))
                continue
            source, rel = _audio_for(audio_dir, key)
            utts.append(Utterance(key, source, rel, texts[key], key.split("_")[0]))
        result.subsets.append(
            build_subset(output_dir, name, lang, utts, str(audio_dir), pre_rejects=rejects,
                         settings=settings, num_jobs=num_jobs, oov=oov))
    return finish(result)
