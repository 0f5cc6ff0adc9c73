"""Batches that hold every utterance of a split exactly once.

fairseq batches a dataset with ``batch_by_size``, whose batch sizes must be multiples
of ``--required-batch-size-multiple`` (8 by default). The compiled version that
fairseq-fixed 0.12.3.1 builds drops the utterances after the last batch of such a size:
all of them when a split has fewer than 8 utterances, and 4 of 12. Stock fairseq keeps
them as one final, smaller batch, and so does :func:`complete_batches`, which every
dataset of this plugin batches through. Evaluation then covers every utterance whatever
the batch-size options (``fairseq-generate``'s count equals the manifest's), and a
training epoch sees every drawn utterance.
"""

from collections import Counter
from typing import Callable, List

import numpy as np


def complete_batches(batch_by_size: Callable, indices, **kwargs) -> List[np.ndarray]:
    """``batch_by_size(indices, **kwargs)``, plus batches of what it left out: those
    utterances are batched again with a multiple of 1, which keeps every index.

    ``indices`` may repeat an utterance (a training draw holds whole copies of an
    up-sampled language), so what is missing is counted per occurrence, not per value:
    fairseq's batches are consecutive slices of ``indices``, and the left-out ones are
    the rest of it."""
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) == 0:
        return []
    batches = list(batch_by_size(indices, **kwargs))
    covered = sum(len(b) for b in batches)
    if covered == len(indices):
        return batches
    flat = np.concatenate(batches) if batches else np.zeros(0, dtype=np.int64)
    if np.array_equal(flat, indices[:covered]):
        missing = indices[covered:]
    else:  # not consecutive slices: take away one occurrence per batched index
        left = Counter(flat.tolist())
        keep = np.ones(len(indices), dtype=bool)
        for k, i in enumerate(indices.tolist()):
            if left[i]:
                left[i] -= 1
                keep[k] = False
        missing = indices[keep]
    return batches + list(batch_by_size(missing, **dict(kwargs, required_batch_size_multiple=1)))


def batches_per_part(batch_by_size: Callable, indices, parts, **kwargs) -> List[np.ndarray]:
    """Batch each part (a language) of ``indices`` apart, parts in increasing order, each
    in the order it has in ``indices`` (``parts[i]`` is the part of ``indices[i]``), so
    that no batch mixes parts. One stable sort, no Python work per index."""
    indices, parts = np.asarray(indices, dtype=np.int64), np.asarray(parts)
    order = np.argsort(parts, kind="stable")
    bounds = np.flatnonzero(np.diff(parts[order])) + 1
    batches: List[np.ndarray] = []
    for group in np.split(indices[order], bounds):
        if len(group):
            batches += list(batch_by_size(group, **kwargs))
    return batches


class CompleteBatching:
    """Mixin for a fairseq dataset: its ``batch_by_size`` keeps every index."""

    def batch_by_size(self, indices, max_tokens=None, max_sentences=None,
                      required_batch_size_multiple=1):
        return complete_batches(
            super().batch_by_size, indices, max_tokens=max_tokens, max_sentences=max_sentences,
            required_batch_size_multiple=required_batch_size_multiple,
        )
