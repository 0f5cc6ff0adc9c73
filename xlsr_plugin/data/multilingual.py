"""One dataset per language, combined the XLSR way.

Training splits are re-sampled every epoch by ``LanguageBalancedDataset``
(``xlsr_plugin.data.balanced``): each language gets the share ``p_l ∝ (n_l/N)^alpha``
of the epoch's audio (``xlsr_core.sampling.SamplingTable``, over the utterances
``FileAudioDataset`` kept after ``min_sample_size``), deterministically from ``seed``
and the epoch, so every distributed rank draws the same epoch and fairseq's
``EpochBatchIterator`` hands each rank its own shard of the batches. Batches hold one
language each or mix them (``task.language_batches``); with one language per batch,
per-language loss, accuracy and code perplexity in ``xlsr_wav2vec`` are exact.

Evaluation splits are concatenated without re-sampling (every utterance exactly once),
always batched per language. Every dataset here batches through
``xlsr_plugin.data.batching.complete_batches``, so no utterance is dropped by
``--required-batch-size-multiple``.
"""


import logging
from collections import OrderedDict
from functools import partial
from typing import Optional

import numpy as np
import torch
from fairseq.data import ConcatDataset, FairseqDataset, FileAudioDataset

from xlsr_core.sampling import SamplingTable, TwoLevelSamplingTable
from xlsr_plugin.data.balanced import LanguageBalancedDataset
from xlsr_plugin.data.batching import CompleteBatching, batches_per_part, complete_batches

logger = logging.getLogger(__name__)


class LanguageAudioDataset(CompleteBatching, FileAudioDataset):
    """``FileAudioDataset`` whose items and batches carry the language index ``lang``.

    The index sits beside ``net_input`` (not in it), so models never see it. A batch is
    cropped to its shortest utterance at random offsets; fairseq draws them from the
    global numpy RNG, whose state depends on all the process did before (so a batch
    differed between one process and a rank of several, and between resumed and
    uninterrupted runs). Here the offsets are seeded by ``seed``, the epoch, the
    language and the batch's utterances, and drawn from a generator of the batch's own,
    not numpy's global one: fairseq collates in a background thread
    (``BufferedIterator``) while the training step draws LayerDrop from the global RNG,
    and re-seeding it there made LayerDrop, and so the weights, depend on thread timing.
    (The offsets are those ``data_utils.numpy_seed`` with the same seeds gave.)
    """

    def __init__(self, manifest_path: str, lang_id: int, seed: int = 1, **kwargs):
        super().__init__(manifest_path, **kwargs)
        self.lang_id = lang_id
        self.seed = seed
        self.epoch = 1

    def set_epoch(self, epoch):
        super().set_epoch(epoch)
        self.epoch = epoch

    def __getitem__(self, index):
        item = super().__getitem__(index)
        item["lang"] = self.lang_id
        return item

    def crop_to_max_size(self, t, target_size, dim=0):
        """fairseq's random crop, its offset drawn from the batch's generator."""
        rng = getattr(self, "_crop_rng", None)
        diff = t.size(dim) - target_size
        if rng is None or diff <= 0:
            return super().crop_to_max_size(t, target_size, dim)
        return t.narrow(dim, int(rng.randint(0, diff + 1)), target_size)

    def num_tokens_vec(self, indices):
        """``num_tokens`` of many utterances at once (fairseq batches with it)."""
        sizes = self.sizes[indices]
        return sizes if self.pad else np.minimum(sizes, self.max_sample_size)

    def collater(self, samples):
        seed = int(hash((self.seed, self.epoch, self.lang_id, *(s["id"] for s in samples))) % 1e6)
        self._crop_rng = np.random.RandomState(seed)  # numpy_seed's seed, a generator of its own
        try:
            batch = super().collater(samples)
        finally:
            self._crop_rng = None
        if batch:
            kept = [s for s in samples if s["source"] is not None]
            batch["lang"] = torch.LongTensor([s["lang"] for s in kept])
        return batch


def batch_language(sample, languages) -> Optional[str]:
    """The language of a batch that holds one known language, else None."""
    ids = sample.get("lang")
    if ids is None or len(ids) == 0:
        return None
    first = int(ids[0])
    if not 0 <= first < len(languages) or bool((ids != first).any()):
        return None
    return languages[first]


class LanguageConcatDataset(ConcatDataset):
    """All languages of an evaluation split, each utterance once, batched per language."""

    def language_of(self, indices):
        """Position of the language of each index (one index or an array)."""
        return np.searchsorted(self.cumulative_sizes, indices, side="right")

    def __getitem__(self, index):
        item = super().__getitem__(index)
        item["global_id"] = index
        return item

    def ordered_indices(self):
        """Each language in the order it has alone. Its batches are then the ones it gets
        decoded alone, and so are its scores: padding changes what a group-norm feature
        encoder (BASE) computes, so other batches would give other hypotheses."""
        starts = [0] + list(self.cumulative_sizes[:-1])
        return np.concatenate([ds.ordered_indices() + start for ds, start in zip(self.datasets, starts)])

    def collater(self, samples):
        """Collate with the samples' own language dataset, and give the batch ids that
        are unique over the split (fairseq-generate prints and orders by them)."""
        if not samples:
            return {}
        part = self.datasets[int(self.language_of(samples[0]["global_id"]))]
        batch = part.collater(samples)
        if batch:
            global_of = {s["id"]: s["global_id"] for s in samples}
            batch["id"] = torch.LongTensor([global_of[int(i)] for i in batch["id"]])
        return batch

    def batch_by_size(self, indices, max_tokens=None, max_sentences=None,
                      required_batch_size_multiple=1):
        indices = np.asarray(indices, dtype=np.int64)
        return batches_per_part(
            partial(complete_batches, super().batch_by_size), indices, self.language_of(indices),
            max_tokens=max_tokens, max_sentences=max_sentences,
            required_batch_size_multiple=required_batch_size_multiple,
        )


def combine_languages(
    datasets: "OrderedDict[str, FairseqDataset]",
    *,
    sample_rate: int,
    alpha: float,
    seed: int,
    resample: bool,
    language_batches: str = "mixed",
    table: Optional[TwoLevelSamplingTable] = None,
) -> FairseqDataset:
    """Combine per-language datasets (``lang -> dataset``, in language-index order):
    training (``resample``) into a ``LanguageBalancedDataset`` batched by
    ``language_batches`` and weighted by XLSR's table over these languages, or by
    ``table`` (two-level sampling; then the keys are ``corpus/lang`` units);
    evaluation into a ``LanguageConcatDataset``."""
    empty = [lang for lang, ds in datasets.items() if len(ds) == 0]
    if empty:
        raise ValueError(
            f"language(s) {', '.join(empty)} have no utterances left (after "
            "min_sample_size filtering); remove them from task.languages or add data"
        )
    if not resample:
        if len(datasets) == 1:
            return next(iter(datasets.values()))
        return LanguageConcatDataset(list(datasets.values()))

    # ds.sizes are what FileAudioDataset kept: task.min_sample_size is already applied,
    # so this is the table `xlsr-manifest balance --min-sample-size` prints.
    if table is None:
        table = SamplingTable.from_sizes(
            {lang: ds.sizes for lang, ds in datasets.items()}, alpha, sample_rate
        )
    logger.info("\n" + table.format())
    if len(datasets) == 1:
        return next(iter(datasets.values()))
    return LanguageBalancedDataset(
        OrderedDict(datasets),
        weights=[table.utterance_weights[lang] for lang in datasets],
        seed=seed,
        language_batches=language_batches,
    )
