"""``xlsr-extract``: layer-wise representations of a manifest as ``.npy`` shards.

    xlsr-extract CKPT train.tsv [dev.tsv ...] --out OUT [--layers all] [--dtype float16]

For every utterance of fairseq manifests (``<split>.tsv``: the audio root, then
``relpath<TAB>num_samples``) it writes the representations of
``xlsr_tools.representations`` (``cnn``, ``codes``, ``quantized``, ``layer_0`` ..
``layer_N``, ``final``) as::

    OUT/meta.json                       checkpoint, normalize, frame rate, dims, dtypes
    OUT/<layer>/shard_00000.npy         frames x dim, utterances concatenated
    OUT/index.tsv                       split, index, path, shard, start, frames

Row ``start`` .. ``start + frames`` of ``OUT/<layer>/shard_<shard>.npy`` is the utterance
``index`` (0-based, the manifest's line ``index + 2``) of ``<split>.tsv``, for every layer.

It streams: manifests are read a window of ``--sort-window`` lines at a time, sorted by
length inside the window and batched by ``--max-tokens`` with fairseq's
``batch_by_size``; a shard is written (temporary file, then ``os.replace``) as soon as
it holds ``--shard-frames`` frames, with its part of the index. ``index.tsv`` is written
last. An interrupted run leaves whole shards only, and the same command resumes after
the last one.

Audio is read and normalised by fairseq's ``FileAudioDataset`` exactly as training
reads it, with the checkpoint's ``normalize``. A group-norm feature encoder (BASE)
normalises over time, so padding would change its output: there only utterances of
equal length share a batch. A layer-norm encoder (LARGE, XLSR-53) is batched with a
padding mask, which is exact up to float rounding.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np
import soundfile as sf
import torch
from fairseq.data.audio.audio_utils import parse_path
from fairseq.data.audio.raw_audio_dataset import FileAudioDataset, RawAudioDataset
from fairseq.data.data_utils import batch_by_size
from fairseq.data.text_compressor import TextCompressionLevel, TextCompressor
from tqdm import tqdm

from xlsr_tools.representations import Encoder, ExtractError, forward, load_encoder

logger = logging.getLogger("xlsr_tools.extract")

FORMAT = "xlsr-extract/1"
INDEX_COLUMNS = ("split", "index", "path", "shard", "start", "frames")
PARTS = ".parts"  # one index part per finished shard, until index.tsv is written
# the settings a resumed run must share with the interrupted one (they fix what goes where)
RESUME_KEYS = ("checkpoint", "checkpoint_bytes", "manifests", "layers", "dtype", "shard_frames", "sort_window")


def shard_name(shard: int) -> str:
    return f"shard_{shard:05d}.npy"


def part_name(shard: int) -> str:
    return f"shard_{shard:05d}.tsv"


# ---------------------------------------------------------------------------------------
# manifests, read lazily


@dataclass
class Manifest:
    """One ``<split>.tsv``: where it is, its audio root, and (after a scan) its size."""

    path: str
    split: str
    root: str
    utterances: int = 0
    samples: int = 0

    def line(self, index: int) -> int:
        """The 1-based line of utterance ``index`` (line 1 is the audio root)."""
        return index + 2

    def where(self, index: int) -> str:
        return f"{self.path} line {self.line(index)}"


@dataclass
class Window:
    """Consecutive utterances of one manifest: ``first`` is the index of ``names[0]``."""

    manifest: Manifest
    first: int
    names: List[str]
    sizes: np.ndarray  # int64 samples


def _parse(line: str, where: str):
    items = line.rstrip("\n").split("\t")
    if len(items) != 2:
        raise ExtractError(f"{where}: expected 'relpath<TAB>num_samples', got {line.rstrip()!r}")
    try:
        return items[0], int(items[1])
    except ValueError:
        raise ExtractError(f"{where}: num_samples {items[1]!r} is not an integer") from None


def open_manifest(path: str) -> Manifest:
    try:
        with open(path, encoding="utf-8") as f:
            root = f.readline().strip()
    except FileNotFoundError:
        raise ExtractError(f"{path}: no such manifest") from None
    if not root:
        raise ExtractError(f"{path} line 1: empty; a fairseq manifest starts with the audio root directory")
    split = Path(path).name[: -len(".tsv")] if path.endswith(".tsv") else Path(path).name
    return Manifest(path=path, split=split, root=root)


def scan_manifest(manifest: Manifest, min_samples: int) -> Manifest:
    """One streaming pass: every line well formed and long enough for one frame; counts
    utterances and samples (for the progress bar). Nothing is kept per line."""
    count = total = 0
    with open(manifest.path, encoding="utf-8") as f:
        f.readline()
        for line in f:
            _, size = _parse(line, manifest.where(count))
            if size < min_samples:
                raise ExtractError(
                    f"{manifest.where(count)}: {size} samples, shorter than the model's receptive "
                    f"field ({min_samples} samples, one frame): remove such lines from the manifest"
                )
            total += size
            count += 1
    manifest.utterances, manifest.samples = count, total
    return manifest


def read_windows(manifest: Manifest, window: int) -> Iterator[Window]:
    """The manifest ``window`` lines at a time; only one window is in memory."""
    with open(manifest.path, encoding="utf-8") as f:
        f.readline()
        first = 0
        while True:
            lines = list(itertools.islice(f, window))
            if not lines:
                return
            names, sizes = [], np.empty(len(lines), dtype=np.int64)
            for i, line in enumerate(lines):
                name, sizes[i] = _parse(line, manifest.where(first + i))
                names.append(name)
            yield Window(manifest, first, names, sizes)
            first += len(lines)


def plan_batches(sizes: np.ndarray, max_tokens: int, equal_lengths: bool) -> List[np.ndarray]:
    """Batches of positions into ``sizes``, shortest first: at most ``max_tokens`` padded
    samples each (an utterance longer than that runs alone). ``equal_lengths``: only
    utterances of the same length share a batch (group-norm feature encoders)."""
    if len(sizes) == 0:
        return []
    order = np.argsort(sizes, kind="stable")
    ordered = sizes[order]
    if not equal_lengths:
        return batch_by_size(order, None, num_tokens_vec=np.minimum(ordered, max_tokens), max_tokens=max_tokens)
    # runs of equal length, each cut into batches of max(1, max_tokens // length)
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    run = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(ordered)]))
    per_batch = np.maximum(1, max_tokens // ordered[starts])
    slot = (np.arange(len(ordered)) - starts[run]) // per_batch[run]
    cuts = np.flatnonzero((run[1:] != run[:-1]) | (slot[1:] != slot[:-1])) + 1
    return np.split(order, cuts)


def plan(manifests: Sequence[Manifest], window: int, max_tokens: int, equal_lengths: bool):
    """(window, batches) over all manifests, in the order shards are filled."""
    for manifest in manifests:
        for win in read_windows(manifest, window):
            yield win, plan_batches(win.sizes, max_tokens, equal_lengths)


# ---------------------------------------------------------------------------------------
# audio


def _audio_file(root: str, name: str) -> str:
    return parse_path(os.path.join(root, name))[0]  # without a zip's ":offset:length"


def check_files(manifest: Manifest, count: int, sample_rate: int) -> None:
    """Before any model work: the first ``count`` files exist, have the model's sample
    rate and as many samples as the manifest says."""
    with open(manifest.path, encoding="utf-8") as f:
        f.readline()
        for i, line in enumerate(itertools.islice(f, count)):
            name, size = _parse(line, manifest.where(i))
            path = os.path.join(manifest.root, name)
            _check_exists(manifest, i, path)
            if parse_path(path)[1]:  # a slice of a zip: checked when read
                continue
            info = sf.info(path)
            _check_audio(manifest, i, path, info.samplerate, info.frames, size, sample_rate)


def _check_exists(manifest: Manifest, index: int, path: str) -> None:
    if not os.path.isfile(_audio_file("", path)):
        raise ExtractError(
            f"{manifest.where(index)}: audio file {path} does not exist (audio root, the "
            f"manifest's first line: {manifest.root}). Fix the root or rebuild the manifest"
        )


def _check_audio(manifest, index, path, rate, samples, size, sample_rate) -> None:
    if rate != sample_rate:
        raise ExtractError(
            f"{manifest.where(index)}: {path} is sampled at {rate} Hz, the model needs "
            f"{sample_rate} Hz: resample the audio (and rebuild the manifest)"
        )
    if samples != size:
        raise ExtractError(
            f"{manifest.where(index)}: {path} has {samples} samples, the manifest says {size}: "
            "rebuild the manifest from the audio"
        )


class WindowAudio(FileAudioDataset):
    """fairseq's ``FileAudioDataset`` (reading, channel mixing, ``normalize``, the sample
    rate check, zip slices, the padding collater) over one window of a manifest, built
    from the window instead of re-reading the manifest; errors name the manifest line."""

    def __init__(self, win: Window, sample_rate: int, normalize: bool):
        RawAudioDataset.__init__(self, sample_rate=sample_rate, shuffle=False, pad=True, normalize=normalize)
        self.window, self.root_dir, self.sizes = win, win.manifest.root, win.sizes
        self.text_compressor = TextCompressor(level=TextCompressionLevel.none)
        self.fnames = [self.text_compressor.compress(name) for name in win.names]
        self.skipped_indices = set()
        self.set_bucket_info(0)

    def __getitem__(self, index):
        win = self.window
        path = os.path.join(self.root_dir, win.names[index])
        _check_exists(win.manifest, win.first + index, path)
        try:
            item = super().__getitem__(index)
        except Exception as e:
            found = re.match(r"sample rate: (\d+), need (\d+)", str(e))
            if found:
                _check_audio(win.manifest, win.first + index, path, int(found.group(1)), None, None, self.sample_rate)
            raise ExtractError(f"{win.manifest.where(win.first + index)}: cannot read {path}: {e}") from e
        _check_audio(win.manifest, win.first + index, path, self.sample_rate, len(item["source"]),
                     int(self.sizes[index]), self.sample_rate)
        return item


# ---------------------------------------------------------------------------------------
# output


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, obj) -> None:
    _atomic_write(path, lambda f: f.write((json.dumps(obj, indent=2) + "\n").encode()))


class ShardWriter:
    """Collects utterances' rows per layer; once the next utterance would take a shard
    past ``shard_frames`` (or at the end) writes every layer's shard, then the shard's
    index part. Shard boundaries depend only on the order and lengths of utterances,
    so a resumed run continues with the same layout."""

    def __init__(self, out: Path, dtypes: Dict[str, np.dtype], shard_frames: int, shard: int = 0):
        self.out, self.dtypes, self.shard_frames, self.shard = out, dtypes, shard_frames, shard
        for name in dtypes:
            (out / name).mkdir(parents=True, exist_ok=True)
        (out / PARTS).mkdir(exist_ok=True)
        self._reset()

    def _reset(self):
        self.rows, self.frames = [], 0
        self.buffers = {name: [] for name in self.dtypes}

    def add(self, split: str, index: int, path: str, features: Dict[str, np.ndarray]) -> None:
        frames = len(next(iter(features.values())))
        if self.frames and self.frames + frames > self.shard_frames:
            self.flush()
        self.rows.append(f"{split}\t{index}\t{path}\t{self.shard}\t{self.frames}\t{frames}\n")
        for name, rows in features.items():
            self.buffers[name].append(rows)
        self.frames += frames

    def flush(self) -> None:
        if not self.rows:
            return
        for name, parts in self.buffers.items():
            data = np.concatenate(parts).astype(self.dtypes[name], copy=False)
            _atomic_write(self.out / name / shard_name(self.shard), lambda f: np.save(f, data))
        text = "".join(self.rows).encode("utf-8")
        _atomic_write(self.out / PARTS / part_name(self.shard), lambda f: f.write(text))
        self.shard += 1
        self._reset()


def finished_parts(out: Path) -> int:
    """How many shards 0, 1, ... a previous run finished (their index part exists)."""
    shard = 0
    while (out / PARTS / part_name(shard)).exists():
        shard += 1
    return shard


def _part_rows(out: Path, shards: int) -> Iterator[tuple]:
    for shard in range(shards):
        with open(out / PARTS / part_name(shard), encoding="utf-8") as f:
            for line in f:
                split, index = line.split("\t", 2)[:2]
                yield split, int(index)


class _Finished:
    """The utterances an interrupted run's finished shards hold, in processing order: a
    resumed run skips them (checking that the plan still yields the same ones)."""

    def __init__(self, out: Path, shards: int):
        self.rows = _part_rows(out, shards)
        self.pending = next(self.rows, None)

    def skip(self, win: Window, batches: List[np.ndarray], out: Path) -> List[List[int]]:
        """``batches`` without the finished utterances (a prefix of the plan)."""
        if self.pending is None:
            return [b.tolist() for b in batches]
        todo = []
        for batch in batches:
            keep = []
            for pos in batch.tolist():
                if self.pending is None:
                    keep.append(pos)
                    continue
                if self.pending != (win.manifest.split, win.first + pos):
                    raise ExtractError(
                        f"--out {out}: the finished shards do not match this plan (at "
                        f"{win.manifest.where(win.first + pos)}); the manifests changed? Use --overwrite"
                    )
                self.pending = next(self.rows, None)
            if keep:
                todo.append(keep)
        return todo


def write_index(out: Path, shards: int) -> None:
    def write(f):
        f.write(("\t".join(INDEX_COLUMNS) + "\n").encode())
        for shard in range(shards):
            with open(out / PARTS / part_name(shard), "rb") as part:
                shutil.copyfileobj(part, f)

    _atomic_write(out / "index.tsv", write)


def read_index(out) -> Iterator[dict]:
    """The rows of ``OUT/index.tsv`` as dicts (``index``, ``shard``, ``start``, ``frames`` as int)."""
    with open(Path(out) / "index.tsv", encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            row = dict(zip(header, line.rstrip("\n").split("\t")))
            for key in ("index", "shard", "start", "frames"):
                row[key] = int(row[key])
            yield row


def load_features(out, layer: str, row: dict) -> np.ndarray:
    """One utterance's rows of ``layer`` (``row`` from :func:`read_index`), memory-mapped."""
    data = np.load(Path(out) / layer / shard_name(row["shard"]), mmap_mode="r")
    return data[row["start"]: row["start"] + row["frames"]]


# ---------------------------------------------------------------------------------------
# the extraction


def _settings(encoder: Encoder, manifests, layers, dtype, shard_frames, sort_window) -> dict:
    ckpt = os.path.abspath(encoder.checkpoint)
    return {
        "checkpoint": ckpt,
        "checkpoint_bytes": os.path.getsize(ckpt),
        "manifests": {m.split: os.path.abspath(m.path) for m in manifests},
        "layers": layers,
        "dtype": dtype,
        "shard_frames": shard_frames,
        "sort_window": sort_window,
    }


def _prepare_out(out: Path, settings: dict, overwrite: bool) -> Optional[int]:
    """None if ``out`` already holds this extraction, complete; else the number of
    shards to keep (0 for a fresh start)."""
    meta_path = out / "meta.json"
    if not meta_path.exists():
        if out.exists() and any(not p.name.endswith(".tmp") for p in out.iterdir()):
            raise ExtractError(f"--out {out}: not empty and not an xlsr-extract output; use a new directory")
        out.mkdir(parents=True, exist_ok=True)
        return 0
    meta = json.loads(meta_path.read_text())
    if overwrite:
        for name in meta.get("layers", {}):
            shutil.rmtree(out / name, ignore_errors=True)
        shutil.rmtree(out / PARTS, ignore_errors=True)
        (out / "index.tsv").unlink(missing_ok=True)
        meta_path.unlink()
        return 0
    differ = [k for k in RESUME_KEYS if meta.get("settings", {}).get(k) != settings[k]]
    if differ:
        raise ExtractError(
            f"--out {out} holds an extraction with other settings ({', '.join(differ)} differ): "
            "use another --out, the same settings to resume, or --overwrite to start again"
        )
    if (out / "index.tsv").exists():
        return None
    return finished_parts(out)


def _meta(encoder: Encoder, settings: dict, manifests, dims, dtypes, complete: bool, **counts) -> dict:
    model = encoder.model
    return {
        "format": FORMAT,
        "complete": complete,
        "checkpoint": settings["checkpoint"],
        "model": {
            "source": encoder.source, "arch": encoder.arch,
            "extractor_mode": str(model.cfg.extractor_mode), "layer_norm_first": bool(model.cfg.layer_norm_first),
            "encoder_layers": encoder.num_layers,
        },
        "normalize": encoder.normalize,
        "sample_rate": encoder.sample_rate,
        "frame_rate": encoder.frame_rate,
        "frame_stride_samples": encoder.stride,
        "receptive_field_samples": encoder.receptive_field,
        "layers": {name: {"dim": dims[name], "dtype": np.dtype(dtypes[name]).name} for name in settings["layers"]},
        "manifests": {m.split: {"path": os.path.abspath(m.path), "root": m.root, "utterances": m.utterances}
                      for m in manifests},
        "settings": settings,
        **counts,
    }


def extract(checkpoint: str, manifests: Sequence[str], out: str, layers: str = "all", dtype: str = "float32",
            max_tokens: int = 1_600_000, shard_frames: int = 10_000, sort_window: int = 20_000,
            check_first: int = 100, num_workers: int = 2, device: Optional[str] = None,
            overwrite: bool = False, progress: bool = True) -> dict:
    """Write the representations of ``manifests`` to ``out`` (see the module docstring);
    returns the ``meta.json`` content. Mirrors ``xlsr-extract``'s options."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    encoder = load_encoder(checkpoint, device)
    names = encoder.resolve_layers(layers)
    opened = [open_manifest(p) for p in manifests]
    splits = [m.split for m in opened]
    if len(set(splits)) != len(splits):
        raise ExtractError(f"manifests with the same name ({', '.join(splits)}): the index tells them apart by name")
    for m in opened:  # every line's format and length, then the first files: before any model work
        scan_manifest(m, encoder.receptive_field)
    for m in opened:
        check_files(m, check_first, encoder.sample_rate)

    out = Path(out)
    settings = _settings(encoder, opened, names, dtype, shard_frames, sort_window)
    dims = encoder.dims()
    code_dtype = np.int16 if encoder.has_quantizer and encoder.model.quantizer.num_vars <= 2**15 else np.int32
    dtypes = {n: (code_dtype if n == "codes" else np.dtype(dtype)) for n in names}
    done_shards = _prepare_out(out, settings, overwrite)
    if done_shards is None:
        logger.info(f"{out}: already complete")
        return json.loads((out / "meta.json").read_text())
    write_json(out / "meta.json", _meta(encoder, settings, opened, dims, dtypes, complete=False))

    total = sum(m.utterances for m in opened)
    equal_lengths = encoder.model.cfg.extractor_mode == "default"  # group norm over time
    writer = ShardWriter(out, dtypes, shard_frames, shard=done_shards)
    finished = _Finished(out, done_shards)
    seq = 0
    bar = tqdm(total=total, unit="utt", desc="xlsr-extract", disable=not progress, dynamic_ncols=True)
    for win, batches in plan(opened, sort_window, max_tokens, equal_lengths):
        todo = finished.skip(win, batches, out)
        skipped = sum(map(len, batches)) - sum(map(len, todo))
        seq += skipped
        bar.update(skipped)
        if not todo:
            continue
        for ids, arrays, lengths in window_features(encoder, win, todo, dtypes, device, num_workers):
            for b, pos in enumerate(ids):
                writer.add(win.manifest.split, win.first + int(pos), win.names[pos],
                           {name: arrays[name][b, : lengths[b]] for name in names})
            seq += len(ids)
            bar.update(len(ids))
    writer.flush()
    bar.close()
    if finished.pending is not None:
        raise ExtractError(f"--out {out}: finished shards hold more utterances than the manifests; use --overwrite")
    shards = writer.shard
    meta = _meta(encoder, settings, opened, dims, dtypes, complete=True, shards=shards, utterances=seq)
    write_json(out / "meta.json", meta)
    write_index(out, shards)  # last: its presence means the extraction is complete
    shutil.rmtree(out / PARTS)
    logger.info(f"{out}: {seq} utterances, {shards} shards, layers {', '.join(names)}")
    return meta


def window_features(encoder: Encoder, win: Window, batches: List[List[int]], dtypes: Dict[str, np.dtype],
                    device: str, num_workers: int) -> Iterator[tuple]:
    """The model run over ``batches`` (lists of positions in ``win``), audio read by
    :class:`WindowAudio`: per batch, the positions (B), ``{name: B x T x D array}`` for
    each name in ``dtypes`` (cast to it) and each utterance's frames (rows past them are
    padding)."""
    names = list(dtypes)
    data = WindowAudio(win, encoder.sample_rate, encoder.normalize)
    loader = torch.utils.data.DataLoader(data, batch_sampler=batches, collate_fn=data.collater,
                                         num_workers=num_workers)
    for batch in _worker_errors(loader):
        ids = batch["id"].numpy()
        reps = forward(encoder, batch["net_input"]["source"].to(device),
                       batch["net_input"]["padding_mask"].to(device), names)
        arrays = {n: reps[n].cpu().numpy().astype(dtypes[n], copy=False) for n in names}
        lengths = np.minimum(encoder.num_frames(win.sizes[ids]), arrays[names[0]].shape[1])
        yield ids, arrays, lengths


def _worker_errors(loader):
    """The loader's batches. A worker's ``ExtractError`` comes back wrapped in its
    traceback: keep the message. On an error the workers are stopped at once (left to
    the garbage collector, stopping them waits 5 s)."""
    batches = iter(loader)
    try:
        yield from batches
    except ExtractError as e:
        found = re.findall(r"^(?:\S*\.)?ExtractError: (.*)$", str(e), flags=re.M)
        if not found:
            raise
        raise ExtractError(found[-1]) from None
    finally:
        getattr(batches, "_shutdown_workers", lambda: None)()


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xlsr-extract", description="Layer-wise representations of "
                                     "fairseq manifests (CNN, quantizer, every transformer block) as .npy shards.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("checkpoint", help="pre-trained (xlsr_base/xlsr_large, official wav2vec 2.0/XLSR) or "
                        "CTC fine-tuned checkpoint (its encoder is used)")
    parser.add_argument("manifests", nargs="+", help="fairseq manifests <split>.tsv (audio root, then relpath<TAB>samples)")
    parser.add_argument("--out", required=True, help="output directory (resumed if it holds an unfinished run)")
    parser.add_argument("--layers", default="all",
                        help="'all' or a comma list of: cnn, codes, quantized, layer_0 .. layer_N (layer_-1: "
                        "the last block), final")
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                        help="storage type of the float representations (codes are integers)")
    parser.add_argument("--max-tokens", type=int, default=1_600_000,
                        help="padded audio samples per batch (an utterance longer than this runs alone)")
    parser.add_argument("--shard-frames", type=int, default=10_000,
                        help="frames per shard (200 s of audio at 50 frames/s; 41 MB per 1024-dim float32 "
                        "layer). An utterance is never split: a shard holding one longer utterance has "
                        "more. One shard of every layer is held in memory until written")
    parser.add_argument("--sort-window", type=int, default=20_000,
                        help="manifest lines read, sorted by length and batched at a time")
    parser.add_argument("--check-first", type=int, default=100,
                        help="audio files per manifest checked (exists, sample rate, length) before the model runs; "
                        "every file is checked again when read")
    parser.add_argument("--num-workers", type=int, default=2, help="audio-reading processes")
    parser.add_argument("--device", default=None, help="torch device; none given: cuda if available, else cpu")
    parser.add_argument("--overwrite", action="store_true", help="delete an earlier extraction in --out and start again")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(format="%(asctime)s | %(levelname)s | %(name)s | %(message)s", level=logging.INFO)
    try:
        extract(args.checkpoint, args.manifests, args.out, layers=args.layers, dtype=args.dtype,
                max_tokens=args.max_tokens, shard_frames=args.shard_frames, sort_window=args.sort_window,
                check_first=args.check_first, num_workers=args.num_workers, device=args.device,
                overwrite=args.overwrite, progress=not args.no_progress)
    except ExtractError as e:
        print(f"xlsr-extract: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
