"""IARPA BABEL (LDC releases) -> one 16 kHz utterance per transcribed segment.

XLSR fine-tunes and tests on ten BABEL languages (section 4.1), conversational telephone
speech: 8 kHz NIST SPHERE conversations with time-stamped transcriptions. Each segment
between two time stamps becomes an utterance, cut from the conversation, resampled to
16 kHz and written as FLAC below ``<output_dir>/audio/<lang>/``.

SPHERE: libsndfile reads PCM, u-law and a-law SPHERE. Some LDC releases store
*shorten*-compressed SPHERE (header ``sample_coding -s.. ulaw,embedded-shorten-v2.00``)
which it cannot read; this is detected from the header before any work starts, with the
fix (``sph2pipe -f sph in.sph out.sph`` decompresses to plain SPHERE).

BABEL markup (from the BABEL transcription guidelines) is handled by :data:`MARKUP`:

=====================================================  ===================================
token                                                  action
=====================================================  ===================================
``<no-speech>`` ``<silence>``                          removed (segment with nothing else:
                                                       rejected as "no speech")
``<hes>`` ``<breath>`` ``<cough>`` ``<laugh>``          removed (non-speech events)
``<lipsmack>`` ``<click>`` ``<ring>`` ``<dtmf>``
``<int>`` ``<sta>`` ``<prompt>`` ``<overlap>``
``<male-to-female>`` ``<female-to-male>`` ``<misc>``
``(())`` ``<foreign>`` ``<unk>``                       segment rejected (unintelligible or
                                                       foreign: no correct label exists)
``*word*`` (mispronounced)                             ``word``
``~`` (cut/overlap marker), ``_`` (letter spelling)     removed / space
``wor-`` ``-ord`` (word fragments)                      removed
any other ``<...>`` tag                                 removed, counted as unknown markup
=====================================================  ===================================
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from . import layout
from .audio import AudioSettings, Reject
from .pipeline import PrepareResult, Utterance, build_subset, finish
from .text import read_text_lines

# conversational/<folder> -> split name
SPLITS = {"training": "train", "sub-train": "train-sub", "dev": "dev", "eval": "eval"}
DROP, REJECT = "drop", "reject"
MARKUP = {
    **{t: DROP for t in (
        "<no-speech>", "<silence>", "<hes>", "<breath>", "<cough>", "<laugh>", "<lipsmack>",
        "<click>", "<ring>", "<dtmf>", "<int>", "<sta>", "<prompt>", "<overlap>",
        "<male-to-female>", "<female-to-male>", "<misc>")},
    **{t: REJECT for t in ("(())", "<foreign>", "<unk>")},
}
_TIME = re.compile(r"^\[(\d+(?:\.\d+)?)\]$")
AUDIO_DIR = "audio"


class SphereError(ValueError):
    """A SPHERE file libsndfile cannot decode (shorten compression)."""


def check_sphere(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(1024)
    if not head.startswith(b"NIST_1A"):
        return  # not SPHERE at all: the audio probe rejects it with libsndfile's message
    m = re.search(rb"sample_coding -s\d+ ([^\n]+)", head)
    if m and b"shorten" in m.group(1):
        raise SphereError(
            f"{path}: SPHERE compressed with shorten ({m.group(1).decode(errors='replace')}), "
            "which libsndfile cannot read; decompress the release first, e.g. "
            "`sph2pipe -f sph in.sph out.sph` for every file, then re-run")


def clean_babel(text: str) -> Tuple[Optional[str], Optional[str]]:
    """``(text, None)`` with markup removed/mapped, or ``(None, reason)``; see :data:`MARKUP`."""
    words, spoken = [], False
    for tok in text.split():
        action = MARKUP.get(tok)
        if action == REJECT:
            return None, f"contains {tok}"
        if action == DROP or (tok.startswith("<") and tok.endswith(">")):
            continue
        if tok.startswith("-") or tok.endswith("-"):
            continue  # word fragment
        tok = tok.strip("*").replace("~", "").replace("_", " ").strip()
        if tok:
            words.append(tok)
            spoken = True
    if not spoken:
        return None, "no speech"
    return " ".join(words), None


def read_segments(path: Path) -> Tuple[List[Tuple[float, float, str]], List[Reject]]:
    """``[start] text [end]`` blocks of a BABEL transcription -> (start, end, cleaned text)."""
    segs, bad = [], []
    stamp: Optional[float] = None
    pending: List[Tuple[int, str]] = []
    for lineno, line in read_text_lines(path):
        where = f"{path.name}:{lineno}"
        if line is None:
            bad.append(Reject(where, str(path), "bad transcript", "line is not valid UTF-8"))
            continue
        m = _TIME.match(line.strip())
        if m:
            t = float(m.group(1))
            for ln, text in pending:
                if stamp is None or t <= stamp:
                    bad.append(Reject(f"{path.name}:{ln}", str(path), "bad transcript",
                                      "segment without increasing time stamps"))
                    continue
                cleaned, why = clean_babel(text)
                if why:
                    bad.append(Reject(f"{path.name}:{ln}", str(path),
                                      "no speech" if why == "no speech" else "bad transcript", why))
                else:
                    segs.append((stamp, t, cleaned))
            stamp, pending = t, []
        elif line.strip():
            pending.append((lineno, line.strip()))
    for ln, _ in pending:
        bad.append(Reject(f"{path.name}:{ln}", str(path), "bad transcript", "no end time stamp"))
    return segs, bad


def prepare_babel(
    corpus_dir,
    output_dir,
    languages: Optional[Sequence[str]] = None,
    num_jobs: int = 1,
    *,
    settings: AudioSettings = AudioSettings(),
    oov: str = "keep",
) -> PrepareResult:
    """Segment BABEL conversations into ``{train,dev,...}_<lang>`` subsets.

    Expected input: one folder per language code (link the LDC release folders)::

        corpus_dir/
          tr/                                         (e.g. -> IARPA_BABEL_BP_105)
            conversational/
              training/ audio/BABEL_BP_105_<id>_inLine.sph      (8 kHz SPHERE)
                        transcription/BABEL_BP_105_<id>_inLine.txt
              dev/      audio/...  transcription/...
              [sub-train/, eval/]

        transcription/*.txt:   [0.000]
                               <no-speech>
                               [1.625]
                               merhaba <hes> nasılsın
                               [4.120]

    ``oov`` defaults to ``keep``: most BABEL languages have no alphabet row in
    :mod:`manifests.text`, and their romanisations vary by release.
    """
    corpus_dir, output_dir = Path(corpus_dir).resolve(), Path(output_dir)
    if languages is None:
        languages = sorted(p.name for p in corpus_dir.iterdir() if (p / "conversational").is_dir())
    if not languages:
        raise ValueError(f"{corpus_dir}: no <lang>/conversational folders (see --help)")
    out_root = (output_dir / AUDIO_DIR).resolve()
    plan = []
    for lang in languages:
        conv = corpus_dir / layout.check_language(lang) / "conversational"
        if not conv.is_dir():
            raise ValueError(f"{conv} not found")
        for folder, split in SPLITS.items():
            if not (conv / folder / "transcription").is_dir():
                continue
            utts, bad = [], []
            for trn in sorted((conv / folder / "transcription").glob("*.txt")):
                sph = conv / folder / "audio" / f"{trn.stem}.sph"
                if sph.is_file():
                    check_sphere(sph)  # fail before the long work starts
                segs, rej = read_segments(trn)
                bad += rej
                for start, end, text in segs:
                    key = f"{trn.stem}_{int(round(start * 1000)):08d}"
                    utts.append(Utterance(key, str(sph), f"{lang}/{key}.flac", text,
                                          trn.stem, start, end))
            plan.append((lang, split, utts, bad))
    result = PrepareResult(output_dir)
    for lang, split, utts, bad in plan:
        result.subsets.append(
            build_subset(output_dir, split, lang, utts, str(out_root), pre_rejects=bad,
                         convert=True, settings=settings, num_jobs=num_jobs, oov=oov))
    return finish(result)
