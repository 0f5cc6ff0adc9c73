"""fairseq's audio manifest and label formats, read and written in one place.

* ``<subset>.tsv``: first line the absolute audio root, then ``relpath<TAB>num_samples``
  (what fairseq's ``examples/wav2vec/wav2vec_manifest.py`` writes and
  ``FileAudioDataset`` reads).
* ``<subset>.wrd``: normalised words; ``.ltr``: characters separated by spaces, ``|``
  between words and a trailing `` |`` (as ``libri_labels.py``); ``.phn``: phones
  separated by spaces. One line per manifest line.
* ``dict.<labels>.txt``: ``symbol count`` per line; a new dictionary is sorted most
  frequent first, a rebuilt one keeps its order (``manifests.pipeline.rebuild_dicts``).
* ``<subset>.tsv.verified``: a verification stamp (JSON): the sha256 of the manifest's
  bytes whose every audio file was found to exist, be non-empty, have a readable header
  with ``sample_rate`` and samples. Written by the builders (which read every file) and
  by the plugin's start-up check; any later change to the manifest voids it.

Every writer goes through :func:`atomic_write`: an interrupted run never leaves a
half-written file behind.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from xlsr_core.labels import SEPARATOR
from . import layout
from xlsr_core.sampling import language_hours

PathLike = Union[str, os.PathLike]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w", encoding: str = "utf-8") -> Iterator:
    """Write ``path`` through a temporary file in the same folder, renamed on success.

    The file gets the permissions ``open`` would give it (0666 less the umask), not
    ``mkstemp``'s private 0600: manifests are read by other users and jobs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        kwargs = {} if "b" in mode else {"encoding": encoding, "newline": "\n"}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
        os.replace(tmp, path)
        _remove_stale_temporaries(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _remove_stale_temporaries(path: Path) -> None:
    """Temporary files of ``path`` that a killed run left (``.<name>.<random>.tmp``): the
    file they were meant to become has just been written whole."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


@dataclass
class Manifest:
    root: str
    entries: List[Tuple[str, int]]  # (relative path, num_samples)

    def __len__(self) -> int:
        return len(self.entries)

    def sizes(self) -> np.ndarray:
        """Samples per utterance, in manifest order (``FileAudioDataset.sizes`` before
        its ``min_sample_size`` filter)."""
        return np.fromiter((n for _, n in self.entries), dtype=np.int64, count=len(self.entries))

    def hours(self, sample_rate: int) -> float:
        """All the audio listed (no ``min_sample_size`` filter)."""
        return language_hours(self.sizes(), sample_rate)


class ManifestError(ValueError):
    """A manifest, label or dictionary file that fairseq would choke on later."""


def manifest_lines(path: PathLike, hasher=None) -> Tuple[str, Iterator[Tuple[int, str, int]]]:
    """The audio root of a fairseq manifest and an iterator over its entries as
    ``(line number, relative path, num_samples)``, read one line at a time (memory does
    not grow with the manifest). Anything malformed raises :class:`ManifestError` naming
    file and line. ``hasher`` (a ``hashlib`` object) is fed every byte read."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    f = open(path, "rb")
    try:
        first = f.readline()
        if hasher is not None:
            hasher.update(first)
        root = _decode(first, path, 1).rstrip("\r\n")
        if not root:
            raise ManifestError(f"{path}:1: first line must be the audio root folder")
    except BaseException:
        f.close()
        raise

    def entries() -> Iterator[Tuple[int, str, int]]:
        with f:
            for lineno, raw in enumerate(f, start=2):
                if hasher is not None:
                    hasher.update(raw)
                line = _decode(raw, path, lineno).rstrip("\r\n")
                parts = line.split("\t")
                if len(parts) != 2 or not parts[1].strip().isdigit():
                    raise ManifestError(
                        f"{path}:{lineno}: expected 'relative/path<TAB>num_samples', "
                        f"got {line.rstrip()!r}"
                    )
                yield lineno, parts[0], int(parts[1])

    return root, entries()


def _decode(raw: bytes, path: Path, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ManifestError(f"{path}:{lineno}: not UTF-8 ({e})") from None


def read_manifest(path: PathLike) -> Manifest:
    """Parse a fairseq manifest, naming file and line of anything malformed."""
    root, lines = manifest_lines(path)
    return Manifest(root, [(rel, n) for _, rel, n in lines])


def write_manifest(path: PathLike, manifest: Manifest, verified_rate: Optional[int] = None) -> None:
    """Write ``path``; with ``verified_rate``, the caller vouches that every listed file
    passes the audio check at that sample rate (it read them) and a stamp says so.
    Otherwise any earlier stamp is removed (it would be void anyway)."""
    write_entries(path, manifest.root, manifest.entries, verified_rate)


def write_entries(
    path: PathLike, root: str, entries: Iterable[Tuple[str, int]], verified_rate: Optional[int] = None
) -> int:
    """:func:`write_manifest` from an iterator of ``(relpath, num_samples)`` (streamed: memory
    does not grow with the manifest); returns the number of entries written."""
    count = 0
    with atomic_write(path) as f:
        print(root, file=f)
        for rel, n in entries:
            print(f"{rel}\t{n}", file=f)
            count += 1
    if verified_rate is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(layout.verified_path(path))
    else:
        write_stamp(path, manifest_digest(path), verified_rate, count, "xlsr-manifest")
    return count


# -- verification stamps ---------------------------------------------------------------

STAMP_FORMAT = 1
STAMP_CHECKS = "every file exists, is non-empty, has a readable header at sample_rate and samples > 0"


@dataclass(frozen=True)
class ManifestDigest:
    sha256: str
    size: int  # bytes
    lines: int  # newline characters (utterances + 1 for a well-formed manifest)


def manifest_digest(path: PathLike, block: int = 1 << 20) -> ManifestDigest:
    """sha256 of the manifest's bytes, read in blocks (about 1.5 GB/s)."""
    h, size, lines = hashlib.sha256(), 0, 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(block):
                h.update(chunk)
                size += len(chunk)
                lines += chunk.count(b"\n")
    except FileNotFoundError:
        raise ManifestError(f"{path}: manifest not found") from None
    return ManifestDigest(h.hexdigest(), size, lines)


def write_stamp(path: PathLike, digest: ManifestDigest, sample_rate: int, utterances: int, by: str,
                notes: Optional[dict] = None) -> Path:
    """Record that the manifest with ``digest`` passed the audio check at ``sample_rate``;
    ``notes`` (plain JSON) keeps what the check reported without refusing (e.g. files of
    several channels), so that a start that trusts the stamp reports it again."""
    stamp = layout.verified_path(path)
    with atomic_write(stamp) as f:
        json.dump({
            "format": STAMP_FORMAT, "manifest": Path(path).name, "sha256": digest.sha256,
            "bytes": digest.size, "sample_rate": int(sample_rate), "utterances": int(utterances),
            "checks": STAMP_CHECKS, "verified_by": by, **({"notes": notes} if notes else {}),
        }, f, indent=1)
        f.write("\n")
    return stamp


def read_stamp(path: PathLike, digest: ManifestDigest, sample_rate: int) -> Optional[dict]:
    """The manifest's stamp if it vouches for exactly these bytes at ``sample_rate``;
    None if there is none, or it is stale, unreadable or of another format."""
    try:
        with open(layout.verified_path(path), encoding="utf-8") as f:
            stamp = json.load(f)
    except (OSError, ValueError):
        return None
    ok = (
        isinstance(stamp, dict) and stamp.get("format") == STAMP_FORMAT
        and stamp.get("sha256") == digest.sha256 and stamp.get("bytes") == digest.size
        and stamp.get("sample_rate") == sample_rate and isinstance(stamp.get("utterances"), int)
    )
    return stamp if ok else None


def verified_rate(path: PathLike) -> Optional[int]:
    """The sample rate a valid stamp vouches for ``path`` at, else None (hashes the file)."""
    try:
        with open(layout.verified_path(path), encoding="utf-8") as f:
            rate = json.load(f).get("sample_rate")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(rate, int) or not Path(path).is_file():
        return None
    return rate if read_stamp(path, manifest_digest(path), rate) else None


def read_lines(path: PathLike) -> List[str]:
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def write_lines(path: PathLike, lines: Iterable[str]) -> None:
    with atomic_write(path) as f:
        for line in lines:
            print(line, file=f)


def letters(words: str) -> str:
    """``"hola mundo"`` -> ``"h o l a | m u n d o |"`` (fairseq's ``.ltr`` line)."""
    toks = words.split()
    if not toks:
        return ""
    return " ".join(" ".join(w) + f" {SEPARATOR}" for w in toks)


def count_symbols(lines: Iterable[str]) -> Counter:
    counts: Counter = Counter()
    for line in lines:
        counts.update(line.split())
    return counts


def by_frequency(counts: Counter) -> List[str]:
    """Symbols most frequent first, ties by symbol (a new dictionary's order)."""
    return [sym for sym, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def write_dict(path: PathLike, counts: Counter, order: Optional[Sequence[str]] = None) -> None:
    """fairseq ``Dictionary`` text format: ``symbol count`` per line, in ``order`` (default
    :func:`by_frequency`); a symbol without a count is written with 0."""
    with atomic_write(path) as f:
        for sym in by_frequency(counts) if order is None else order:
            print(f"{sym} {counts.get(sym, 0)}", file=f)


def read_dict_symbols(path: PathLike) -> Sequence[str]:
    symbols = []
    for lineno, line in enumerate(read_lines(path), start=1):
        parts = line.split()
        if len(parts) < 2:
            raise ManifestError(f"{path}:{lineno}: expected 'symbol count', got {line!r}")
        symbols.append(parts[0])
    return symbols
