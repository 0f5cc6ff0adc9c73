"""Checks on per-language manifests before any training step.

fairseq's ``FileAudioDataset`` only opens an audio file when a batch needs it, so a
missing file, an empty clip or an 8 kHz recording in a 16 kHz corpus surfaces hours
into a run, deep inside a data-loader worker. XLSR corpora mix many sources, which
makes such files common; this module reads every manifest line's header up front
(cheap: ``soundfile.info`` reads no samples) and reports all problems at once, each
as ``manifest:line: path: what is wrong``.
"""


import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import soundfile as sf

from manifests.formats import ManifestError, read_manifest

MAX_REPORTED = 20


@dataclass(frozen=True)
class LanguageManifest:
    """One language's checked manifest. Its hours are not counted here: the sampler
    counts them on what the dataset keeps (``xlsr_core.sampling.language_hours``)."""

    lang: str
    path: Path
    utterances: int


def _check_file(root: str, rel: str, num_samples: int, sample_rate: int) -> Optional[str]:
    path = os.path.join(root, rel)
    if not os.path.isfile(path):
        return f"{path}: file not found"
    if os.path.getsize(path) == 0:
        return f"{path}: file is empty"
    try:
        info = sf.info(path)
    except Exception as e:  # soundfile raises RuntimeError / LibsndfileError
        return f"{path}: unreadable audio ({e})"
    if info.samplerate != sample_rate:
        return (
            f"{path}: sample rate {info.samplerate} Hz, but task.sample_rate is "
            f"{sample_rate} Hz; resample the corpus (xlsr-manifest writes 16 kHz FLAC)"
        )
    if info.frames == 0 or num_samples == 0:
        return f"{path}: no samples"
    return None


def check_manifest(
    path: os.PathLike,
    lang: str,
    sample_rate: int,
    check_audio: bool = True,
    num_threads: int = 8,
) -> LanguageManifest:
    """Parse and (optionally) check every audio file of one language's manifest.

    Raises :class:`ManifestError` listing every problem (file and line) found.
    """
    manifest = read_manifest(path)
    if len(manifest) == 0:
        raise ManifestError(
            f"{path}: language '{lang}' has no utterances; drop it from task.languages "
            "or rebuild its manifest"
        )
    if check_audio:
        with ThreadPoolExecutor(num_threads) as pool:
            results = pool.map(
                lambda e: _check_file(manifest.root, e[0], e[1], sample_rate),
                manifest.entries,
            )
            problems: List[str] = [
                f"{path}:{i + 2}: {msg}" for i, msg in enumerate(results) if msg
            ]
        if problems:
            shown = "\n  ".join(problems[:MAX_REPORTED])
            more = len(problems) - MAX_REPORTED
            raise ManifestError(
                f"{len(problems)} bad line(s) in {path} (language '{lang}'):\n  {shown}"
                + (f"\n  ... and {more} more" if more > 0 else "")
                + "\nFix or remove these lines (xlsr-manifest rebuilds manifests and "
                "lists rejected files), or set task.skip_manifest_check=true to skip this check."
            )
    return LanguageManifest(
        lang=lang,
        path=Path(path),
        utterances=len(manifest),
    )
