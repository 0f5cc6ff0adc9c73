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

from typing import Callable, List

import numpy as np


def complete_batches(batch_by_size: Callable, indices, **kwargs) -> List[np.ndarray]:
    """``batch_by_size(indices, **kwargs)``, plus batches of what it left out: those
    utterances are batched again with a multiple of 1, which keeps every index."""
    indices = np.asarray(indices, dtype=np.int64)
    batches = list(batch_by_size(indices, **kwargs))
    if sum(len(b) for b in batches) == len(indices):
        return batches
    covered = np.concatenate(batches) if batches else np.zeros(0, dtype=np.int64)
    missing = indices[~np.isin(indices, covered)]
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
