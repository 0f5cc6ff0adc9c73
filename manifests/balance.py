"""Language-balanced mixes for XLSR pre-training (section 3.2: p_l ∝ (n_l/N)^alpha).

Two ways to train on the balanced distribution, both from the same table
(:func:`xlsr_core.sampling.sampling_table`):

* **a combined manifest** for stock ``audio_pretraining``: each language contributes
  ``p_l * T`` hours (``T`` = total hours, by default the natural total), by repeating
  its utterances ``floor(k)`` times and adding a seeded random subset for the fraction,
  which is how the authors prepared XLSR-53 for unmodified fairseq. Language manifests
  usually have different roots (``.../audio/es``, ``/data/mls/...``), while a tsv has one
  root line: the combined manifest's root is the deepest folder common to all of them
  and every entry is rewritten relative to it. Label files (``.wrd``/``.ltr``/``.phn``)
  present for every language are mixed in the same order.
* **weights**: ``task.sampling_alpha`` for the plugin's ``xlsr_pretraining`` task (which
  computes p_l itself each epoch), or ``multi_corpus_sampling_weights`` for fairseq's
  ``MultiCorpusDataset``; that class draws utterances, so the weights are per-utterance
  (:func:`xlsr_core.sampling.utterance_weights`) and sum to exactly 1.0.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from xlsr_core.sampling import LanguageShare, check_alpha, format_table, sampling_table, utterance_weights

from . import formats, layout


@dataclass
class BalanceResult:
    alpha: float
    rows: List[LanguageShare]
    corpus_weights: Dict[str, float]  # per-utterance MultiCorpusDataset distribution
    manifest: Optional[Path] = None
    mixed: Dict[str, int] = field(default_factory=dict)  # utterances per language in the mix
    mixed_hours: Dict[str, float] = field(default_factory=dict)

    @property
    def probabilities(self) -> Dict[str, float]:
        return {r.lang: r.sampled for r in self.rows}

    def weights_overrides(self, split: str) -> str:
        langs = [r.lang for r in self.rows]
        keys = ",".join(langs)
        subsets = ",".join(f"{l}:{layout.subset_name(split, l)}" for l in langs)
        weights = ",".join(repr(self.corpus_weights[l]) for l in langs)
        return (
            f"xlsr_pretraining: task.languages={keys} task.sampling_alpha={self.alpha:g}\n"
            f"audio_pretraining: dataset.train_subset={subsets} "
            f"task.multi_corpus_keys={keys} task.multi_corpus_sampling_weights={weights}"
        )

    def summary(self, split: str) -> str:
        lines = [format_table(self.rows, self.alpha)]
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
) -> BalanceResult:
    """Sampling table for ``<split>_<lang>.tsv`` in ``data``; with ``output_split``, also
    write the combined ``<output_split>.tsv`` (+ shared labels). Deterministic for ``seed``."""
    check_alpha(alpha)
    data = Path(data)
    langs = list(languages) if languages else layout.discover_languages(data, split)
    if not langs:
        raise ValueError(f"{data}: no {split}_<lang>.tsv manifests")
    mans = {l: formats.read_manifest(layout.manifest_path(data, split, l)) for l in langs}
    hours = {l: m.hours(sample_rate) for l, m in mans.items()}
    utts = {l: len(m) for l, m in mans.items()}
    rows = sampling_table(hours, utts, alpha)
    probs = {r.lang: r.sampled for r in rows}
    result = BalanceResult(alpha, rows, utterance_weights(probs, hours, utts))
    if output_split is None:
        return result
    layout.check_split(output_split)
    roots = {l: os.path.abspath(m.root) for l, m in mans.items()}
    common = os.path.commonpath(list(roots.values()))
    kinds = [k for k in layout.LABEL_KINDS
             if all(layout.label_path(data, split, l, k).is_file() for l in langs)]
    target_total = (total_hours if total_hours is not None else math.fsum(hours.values()))
    entries: List = []
    labels: Dict[str, List[str]] = {k: [] for k in kinds}
    for lang in langs:
        man = mans[lang]
        samples = [n for _, n in man.entries]
        rng = random.Random(f"{seed}:{lang}")  # str seeds are stable across runs
        target = probs[lang] * target_total * 3600 * sample_rate
        idx = _take(list(range(len(man))), samples, target, rng)
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
    formats.write_manifest(result.manifest, formats.Manifest(common, entries))
    return result


__all__ = ["BalanceResult", "balance"]
