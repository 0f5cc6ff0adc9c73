"""Checks on per-language manifests and their labels before any training step.

fairseq's ``FileAudioDataset`` only opens an audio file when a batch needs it, so a
missing file, an empty clip or an 8 kHz recording in a 16 kHz corpus surfaces hours
into a run, deep inside a data-loader worker. XLSR corpora mix many sources, which
makes such files common; this module reads every manifest line's header up front
(cheap: ``soundfile.info`` reads no samples) and reports all problems at once, each
as ``manifest:line: path: what is wrong``.

Label files get the same treatment (:func:`read_labels`, :func:`check_symbols`,
:func:`check_label_lengths`): line counts against the manifest, symbols missing from
the dictionary (listed with counts), and utterances too short for their labels (CTC
needs a frame per label plus one per repeated symbol, frames as the model's feature
encoder makes them) or longer than ``max_sample_size`` (cropping would cut them off
their labels).
"""


import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import soundfile as sf
import torch
from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Config, Wav2Vec2Model

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


# -- labels ----------------------------------------------------------------------------

FramesFn = Callable[[torch.Tensor], torch.Tensor]  # samples -> feature frames, per utterance


def default_feature_frames(num_samples: torch.Tensor) -> torch.Tensor:
    """Frames of fairseq's default wav2vec 2.0 feature encoder (20 ms, 25 ms receptive
    field), the one every released wav2vec 2.0 / XLSR / XLS-R model has; computed by
    fairseq's own ``_get_feat_extract_output_lengths``, for checks made before a model
    exists (a built model answers for itself: ``feature_frames_of``)."""
    return Wav2Vec2Model._get_feat_extract_output_lengths(SimpleNamespace(cfg=Wav2Vec2Config()), num_samples)


def feature_frames_of(model) -> Optional[FramesFn]:
    """The feature-frame count of a fairseq wav2vec 2.0 model, or of the one inside a
    CTC model (``wav2vec_ctc``); None for anything else."""
    for candidate in (model, getattr(getattr(model, "w2v_encoder", None), "w2v_model", None)):
        if hasattr(candidate, "_get_feat_extract_output_lengths"):
            return candidate._get_feat_extract_output_lengths
    return None


def ctc_min_frames(label: Sequence[str]) -> int:
    """Fewest frames CTC can align ``label`` to: one per symbol, one blank per repeat."""
    return len(label) + sum(a == b for a, b in zip(label, label[1:]))


def read_labels(path: Path, manifest: Path) -> List[str]:
    """The lines of a label file, which must match its manifest line for line."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: labels for {manifest} (task.labels={path.suffix[1:]}); "
            "build them with xlsr-manifest or choose other labels"
        )
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    n_audio = len(read_manifest(manifest))
    if len(lines) != n_audio:
        raise ManifestError(
            f"{path} has {len(lines)} lines but {manifest} lists {n_audio} utterances: "
            "labels and audio must correspond line by line; rebuild both with xlsr-manifest"
        )
    return lines


def check_symbols(path: Path, lines: Sequence[str], symbols, dict_file: Path) -> None:
    """Every symbol of ``lines`` must be in ``symbols`` (a dictionary's index)."""
    missing: Counter = Counter()
    first: Dict[str, int] = {}
    for lineno, line in enumerate(lines, start=1):
        for sym in line.split():
            if sym not in symbols:
                missing[sym] += 1
                first.setdefault(sym, lineno)
    if missing:
        shown = ", ".join(
            f"{sym!r} x{n} (first at line {first[sym]})" for sym, n in missing.most_common(MAX_REPORTED)
        )
        more = f" and {len(missing) - MAX_REPORTED} more" if len(missing) > MAX_REPORTED else ""
        raise ManifestError(
            f"{path}: {len(missing)} symbol(s) not in {dict_file}: {shown}{more}. Rebuild the "
            "dictionary from the labels of every language (xlsr-manifest), or fix these labels"
        )


@dataclass
class LabelLengths:
    """What the length check needs of one label file, kept as arrays so that it can run
    again when the model (and so its feature encoder) is known."""

    path: Path
    manifest: Path
    line: np.ndarray  # manifest line index of each kept utterance (0-based, header excluded)
    samples: np.ndarray
    labels: np.ndarray  # symbols per line
    needed: np.ndarray  # ctc_min_frames per line

    @classmethod
    def of(cls, path, manifest, lines: Sequence[str], sizes, kept: Sequence[int]) -> "LabelLengths":
        tokens = [lines[i].split() for i in kept]
        return cls(
            Path(path), Path(manifest), np.asarray(kept, dtype=np.int64), np.asarray(sizes, dtype=np.int64),
            np.array([len(t) for t in tokens], dtype=np.int64), np.array([ctc_min_frames(t) for t in tokens], dtype=np.int64),
        )


def check_label_lengths(lengths: LabelLengths, frames_of: FramesFn, max_sample_size: Optional[int]) -> None:
    """Every utterance has the frames its labels need, and fits ``max_sample_size``."""
    frames = frames_of(torch.from_numpy(lengths.samples)).clamp(min=0).numpy()
    short = frames < lengths.needed
    long_ = ~short & (lengths.samples > max_sample_size) if max_sample_size is not None else np.zeros_like(short)
    bad = np.flatnonzero(short | long_)
    if len(bad) == 0:
        return
    shown = []
    for k in bad[:MAX_REPORTED]:
        size, n = int(lengths.samples[k]), int(lengths.line[k]) + 1
        msg = (f"{size} samples = {int(frames[k])} frames, but its {int(lengths.labels[k])} labels need "
               f"at least {int(lengths.needed[k])}") if short[k] else (
               f"{size} samples is longer than task.max_sample_size ({max_sample_size}); it would be "
               "cropped away from its labels")
        shown.append(f"  {lengths.manifest}:{n + 1} / {lengths.path}:{n}: {msg}")
    more = f"\n  ... and {len(bad) - MAX_REPORTED} more" if len(bad) > MAX_REPORTED else ""
    raise ManifestError(
        f"{len(bad)} utterance(s) cannot be fine-tuned on with CTC:\n" + "\n".join(shown) + more
        + "\nRemove them from the manifest and labels, or unset task.max_sample_size (fine-tuning never crops)"
    )
