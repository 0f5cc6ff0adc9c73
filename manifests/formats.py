"""fairseq's audio manifest and label formats, read and written in one place.

* ``<subset>.tsv``: first line the absolute audio root, then ``relpath<TAB>num_samples``
  (what fairseq's ``examples/wav2vec/wav2vec_manifest.py`` writes and
  ``FileAudioDataset`` reads).
* ``<subset>.wrd``: normalised words; ``.ltr``: characters separated by spaces, ``|``
  between words and a trailing `` |`` (as ``libri_labels.py``); ``.phn``: phones
  separated by spaces. One line per manifest line.
* ``dict.<labels>.txt``: ``symbol count`` per line, most frequent first.

Every writer goes through :func:`atomic_write`: an interrupted run never leaves a
half-written file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, List, Sequence, Tuple, Union

import numpy as np

from xlsr_core.labels import SEPARATOR
from xlsr_core.sampling import language_hours

PathLike = Union[str, os.PathLike]


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w", encoding: str = "utf-8") -> Iterator:
    """Write ``path`` through a temporary file in the same folder, renamed on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding, "newline": "\n"}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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


def read_manifest(path: PathLike) -> Manifest:
    """Parse a fairseq manifest, naming file and line of anything malformed."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    entries = []
    with open(path, encoding="utf-8") as f:
        root = f.readline().rstrip("\n")
        if not root:
            raise ManifestError(f"{path}:1: first line must be the audio root folder")
        for lineno, line in enumerate(f, start=2):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 2 or not parts[1].strip().isdigit():
                raise ManifestError(
                    f"{path}:{lineno}: expected 'relative/path<TAB>num_samples', "
                    f"got {line.rstrip()!r}"
                )
            entries.append((parts[0], int(parts[1])))
    return Manifest(root, entries)


def write_manifest(path: PathLike, manifest: Manifest) -> None:
    with atomic_write(path) as f:
        print(manifest.root, file=f)
        for rel, n in manifest.entries:
            print(f"{rel}\t{n}", file=f)


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


def write_dict(path: PathLike, counts: Counter) -> None:
    """fairseq ``Dictionary`` text format, most frequent first, ties by symbol."""
    with atomic_write(path) as f:
        for sym, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"{sym} {n}", file=f)


def read_dict_symbols(path: PathLike) -> Sequence[str]:
    symbols = []
    for lineno, line in enumerate(read_lines(path), start=1):
        parts = line.split()
        if len(parts) < 2:
            raise ManifestError(f"{path}:{lineno}: expected 'symbol count', got {line!r}")
        symbols.append(parts[0])
    return symbols
