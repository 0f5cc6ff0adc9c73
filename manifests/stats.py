"""Hours, utterances and speakers per language and split of a manifest folder.

The numbers XLSR's tables are stated in (hours of speech per language, section 4.1), read
from the manifests alone: sample counts from the ``.tsv``, speakers from the parallel
``.spk`` file the builders write ("-" when the corpus names no speakers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from . import formats, layout


@dataclass(frozen=True)
class SubsetStats:
    split: str
    lang: Optional[str]
    utterances: int
    hours: float
    speakers: Optional[int]  # None: no .spk file / speakers unknown


def collect_stats(data, sample_rate: int = 16_000) -> List[SubsetStats]:
    data = Path(data)
    rows = []
    for tsv in sorted(data.glob("*.tsv")):
        if tsv.name.endswith(layout.REJECTS_SUFFIX):
            continue
        split, lang = layout.split_subset(tsv.stem)
        man = formats.read_manifest(tsv)
        spk_path = layout.label_path(data, split, lang, layout.SPEAKER_LABELS)
        speakers = None
        if spk_path.is_file():
            names = set(formats.read_lines(spk_path)) - {"-"}
            speakers = len(names) or None
        rows.append(SubsetStats(split, lang, len(man), man.hours(sample_rate), speakers))
    rows.sort(key=lambda r: (r.lang or "", r.split))
    return rows


def format_stats(rows: List[SubsetStats]) -> str:
    lines = [f"{'lang':<8} {'split':<16} {'hours':>10} {'utts':>9} {'speakers':>9}"]
    for r in rows:
        spk = "-" if r.speakers is None else str(r.speakers)
        lines.append(f"{r.lang or '(mix)':<8} {r.split:<16} {r.hours:>10.3f} "
                     f"{r.utterances:>9d} {spk:>9}")
    return "\n".join(lines)
