"""The table ``xlsr-analyze probe`` writes (``probe.tsv``, ``probe.json``), read and written
in one place, without torch: the demo's report reads it (:mod:`xlsr_tools.probe` makes it).

``probe.tsv``: tab-separated, a header line, one row per checkpoint name, language, layer
and evaluation split: ``frames`` scored, ``error`` and ``majority_error`` (%, 2 decimals),
``unseen`` (frames whose phone no training frame had), ``classes`` (phones the probe
knows), ``checkpoint`` (absolute path). ``probe.json``: the same rows with the settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Sequence

from manifests.formats import atomic_write

COLUMNS = ("name", "lang", "layer", "split", "frames", "error", "majority_error", "unseen", "classes",
           "checkpoint")


def write_outputs(out, rows: Sequence[dict], settings: dict) -> None:
    """``out/probe.tsv`` and ``out/probe.json`` (rows and ``settings``), each atomically."""
    out = Path(out)
    with atomic_write(out / "probe.tsv") as f:
        f.write("\t".join(COLUMNS) + "\n")
        for r in rows:
            f.write("\t".join(f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c]) for c in COLUMNS) + "\n")
    with atomic_write(out / "probe.json") as f:
        json.dump({**settings, "rows": list(rows)}, f, indent=1, ensure_ascii=False)


def read_probe_tsv(path) -> List[dict]:
    """The rows of a ``probe.tsv`` (numbers as numbers)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines or tuple(lines[0].split("\t")) != COLUMNS:
        raise ValueError(f"{path} line 1: not a probe.tsv header ({' '.join(COLUMNS)})")
    rows = []
    for number, line in enumerate(lines[1:], 2):
        cells = line.split("\t")
        if len(cells) != len(COLUMNS):
            raise ValueError(f"{path} line {number}: {len(cells)} columns, expected {len(COLUMNS)}")
        row = dict(zip(COLUMNS, cells))
        for key in ("frames", "unseen", "classes"):
            row[key] = int(row[key])
        for key in ("error", "majority_error"):
            row[key] = float(row[key])
        rows.append(row)
    return rows

