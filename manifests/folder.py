"""Any folder of audio -> fairseq manifests (what ``wav2vec_manifest.py`` does, per language).

For unlabeled pre-training data that comes in no standard layout (XLSR's corpora were
prepared this way before language balancing). Files are found by extension, filtered by
a path substring, assigned a language by a regular expression over the relative path,
and split into ``train`` / ``dev`` with fairseq's rule (``random() > valid_percent``,
seeded, over the sorted file list, so the split is reproducible). Sample counts come from
the headers; with ``convert=True`` the files are re-encoded as 16 kHz FLAC instead.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from . import layout
from .audio import AudioSettings, Reject
from .pipeline import PrepareResult, Utterance, build_subset, finish
from .text import read_text_lines

AUDIO_DIR = "audio"


def read_transcripts(path: Path) -> Tuple[Dict[str, Optional[str]], List[Reject]]:
    """``<relpath or stem><TAB><text>`` per line; bad lines become rejects."""
    texts: Dict[str, Optional[str]] = {}
    bad = []
    for lineno, line in read_text_lines(path):
        where = f"{path.name}:{lineno}"
        if line is None:
            bad.append(Reject(where, str(path), "bad transcript", "line is not valid UTF-8"))
            continue
        if not line.strip():
            continue
        key, _, text = line.partition("\t")
        texts[key.strip()] = text
    return texts, bad


def _sidecar_text(audio: Path, ext: str) -> Tuple[Optional[str], Optional[str]]:
    side = audio.with_suffix(ext)
    if not side.is_file():
        return None, f"no transcript {side.name}"
    try:
        return side.read_bytes().decode("utf-8").strip(), None
    except UnicodeDecodeError:
        return None, f"{side.name} is not valid UTF-8"


def prepare_folder(
    corpus_dir,
    output_dir,
    languages: Optional[Sequence[str]] = None,
    num_jobs: int = 1,
    *,
    ext: str = "flac",
    valid_percent: float = 0.01,
    seed: int = 42,
    path_must_contain: Optional[str] = None,
    language: Optional[str] = None,
    lang_pattern: Optional[str] = None,
    transcripts: Optional[str] = None,
    sidecar_ext: Optional[str] = None,
    convert: bool = False,
    settings: AudioSettings = AudioSettings(),
    oov: str = "reject",
) -> PrepareResult:
    """Build ``{train,dev}_<lang>.tsv`` (and labels if transcripts are given) from a tree.

    Expected input: any tree; the language comes from ``lang_pattern`` (a regex over the
    path relative to ``corpus_dir``; its group ``lang`` or first group) or is ``language``::

        corpus_dir/
          de/spk1/utt1.flac   de/spk1/utt1.txt   (sidecar transcript, optional)
          sw/x/y.flac ...                        lang_pattern='^([^/]+)/'

    Transcripts: ``transcripts`` is a tsv of ``<relpath or stem><TAB><text>``;
    ``sidecar_ext`` (e.g. ``.txt``) reads one text file next to each audio file.
    Speakers (for ``stats``) are the parent folder names.
    """
    corpus_dir, output_dir = Path(corpus_dir).resolve(), Path(output_dir)
    if not corpus_dir.is_dir():
        raise FileNotFoundError(f"{corpus_dir}: no such directory (the corpus folder to scan for audio)")
    if not 0.0 <= valid_percent <= 1.0:
        raise ValueError(f"valid_percent is a fraction in [0, 1] (fairseq's), got {valid_percent}")
    if (language is None) == (lang_pattern is None):
        raise ValueError("give exactly one of language (one code) or lang_pattern (a regex)")
    pattern = re.compile(lang_pattern) if lang_pattern else None
    texts, pre_bad = read_transcripts(Path(transcripts)) if transcripts else ({}, [])
    ext = ext.lstrip(".")
    files = sorted(p for p in corpus_dir.rglob(f"*.{ext}") if p.is_file())
    if not files:
        raise ValueError(f"{corpus_dir}: no *.{ext} files (use --ext)")
    rand = random.Random(seed)
    groups: Dict[Tuple[str, str], List[Utterance]] = {}
    rejects: Dict[Tuple[str, str], List[Reject]] = {}
    filtered = 0
    for path in files:
        rel = path.relative_to(corpus_dir).as_posix()
        # fairseq's rule; named "dev" like every other builder (and the recipes' valid_subset)
        split = "train" if rand.random() > valid_percent else "dev"
        if path_must_contain and path_must_contain not in rel:
            filtered += 1
            continue
        lang = language
        if pattern is not None:
            m = pattern.search(rel)
            lang = (m.groupdict().get("lang") or (m.group(1) if m.groups() else m.group(0))) if m else None
            if lang is None:
                rejects.setdefault(("train", "unmatched"), []).append(
                    Reject(rel, str(path), "no language", f"path does not match {lang_pattern!r}"))
                continue
        if languages and lang not in languages:
            continue
        layout.check_language(lang)
        text = None
        if transcripts:
            text = texts.get(rel, texts.get(Path(rel).stem))
            if text is None:
                rejects.setdefault((split, lang), []).append(
                    Reject(rel, str(path), "bad transcript", "no transcript line"))
                continue
        elif sidecar_ext:
            text, why = _sidecar_text(path, sidecar_ext)
            if why:
                rejects.setdefault((split, lang), []).append(
                    Reject(rel, str(path), "bad transcript", why))
                continue
        out_rel = f"{lang}/{Path(rel).with_suffix('.flac').as_posix()}" if convert else rel
        groups.setdefault((split, lang), []).append(
            Utterance(rel, str(path), out_rel, text, path.parent.name))
    unmatched = rejects.pop(("train", "unmatched"), [])
    if unmatched:
        print(f"{len(unmatched)} file(s) match no language, e.g. {unmatched[0].key}")
    if filtered:
        print(f"{filtered} file(s) left out by --path-must-contain {path_must_contain!r}")
    root = str((output_dir / AUDIO_DIR).resolve()) if convert else str(corpus_dir)
    result = PrepareResult(output_dir)
    keys = sorted(set(groups) | set(rejects), key=lambda k: (k[1], k[0]))
    for i, (split, lang) in enumerate(keys):
        bad = rejects.get((split, lang), []) + (pre_bad if i == 0 else [])  # report once
        result.subsets.append(
            build_subset(output_dir, split, lang, groups.get((split, lang), []), root,
                         pre_rejects=bad, convert=convert, settings=settings,
                         num_jobs=num_jobs, oov=oov)
        )
    return finish(result, ("ltr",) if (transcripts or sidecar_ext) else ())
