"""Language-balanced mixes for XLSR pre-training (section 3.2: p_l ∝ (n_l/N)^alpha).

Two ways to train on the balanced distribution, both from the same table
(:class:`xlsr_core.sampling.SamplingTable`, the one the ``xlsr_pretraining`` task logs:
with the task's ``min_sample_size``, hours and utterances count only the clips training
loads):

* **a combined manifest** for stock ``audio_pretraining``: each language contributes
  ``p_l * T`` hours (``T`` = total hours, by default the natural total), by repeating
  its utterances ``floor(k)`` times and adding a seeded random subset for the fraction,
  which is how the authors prepared XLSR-53 for unmodified fairseq. Language manifests
  usually have different roots (``.../audio/es``, ``/data/mls/...``), while a tsv has one
  root line: the combined manifest's root is the deepest folder common to all of them
  and every entry is rewritten relative to it. Label files (``.wrd``/``.ltr``/``.phn``)
  present for every language are mixed in the same order. Clips shorter than
  ``min_sample_size`` are left out of it, as training would skip them.
* **weights**: ``task.sampling_alpha`` for the plugin's ``xlsr_pretraining`` task (which
  computes p_l itself each epoch), or ``multi_corpus_sampling_weights`` for fairseq's
  ``MultiCorpusDataset``; that class draws utterances, so the weights are per-utterance
  (``SamplingTable.utterance_weights``) and sum to exactly 1.0.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from xlsr_core.sampling import SamplingTable, check_alpha, kept_utterances

from . import formats, layout


@dataclass
class BalanceResult:
    table: SamplingTable  # rows, p_l and per-utterance MultiCorpusDataset weights
    min_sample_size: Optional[int] = None
    manifest: Optional[Path] = None
    mixed: Dict[str, int] = field(default_factory=dict)  # utterances per language in the mix
    mixed_hours: Dict[str, float] = field(default_factory=dict)

    @property
    def probabilities(self) -> Dict[str, float]:
        return self.table.probabilities

    def weights_overrides(self, split: str) -> str:
        langs = self.table.languages
        keys = ",".join(langs)
        subsets = ",".join(f"{l}:{layout.subset_name(split, l)}" for l in langs)
        weights = ",".join(repr(self.table.utterance_weights[l]) for l in langs)
        same = "" if self.min_sample_size is None else f" task.min_sample_size={self.min_sample_size}"
        return (
            f"xlsr_pretraining: task.languages={keys} task.sampling_alpha={self.table.alpha:g}{same}\n"
            f"audio_pretraining: dataset.train_subset={subsets} "
            f"task.multi_corpus_keys={keys} task.multi_corpus_sampling_weights={weights}{same}"
        )

    def summary(self, split: str) -> str:
        lines = [self.table.format()]
        if self.manifest is not None:
            mix = ", ".join(f"{l} {n} utts/{self.mixed_hours[l]:.3f} h" for l, n in self.mixed.items())
            lines.append(f"combined manifest {self.manifest}: {mix}")
        lines.append(self.weights_overrides(split))
        return "\n".join(lines)


def _take(entries_idx: List[int], samples: Sequence[int], target: float, rng: random.Random) -> List[int]:
    """Whole copies of all indices while they fit, then a shuffled prefix up to ``target``."""
    total = sum(samples[i] for i in entries_idx)
    copies = int(target // total)
    chosen = entries_idx * copies
    rest = target - copies * total
    order = list(entries_idx)
    rng.shuffle(order)
    for i in order:
        if rest < samples[i] / 2:  # nearest total, never overshoots by more than half a clip
            break
        chosen.append(i)
        rest -= samples[i]
    return chosen


def balance(
    data,
    split: str = "train",
    languages: Optional[Sequence[str]] = None,
    alpha: float = 0.5,
    *,
    seed: int = 1,
    output_split: Optional[str] = None,
    total_hours: Optional[float] = None,
    sample_rate: int = 16_000,
    min_sample_size: Optional[int] = None,
) -> BalanceResult:
    """Sampling table for ``<split>_<lang>.tsv`` in ``data``; with ``output_split``, also
    write the combined ``<output_split>.tsv`` (+ shared labels). Deterministic for ``seed``.

    ``min_sample_size`` is training's ``task.min_sample_size``: clips of fewer samples
    count in neither the table nor the mix (fairseq's ``FileAudioDataset`` skips them).
    """
    check_alpha(alpha)
    data = Path(data)
    langs = list(languages) if languages else layout.discover_languages(data, split)
    if not langs:
        raise ValueError(f"{data}: no {split}_<lang>.tsv manifests")
    mans = {l: formats.read_manifest(layout.manifest_path(data, split, l)) for l in langs}
    sizes = {l: m.sizes() for l, m in mans.items()}
    table = SamplingTable.from_sizes(sizes, alpha, sample_rate, min_sample_size)
    result = BalanceResult(table, min_sample_size)
    if output_split is None:
        return result
    layout.check_split(output_split)
    roots = {l: os.path.abspath(m.root) for l, m in mans.items()}
    common = os.path.commonpath(list(roots.values()))
    kinds = [k for k in layout.LABEL_KINDS
             if all(layout.label_path(data, split, l, k).is_file() for l in langs)]
    target_total = total_hours if total_hours is not None else math.fsum(table.hours.values())
    entries: List = []
    labels: Dict[str, List[str]] = {k: [] for k in kinds}
    for lang in langs:
        man = mans[lang]
        samples = sizes[lang].tolist()
        rng = random.Random(f"{seed}:{lang}")  # str seeds are stable across runs
        target = table.probabilities[lang] * target_total * 3600 * sample_rate
        kept = np.flatnonzero(kept_utterances(sizes[lang], min_sample_size)).tolist()
        idx = _take(kept, samples, target, rng)
        prefix = os.path.relpath(roots[lang], common)
        for i in idx:
            rel = man.entries[i][0]
            entries.append((rel if prefix == "." else f"{prefix}/{rel}", samples[i]))
        for k in kinds:
            lines = formats.read_lines(layout.label_path(data, split, lang, k))
            if len(lines) != len(man):
                raise formats.ManifestError(
                    f"{layout.label_path(data, split, lang, k)}: {len(lines)} lines but the "
                    f"manifest has {len(man)} entries; rebuild the labels")
            labels[k] += [lines[i] for i in idx]
        result.mixed[lang] = len(idx)
        result.mixed_hours[lang] = sum(samples[i] for i in idx) / sample_rate / 3600
    for k in kinds:
        formats.write_lines(layout.label_path(data, output_split, None, k), labels[k])
    result.manifest = layout.manifest_path(data, output_split)
    rates = {formats.verified_rate(layout.manifest_path(data, split, l)) for l in langs}
    # a mix of verified manifests lists verified files only
    formats.write_manifest(result.manifest, formats.Manifest(common, entries),
                           verified_rate=rates.pop() if len(rates) == 1 else None)
    return result


__all__ = ["BalanceResult", "balance"]
