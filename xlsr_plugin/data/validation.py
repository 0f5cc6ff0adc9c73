"""Checks on per-language manifests and their labels before any training step.

fairseq's ``FileAudioDataset`` only opens an audio file when a batch needs it, so a
missing file, an empty clip or an 8 kHz recording in a 16 kHz corpus surfaces hours
into a run, deep inside a data-loader worker. XLSR corpora mix many sources, which
makes such files common; this module reads every manifest line's header up front
(cheap: ``soundfile.info`` reads no samples) and reports all problems at once, each
as ``manifest:line: path: what is wrong``.

The check scales to manifests of tens of millions of lines: lines are streamed with a
bounded number of header reads in flight (memory does not grow with the manifest), under
distributed training each rank reads the headers of its own share of lines only, and a
clean manifest gets a stamp (``<manifest>.verified``, keyed by the sha256 of its bytes,
see ``manifests.formats``) so that later starts only hash it. The builders of
``xlsr-manifest`` write the same stamp, having read every file themselves.

Label files get the same treatment (:func:`read_labels`, :func:`check_symbols`,
:func:`check_label_lengths`): line counts against the manifest, symbols missing from
the dictionary (listed with counts), and utterances too short for their labels (CTC
needs a frame per label plus one per repeated symbol, frames as the model's feature
encoder makes them) or longer than ``max_sample_size`` (cropping would cut them off
their labels).
"""


import functools
import hashlib
import math
import logging
import os
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf
import torch
from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Config, Wav2Vec2Model
from tqdm import tqdm

from manifests import formats, layout
from manifests.formats import ManifestError
from xlsr_plugin.errors import InputError, as_input_error

logger = logging.getLogger(__name__)

MAX_REPORTED = 20
IN_FLIGHT_PER_THREAD = 32  # header reads queued per thread: keeps threads busy, memory flat


@dataclass(frozen=True)
class LanguageManifest:
    """One language's checked manifest. Its hours are not counted here: the sampler
    counts them on what the dataset keeps (``xlsr_core.sampling.language_hours``)."""

    lang: str
    path: Path
    utterances: int
    headers_read: int = 0  # audio headers this process read (0: a stamp vouched for them)
    sha256: str = ""  # of the manifest's bytes at the check
    checked: bool = True  # False under task.skip_manifest_check
    # what checks found without refusing (its stamp keeps them for later starts): "multichannel",
    # "duplicates" (``record_note``)
    notes: dict = field(default_factory=dict)


def _check_file(root: str, rel: str, num_samples: int, sample_rate: int) -> Tuple[Optional[str], int]:
    """(what is wrong with one line's audio or None, its number of channels)."""
    path = os.path.join(root, rel)
    try:  # never raises: under distributed training a rank that raised would leave the others waiting
        if not os.path.isfile(path):
            return f"{path}: file not found", 1
        if os.path.getsize(path) == 0:
            return f"{path}: file is empty (0 bytes)", 1
    except OSError as e:
        return f"{path}: cannot stat ({e})", 1
    try:
        info = sf.info(path)
    except Exception as e:  # soundfile raises RuntimeError / LibsndfileError
        return f"{path}: unreadable audio ({e})", 1
    if info.samplerate != sample_rate:
        return (
            f"{path}: sample rate {info.samplerate} Hz, but task.sample_rate is "
            f"{sample_rate} Hz; resample the corpus (xlsr-manifest writes 16 kHz FLAC)"
        ), info.channels
    if info.frames == 0 or num_samples == 0:
        return f"{path}: no samples", info.channels
    return None, info.channels


@dataclass
class _Scan:
    """What one pass over a manifest found (its first problems only, and their count)."""

    utterances: int = 0
    checked: int = 0  # header reads made by this process
    # (line, message) in line order, the first MAX_REPORTED only
    problems: List[Tuple[int, str]] = field(default_factory=list)
    bad: int = 0
    sha256: str = ""  # of the bytes parsed
    # files of more than one channel (fairseq averages them to mono): count, first (line, relpath, channels)
    multichannel: int = 0
    multichannel_example: Optional[Tuple[int, str, int]] = None

    def add(self, lineno: int, result, rel: str = "") -> None:
        msg, channels = result if result is not None else (None, 1)
        if msg:
            self.bad += 1
            if len(self.problems) < MAX_REPORTED:
                self.problems.append((lineno, msg))
        elif channels > 1:
            self.multichannel += 1
            if self.multichannel_example is None or lineno < self.multichannel_example[0]:
                self.multichannel_example = (lineno, rel, channels)


def _scan(path: Path, sample_rate: int, check_audio: bool, num_threads: int, shard: Tuple[int, int],
          total: Optional[int] = None, max_in_flight: Optional[int] = None, progress: bool = True) -> _Scan:
    """Parse every line of ``path``; with ``check_audio``, check the audio of the lines of
    ``shard`` (``(rank, world)``: every world-th line from the rank-th), at most
    ``max_in_flight`` header reads pending at any time."""
    rank, world = shard
    limit = max_in_flight or num_threads * IN_FLIGHT_PER_THREAD
    hasher = hashlib.sha256()
    root, lines = formats.manifest_lines(path, hasher)
    scan = _Scan()
    pending: deque = deque()
    bar = tqdm(total=total, desc=f"checking {path.name}", unit=" lines", unit_scale=True,
               mininterval=2.0, disable=not (check_audio and progress))
    with ThreadPoolExecutor(num_threads) as pool, bar:
        for lineno, rel, samples in lines:
            scan.utterances += 1
            if check_audio and (lineno - 2) % world == rank:
                if len(pending) >= limit:
                    done_line, done_rel, fut = pending.popleft()
                    scan.add(done_line, fut.result(), done_rel)
                pending.append((lineno, rel, pool.submit(_check_file, root, rel, samples, sample_rate)))
                scan.checked += 1
            if scan.utterances % 1024 == 0:
                bar.update(1024)
        while pending:
            done_line, done_rel, fut = pending.popleft()
            scan.add(done_line, fut.result(), done_rel)
        bar.update(scan.utterances % 1024)
    scan.sha256 = hasher.hexdigest()
    return scan


def _distributed() -> Tuple[int, int]:
    """(rank, world size) of fairseq's distributed training, (0, 1) outside it."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_gather(obj) -> list:
    """Every rank's ``obj`` (a collective: every rank must call it, in the same order)."""
    import torch.distributed as dist
    from fairseq.distributed import utils as distributed_utils

    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj, group=distributed_utils.get_global_group())
    return out


def _no_utterances(path: Path, lang: str) -> InputError:
    return InputError(
        f"{path}: language '{lang}' has no utterances; drop it from task.languages or rebuild its manifest"
    )


def _unterminated_last_line(path: Path) -> int:
    """1 if the file's last line has no newline (a line ``manifest_digest`` did not count)."""
    with open(path, "rb") as f:
        if f.seek(0, os.SEEK_END) == 0:
            return 0
        f.seek(-1, os.SEEK_END)
        return int(f.read(1) != b"\n")


def check_manifest(
    path: os.PathLike,
    lang: str,
    sample_rate: int,
    check_audio: bool = True,
    num_threads: int = 8,
    max_in_flight: Optional[int] = None,
    progress: bool = True,
) -> LanguageManifest:
    """Parse and (optionally) check every audio file of one language's manifest.

    Raises :class:`InputError` (a ``ManifestError``) listing the first problems (file and line) and counting
    the rest. A manifest whose stamp vouches for its exact bytes at ``sample_rate`` is
    only hashed. Under distributed training every rank must call this for the same
    manifests in the same order (fairseq's ``load_dataset`` is): each rank reads the
    headers of 1/world of the lines, the ranks share what they found, and rank 0 writes
    the stamp. (A rank whose manifest differs from rank 0's checks all of its own.)
    """
    path = Path(path)
    try:
        return _check_manifest(path, lang, sample_rate, check_audio, num_threads, max_in_flight, progress)
    except ManifestError as e:  # formats' parse errors too: reported as messages (xlsr_plugin.errors)
        raise as_input_error(e) from None


def check_root(path: Path) -> str:
    """The audio root of a manifest (its line 1), which must be a folder: otherwise every
    line would be reported missing when the one thing wrong is line 1."""
    if not path.is_file():
        raise InputError(f"{path}: manifest not found")
    with open(path, "rb") as f:
        first = f.readline()
    try:
        root = first.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}:1: not UTF-8 ({e})") from None
    if not root.strip():
        raise InputError(f"{path}:1: the first line must be the audio root folder, and it is empty")
    if not os.path.isdir(root):
        raise InputError(
            f"{path}:1: the audio root {root!r} is not a folder (line 1 of a manifest is the folder "
            "its relative paths are below). Fix line 1, put the audio back there, or rebuild the "
            "manifest with xlsr-manifest"
        )
    return root


def _report_multichannel(path: Path, count: int, example) -> None:
    if count:
        line, file, channels = example
        logger.warning(
            f"{path}: {count} file(s) have more than one channel, e.g. line {line}: {file} "
            f"({channels} channels); fairseq averages the channels to mono as it loads them. "
            "To keep one channel or mix otherwise, convert the files (xlsr-manifest --convert writes mono)"
        )


def _check_manifest(path, lang, sample_rate, check_audio, num_threads, max_in_flight, progress):
    rank, world = _distributed()
    digest = formats.manifest_digest(path)
    if not check_audio:  # task.skip_manifest_check: count the lines, parse nothing (fairseq will)
        utterances = max(digest.lines - 1 + _unterminated_last_line(path), 0)
        if utterances == 0:
            raise _no_utterances(path, lang)
        return LanguageManifest(lang=lang, path=path, utterances=utterances, sha256=digest.sha256, checked=False)
    # even under a stamp: it vouches for files, not for where they are now. With several ranks
    # the verdict is gathered first, so that a node without the audio stops every rank at once
    # instead of leaving the others waiting in the collective below.
    try:
        root, root_error = check_root(path), None
    except InputError as e:
        root, root_error = None, str(e)
    stamp = formats.read_stamp(path, digest, sample_rate)
    same = True
    if world > 1 and check_audio:
        views = _all_gather((digest.sha256, stamp is not None, root_error))
        errors = [(r, err) for r, (_, _, err) in enumerate(views) if err]
        if errors:
            raise InputError("; ".join(f"rank {r}: {err}" for r, err in errors))
        same = all(d == views[0][0] for d, _, _ in views)
        if not same:
            logger.warning(f"{path} differs between ranks: each rank checks all of its own copy")
        stamped = all(s for _, s, _ in views)
    else:
        if root_error:
            raise InputError(root_error)
        stamped = stamp is not None
    if stamped:
        logger.info(f"{path}: verified earlier ({stamp.get('verified_by')}, stamp "
                    f"{layout.verified_path(path).name}); header check skipped")
        notes = (stamp.get("notes") if stamp is not None and isinstance(stamp.get("notes"), dict) else None) or {}
        multi = notes.get("multichannel")
        if rank == 0 and isinstance(multi, list) and len(multi) == 4:
            _report_multichannel(path, multi[0], tuple(multi[1:]))
        return LanguageManifest(lang=lang, path=path, utterances=stamp["utterances"], sha256=digest.sha256,
                                notes=dict(notes))

    shard = (rank, world) if same else (0, 1)
    scan = _scan(path, sample_rate, check_audio, num_threads, shard, total=max(digest.lines - 1, 0),
                 max_in_flight=max_in_flight, progress=progress and rank == 0)
    if scan.utterances == 0:
        raise _no_utterances(path, lang)
    if not check_audio:
        return LanguageManifest(lang=lang, path=path, utterances=scan.utterances, sha256=digest.sha256)
    problems, bad = scan.problems, scan.bad
    multi, multi_example = scan.multichannel, scan.multichannel_example
    if multi_example is not None:
        multi_example = (multi_example[0], os.path.join(root, multi_example[1]), multi_example[2])
    if world > 1 and same:  # the same collective on every rank (an empty manifest raised on all)
        views = _all_gather((scan.problems, scan.bad, scan.multichannel, scan.multichannel_example))
        problems = sorted(p for ps, *_ in views for p in ps)[:MAX_REPORTED]
        bad = sum(v[1] for v in views)
        multi = sum(v[2] for v in views)
        multi_example = min((v[3] for v in views if v[3] is not None), default=None)
    if rank == 0 or not same:
        _report_multichannel(path, multi, multi_example)
    if bad:
        shown = "\n  ".join(f"{path}:{line}: {msg}" for line, msg in problems)
        more = bad - len(problems)
        raise InputError(
            f"{bad} bad line(s) in {path} (language '{lang}'):\n  {shown}"
            + (f"\n  ... and {more} more" if more > 0 else "")
            + "\nFix or remove these lines (xlsr-manifest rebuilds manifests and "
            "lists rejected files), or set task.skip_manifest_check=true to skip this check."
        )
    logger.info(f"{path}: {scan.utterances} utterances, {scan.checked} audio headers checked here")
    if (rank == 0 or not same) and scan.sha256 == digest.sha256:  # unchanged while checked
        try:
            notes = {"multichannel": [multi, *multi_example]} if multi else None
            formats.write_stamp(path, digest, sample_rate, scan.utterances, "xlsr_pretraining start-up check", notes)
        except OSError as e:  # a read-only corpus: check again next time
            logger.warning(f"{path}: cannot write its verification stamp ({e}); the next start checks it again")
    return LanguageManifest(lang=lang, path=path, utterances=scan.utterances, headers_read=scan.checked,
                            sha256=digest.sha256, notes={"multichannel": [multi, *multi_example]} if multi else {})


def record_note(checked: LanguageManifest, sample_rate: int, key: str, value) -> None:
    """Add ``key: value`` (plain JSON) to the notes of the manifest's stamp, if it still has
    a valid one (rank 0 only: one writer), so that later starts need not find it again."""
    if _distributed()[0] != 0:
        return
    digest = formats.manifest_digest(checked.path)
    stamp = formats.read_stamp(checked.path, digest, sample_rate)
    if stamp is None or digest.sha256 != checked.sha256:
        return
    notes = dict(stamp.get("notes") or {}, **{key: value})
    try:
        formats.write_stamp(checked.path, digest, sample_rate, stamp["utterances"], stamp.get("verified_by", ""), notes)
    except OSError as e:
        logger.warning(f"{checked.path}: cannot update its verification stamp ({e})")


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


def read_labels(path: Path, manifest: Path, utterances: int) -> List[str]:
    """The lines of a label file, which must match its manifest's ``utterances`` lines
    (counted by the dataset that read it: the manifest is not parsed again)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: labels for {manifest} (task.labels={path.suffix[1:]}); "
            "build them with xlsr-manifest or choose other labels"
        )
    lines = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                lines.append(raw.decode("utf-8").rstrip("\n"))
            except UnicodeDecodeError as e:
                raise InputError(
                    f"{path}:{lineno}: not UTF-8 ({e}); labels are UTF-8 text: re-encode the file "
                    "(e.g. iconv -f latin1 -t utf-8) or rebuild it with xlsr-manifest"
                ) from None
    if len(lines) != utterances:
        raise InputError(
            f"{path} has {len(lines)} lines but {manifest} lists {utterances} utterances: "
            "labels and audio must correspond line by line; rebuild both with xlsr-manifest"
        )
    return lines


def check_nonempty(path: Path, manifest: Path, lines: Sequence[str], kept: Sequence[int]) -> None:
    """Every utterance that is trained on or scored has at least one label symbol (CTC
    and the error rates divide by the number of labels; ``xlsr-manifest`` leaves out
    utterances with an empty transcript)."""
    empty = [i for i in kept if not lines[i].split()]
    if empty:
        shown = ", ".join(str(i + 1) for i in empty[:MAX_REPORTED])
        more = f" and {len(empty) - MAX_REPORTED} more" if len(empty) > MAX_REPORTED else ""
        raise InputError(
            f"{path}: {len(empty)} empty label line(s), at line(s) {shown}{more} (manifest {manifest} "
            f"line {empty[0] + 2} for the first): an utterance without labels cannot be trained on "
            "or scored with CTC. Remove these lines from the manifest and the labels, or give them "
            "their transcript (xlsr-manifest leaves out utterances whose transcript is empty)"
        )


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
        raise InputError(
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
    raise InputError(
        f"{len(bad)} utterance(s) cannot be fine-tuned on with CTC:\n" + "\n".join(shown) + more
        + "\nRemove them from the manifest and labels, or unset task.max_sample_size (fine-tuning never crops)"
    )


# -- clips too short for the model --------------------------------------------------------

def masked_frames_floor(mask_prob: float, mask_length: int, min_masks: int = 2) -> int:
    """Fewest feature frames T from which wav2vec 2.0's span masking can never cover a
    whole utterance, as fairseq's ``compute_mask_indices`` draws it (``static`` spans,
    overlaps allowed): ``n = max(min_masks, int(mask_prob * T / mask_length + u))`` spans,
    u in [0, 1), whose starts are drawn from ``range(T - mask_length)`` while that holds
    more than n starts, so the last frame is never covered; otherwise from
    ``range(n + 1)``, which covers everything. So T is safe iff
    ``T > n_max + mask_length``. Shorter utterances stop a run with ``ValueError: the
    entire sequence is masked`` (or a conv layer's error) at whichever update draws it."""
    if mask_prob <= 0 or mask_prob >= 1:  # no masking / everything masked: not a length question
        return 1
    bound = int(math.ceil(mask_length / (1 - mask_prob))) + 2 * mask_length + min_masks + 2
    failing = [t for t in range(1, bound + 1)
               if t <= max(min_masks, int(mask_prob * t / mask_length + 1)) + mask_length]
    return (max(failing) + 1) if failing else 1


def samples_for_frames(frames_of: FramesFn, frames: int) -> int:
    """Fewest samples from which ``frames_of`` makes ``frames`` frames (binary search:
    the frame count grows with the samples)."""
    lo, hi = 1, 1
    while int(frames_of(torch.tensor(hi))) < frames:
        hi *= 2
    while lo < hi:
        mid = (lo + hi) // 2
        if int(frames_of(torch.tensor(mid))) >= frames:
            hi = mid
        else:
            lo = mid + 1
    return lo


def receptive_field(frames_of: Optional[FramesFn] = None) -> int:
    """Samples the feature encoder needs for one frame (400 for wav2vec 2.0's: 25 ms)."""
    return _default_receptive_field() if frames_of is None else samples_for_frames(frames_of, 1)


@functools.lru_cache(maxsize=1)
def _default_receptive_field() -> int:
    return samples_for_frames(default_feature_frames, 1)


@dataclass(frozen=True)
class SizeFloor:
    """The fewest samples an utterance may have, and why (said in the error)."""

    samples: int
    why: str


def model_size_floor(model, training: bool) -> SizeFloor:
    """What ``model`` needs of an utterance: a frame of its feature encoder, and, where it
    masks (pre-training always; CTC fine-tuning in training only, with ``apply_mask``),
    enough frames that masking leaves some unmasked. Unknown models: one frame of the
    standard encoder."""
    frames_of = feature_frames_of(model) or default_feature_frames
    w2v = model if hasattr(model, "mask_prob") else getattr(getattr(model, "w2v_encoder", None), "w2v_model", None)
    encoder = getattr(model, "w2v_encoder", None)
    masks = w2v is not None and (encoder is None or (training and getattr(encoder, "apply_mask", False)))
    if masks and getattr(w2v, "mask_selection", "static") == "static" and w2v.mask_prob > 0:
        frames = masked_frames_floor(float(w2v.mask_prob), int(w2v.mask_length))
        return SizeFloor(
            samples_for_frames(frames_of, frames),
            f"{frames} feature frames, so that masking (mask_prob={w2v.mask_prob}, "
            f"mask_length={w2v.mask_length}) never covers a whole utterance",
        )
    return SizeFloor(receptive_field(frames_of), "one frame of the feature encoder (its receptive field)")


def check_size_floor(manifest: Path, dataset, floor: SizeFloor) -> None:
    """Every utterance ``dataset`` (a ``LanguageAudioDataset``) kept has ``floor.samples``.
    Shorter clips would stop training at whichever update batches them (a batch is
    cropped to its shortest clip), naming a conv layer or the mask, not the file."""
    short = np.flatnonzero(np.asarray(dataset.sizes) < floor.samples)
    if len(short) == 0:
        return
    lines = dataset.manifest_lines(short[:MAX_REPORTED])
    shown = "\n  ".join(
        f"{manifest}:{line}: {dataset.path_of(int(k))}: {int(dataset.sizes[k])} samples"
        for k, line in zip(short[:MAX_REPORTED], lines)
    )
    more = f"\n  ... and {len(short) - MAX_REPORTED} more" if len(short) > MAX_REPORTED else ""
    raise InputError(
        f"{len(short)} utterance(s) of {manifest} have fewer than {floor.samples} samples, the "
        f"least the model takes ({floor.why}):\n  {shown}{more}\n"
        f"Set task.min_sample_size={floor.samples} (or more) to skip them (the log counts and "
        "names what it skips), or remove them from the manifest"
    )
