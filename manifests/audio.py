"""Audio side of manifest building: header probes, 16 kHz FLAC conversion, a process pool.

fairseq's ``FileAudioDataset`` refuses a file whose sample rate differs from the task's
(16 kHz for XLSR), and batches by the sample counts of the manifest. So every clip is
either

* **probed** (``convert=False``): the count comes from the file header
  (``soundfile.info``; FLAC/WAV/SPHERE/Opus store it), nothing is decoded; or
* **converted** (``convert=True``): decoded (MP3, Opus, SPHERE, ...), averaged to mono,
  resampled with ``scipy.signal.resample_poly`` and written as 16-bit FLAC through a
  temporary file and a rename, so a killed run never leaves a half file. A converted
  file that already exists is probed instead of re-decoded: re-running resumes.

One :class:`AudioJob` is one source file and the segments cut from it (one whole-file
segment for CommonVoice/MLS/folders, many for BABEL's long conversations); jobs run in a
``multiprocessing`` pool, results come back in input order with a tqdm bar.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly
from tqdm import tqdm

TARGET_RATE = 16_000


@dataclass(frozen=True)
class Segment:
    """One utterance of a job: ``rel`` is its path below the manifest root."""

    key: str
    rel: str
    start: Optional[float] = None  # seconds; None = whole file
    end: Optional[float] = None


@dataclass(frozen=True)
class AudioJob:
    source: str
    segments: Tuple[Segment, ...]
    convert: bool = False
    out_root: Optional[str] = None  # where converted files go (rel is below it)


@dataclass(frozen=True)
class AudioSettings:
    sample_rate: int = TARGET_RATE
    min_seconds: float = 0.1
    max_seconds: Optional[float] = None
    verify: bool = False  # probe mode: decode fully to catch corrupt bodies


@dataclass(frozen=True)
class Done:
    key: str
    rel: str
    num_samples: int
    reused: bool = False  # a converted file from an earlier run


@dataclass(frozen=True)
class Reject:
    key: str
    source: str
    reason: str  # short category, counted in summaries
    detail: str = ""


Outcome = Union[Done, Reject]


def _duration_reject(seg: Segment, source: str, n: int, s: AudioSettings) -> Optional[Reject]:
    if n == 0:
        return Reject(seg.key, source, "empty audio", "0 samples")
    secs = n / s.sample_rate
    if secs < s.min_seconds:
        return Reject(seg.key, source, "too short", f"{secs:.3f}s < {s.min_seconds}s")
    if s.max_seconds is not None and secs > s.max_seconds:
        return Reject(seg.key, source, "too long", f"{secs:.1f}s > {s.max_seconds}s")
    return None


def _probe(job: AudioJob, s: AudioSettings) -> List[Outcome]:
    seg = job.segments[0]
    try:
        info = sf.info(job.source)
        if s.verify:
            sf.read(job.source, dtype="int16")
    except Exception as e:  # libsndfile's message names the problem
        return [Reject(seg.key, job.source, "unreadable audio", str(e).replace("\n", " "))]
    if info.samplerate != s.sample_rate:
        return [
            Reject(
                seg.key, job.source, "wrong sample rate",
                f"{info.samplerate} Hz, fairseq needs {s.sample_rate} Hz (use --convert)",
            )
        ]
    bad = _duration_reject(seg, job.source, info.frames, s)
    return [bad] if bad else [Done(seg.key, seg.rel, info.frames)]


def resample(wav: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling to ``target`` (8k -> 16k, 48k -> 16k, 44.1k -> 16k)."""
    if rate == target:
        return wav
    g = math.gcd(rate, target)
    return resample_poly(wav, target // g, rate // g).astype(np.float32)


def _write_flac(path: Path, wav: np.ndarray, rate: int) -> None:
    """Through ``.<name>.tmp`` (one name per output file, not per process: a run killed
    mid-write leaves it, and the re-run, which converts that file again, overwrites and
    renames it, so nothing is left over)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        sf.write(tmp, np.clip(wav, -1.0, 1.0), rate, format="FLAC", subtype="PCM_16")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _existing(path: Path, sample_rate: int) -> int:
    """Sample count of an already converted file, or -1 if absent/unusable (or converted
    to another sample rate by an earlier run)."""
    try:
        info = sf.info(path) if path.is_file() else None
    except Exception:
        return -1
    return info.frames if info is not None and info.samplerate == sample_rate else -1


def _convert(job: AudioJob, s: AudioSettings) -> List[Outcome]:
    out: List[Outcome] = []
    todo = []
    for seg in job.segments:
        n = _existing(Path(job.out_root, seg.rel), s.sample_rate)
        if n > 0:
            out.append(_duration_reject(seg, job.source, n, s) or Done(seg.key, seg.rel, n, True))
        else:
            todo.append(seg)
            out.append(None)  # type: ignore[arg-type]
    if not todo:
        return out
    try:
        wav, rate = sf.read(job.source, dtype="float32", always_2d=True)
    except Exception as e:
        msg = str(e).replace("\n", " ")
        reason = "unreadable audio"
        return [o or Reject(g.key, job.source, reason, msg) for o, g in zip(out, job.segments)]
    wav = wav.mean(axis=1)
    for i, seg in enumerate(job.segments):
        if out[i] is not None:
            continue
        piece = wav
        if seg.start is not None:
            a = max(0, int(round(seg.start * rate)))
            b = len(wav) if seg.end is None else min(len(wav), int(round(seg.end * rate)))
            piece = wav[a:b]
        if len(piece) == 0:
            out[i] = Reject(seg.key, job.source, "empty audio", "0 samples in segment")
            continue
        piece = resample(piece, rate, s.sample_rate)
        bad = _duration_reject(seg, job.source, len(piece), s)
        if bad:
            out[i] = bad
            continue
        _write_flac(Path(job.out_root, seg.rel), piece, s.sample_rate)
        out[i] = Done(seg.key, seg.rel, len(piece))
    return out


def process_job(job: AudioJob, settings: AudioSettings) -> List[Outcome]:
    """Outcomes for every segment of ``job``, in segment order (never raises for bad audio)."""
    if not os.path.isfile(job.source):
        return [Reject(g.key, job.source, "missing audio", "listed but not found")
                for g in job.segments]
    if os.path.getsize(job.source) == 0:  # libsndfile would say "does not exist" of some formats
        return [Reject(g.key, job.source, "empty audio", "0-byte file") for g in job.segments]
    return _convert(job, settings) if job.convert else _probe(job, settings)


def _star(args):
    return process_job(*args)


def run_jobs(
    jobs: Sequence[AudioJob], settings: AudioSettings, num_jobs: int = 1, desc: str = ""
) -> Iterator[Tuple[AudioJob, List[Outcome]]]:
    """Process ``jobs`` with ``num_jobs`` worker processes; yields in input order."""
    total = len(jobs)
    bar = tqdm(total=total, desc=desc, unit="file", disable=total < 2, leave=False)
    args = ((job, settings) for job in jobs)
    if num_jobs <= 1 or total < 2:
        results: Iterable = map(_star, args)
        pool = None
    else:
        pool = multiprocessing.get_context("spawn" if os.name == "nt" else "fork").Pool(num_jobs)
        chunk = max(1, min(64, total // (num_jobs * 8)))
        results = pool.imap(_star, args, chunksize=chunk)
    try:
        for job, outcomes in zip(jobs, results):
            bar.update()
            yield job, outcomes
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()


def read_header_frames(path: Union[str, Path]) -> Tuple[int, int]:
    """``(num_samples, sample_rate)`` from the header alone."""
    info = sf.info(str(path))
    return info.frames, info.samplerate
