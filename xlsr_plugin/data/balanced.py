"""XLSR's language-balanced training split, planned with array operations only.

Every epoch draws each language's share ``p_l`` of the audio (Conneau et al. 2020,
§3.2; the per-utterance weights of ``xlsr_core.sampling.SamplingTable``). The draw is
exactly fairseq's ``MultiCorpusDataset`` (for the same seed, epoch and weights the same
utterances in the same order): per language ``int(weight * N)`` utterances (``N`` all
utterances, the last language takes the rest), i.e. whole copies of the language plus a
random subset without replacement, shuffled, then ordered by size. It is seeded by
``seed`` and the epoch only, so every distributed rank draws the same epoch and
fairseq's ``EpochBatchIterator`` hands each rank its own shard of the batches.

What differs from ``MultiCorpusDataset`` is the cost. fairseq's class sorts the draw
with a Python key, maps every index to its corpus with a Python loop over corpora and
has no ``num_tokens_vec``, so the size filter and the batching call Python per
utterance: ~20 s per epoch on every rank for a million utterances. Here utterance sizes,
language offsets and the draw are numpy arrays; a global index (the concatenation of
the languages) is mapped to (language, index in it) with ``searchsorted``; the draw,
its ordering, the size filter and the batching (fairseq's compiled ``batch_by_size``
on ``num_tokens_vec``, through ``complete_batches`` so nothing drawn is dropped) are
array operations. Items and batches still come from the per-language datasets
(``LanguageAudioDataset``: audio, crops seeded by epoch, ``lang``), which all must be
built with the same options.

Batches hold one language each (``language_batches="one"``: exact per-language
training metrics, what fairseq's ``batch_sample=True`` did) or mix the languages of the
draw (``"mixed"``: batches cut from the whole size-ordered draw, what one re-sampled
manifest gives).
"""

import logging
from collections import OrderedDict
from typing import Dict, List, Sequence, Tuple

import numpy as np
from fairseq.data import BaseWrapperDataset, FairseqDataset, data_utils

from xlsr_plugin.data.batching import batches_per_part, complete_batches

logger = logging.getLogger(__name__)

LANGUAGE_BATCHES = ("one", "mixed")


def token_sizes(dataset: FairseqDataset) -> np.ndarray:
    """``num_tokens`` of every item of ``dataset``, as one array (asked of the audio
    dataset inside wrappers such as fine-tuning's ``AddTargetDataset``, whose
    ``num_tokens`` is that of the audio)."""
    inner = dataset
    while True:
        try:
            return np.asarray(inner.num_tokens_vec(np.arange(len(inner))), dtype=np.int64)
        except NotImplementedError:
            if not isinstance(inner, BaseWrapperDataset):
                raise TypeError(
                    f"{type(dataset).__name__} has no num_tokens_vec: cannot plan epochs "
                    "without a Python call per utterance"
                ) from None
            inner = inner.dataset


class LanguageBalancedDataset(FairseqDataset):
    """The languages of a training split, re-sampled to ``weights`` every epoch.

    Args:
        datasets: ``lang -> dataset`` in language order; global index ``i`` is item
            ``i - offsets[k]`` of the ``k``-th.
        weights: per-utterance weight of each language (``SamplingTable.
            utterance_weights``), positive, summing to 1.
        seed: with the epoch, the only seed of the draw.
        language_batches: ``"one"`` language per batch, or ``"mixed"``.
    """

    def __init__(
        self,
        datasets: "OrderedDict[str, FairseqDataset]",
        weights: Sequence[float],
        seed: int,
        language_batches: str = "mixed",
    ):
        super().__init__()
        if language_batches not in LANGUAGE_BATCHES:
            raise ValueError(f"language_batches must be one of {LANGUAGE_BATCHES}, got {language_batches!r}")
        if len(weights) != len(datasets) or not all(w > 0 for w in weights):
            raise ValueError(f"one positive weight per language needed, got {list(weights)}")
        self.datasets: Dict[str, FairseqDataset] = OrderedDict(datasets)
        self.languages: List[str] = list(self.datasets)
        self.parts: List[FairseqDataset] = list(self.datasets.values())
        self.weights = [float(w) for w in weights]
        self.seed = seed
        self.epoch = 1
        self.language_batches = language_batches
        counts = np.array([len(d) for d in self.parts], dtype=np.int64)
        if (counts == 0).any():
            raise ValueError("every language needs at least one utterance")
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.sizes = np.concatenate([np.asarray(d.sizes, dtype=np.int64) for d in self.parts])
        self._tokens = np.concatenate([token_sizes(d) for d in self.parts])

    # -- index space -------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.offsets[-1])

    def language_of(self, indices) -> np.ndarray:
        """Position (in ``datasets``) of the language of each global index."""
        return np.searchsorted(self.offsets, indices, side="right") - 1

    def locate(self, indices) -> Tuple[np.ndarray, np.ndarray]:
        """(language position, index within that language) of each global index."""
        indices = np.asarray(indices, dtype=np.int64)
        langs = self.language_of(indices)
        return langs, indices - self.offsets[langs]

    def _part(self, index: int):
        k = int(self.language_of(index))
        return self.parts[k], int(index - self.offsets[k])

    # -- items -------------------------------------------------------------------------
    def __getitem__(self, index):
        part, local = self._part(index)
        item = part[local]
        item["full_id"] = index
        return item

    def collater(self, samples):
        """Collate with the first sample's language dataset. A mixed batch is collated
        by it too: the languages' datasets differ only in their utterances and ``lang``
        (each item carries its own), and crops are seeded by that dataset's language,
        the epoch and the items' ids."""
        if not samples:
            return {}
        part, _ = self._part(samples[0]["full_id"])
        return part.collater(samples)

    def size(self, index: int):
        part, local = self._part(index)
        return part.size(local)

    def num_tokens(self, index: int) -> int:
        return int(self._tokens[index])

    def num_tokens_vec(self, indices) -> np.ndarray:
        return self._tokens[indices]

    # -- the epoch ---------------------------------------------------------------------
    @property
    def can_reuse_epoch_itr_across_epochs(self) -> bool:
        return False  # a new draw every epoch

    def set_epoch(self, epoch, **unused):
        super().set_epoch(epoch)
        self.epoch = epoch
        for part in self.parts:
            part.set_epoch(epoch)  # their crops are seeded by it

    def ordered_indices(self) -> np.ndarray:
        """The epoch's draw (global indices, with repeats), ordered by size: the draw of
        ``MultiCorpusDataset(..., sort_indices=True)``, index for index."""
        total = len(self)
        drawn = []
        with data_utils.numpy_seed(self.seed, self.epoch):
            taken = 0
            for k, weight in enumerate(self.weights):
                start, end = int(self.offsets[k]), int(self.offsets[k + 1])
                count = int(weight * total) if k < len(self.weights) - 1 else total - taken
                taken += count
                copies, rest = divmod(count, end - start)
                drawn.append(np.repeat(np.arange(start, end, dtype=np.int64), copies))
                drawn.append(np.random.permutation(end - start)[:rest] + start)
            drawn = np.concatenate(drawn).astype(np.int64)
            np.random.shuffle(drawn)
        return drawn[np.argsort(self._tokens[drawn], kind="stable")]

    def filter_indices_by_size(self, indices, max_sizes):
        """Leave out utterances of more tokens than ``max_sizes`` (a number or fairseq's
        ``(max_tokens, max_tokens)`` tuple; ``None`` entries are no limit), as fairseq's
        per-utterance filter does with ``size``. Fine-tuning's ``size`` adds the label
        length, which fairseq compared too; it is left out here: labels are checked at
        load to fit the utterance's frames (``check_label_lengths``), 320 samples each."""
        limits = max_sizes if isinstance(max_sizes, (tuple, list)) else [max_sizes]
        limits = [m for m in limits if m is not None]
        if not limits:
            return indices, []
        fits = self._tokens[indices] <= min(limits)
        return indices[fits], indices[~fits].tolist()

    def batch_by_size(self, indices, max_tokens=None, max_sentences=None,
                      required_batch_size_multiple=1):
        batch = self._batch_languages_apart if self.language_batches == "one" else self._batch
        return complete_batches(
            batch, indices, max_tokens=max_tokens, max_sentences=max_sentences,
            required_batch_size_multiple=required_batch_size_multiple,
        )

    def _batch(self, indices, **kwargs):
        indices = np.asarray(indices, dtype=np.int64)
        return data_utils.batch_by_size(
            indices, self.num_tokens, num_tokens_vec=self._tokens[indices], **kwargs
        )

    def _batch_languages_apart(self, indices, **kwargs):
        indices = np.asarray(indices, dtype=np.int64)
        return batches_per_part(self._batch, indices, self.language_of(indices), **kwargs)

    @property
    def supports_prefetch(self) -> bool:
        return False

    @property
    def supports_fetch_outside_dataloader(self) -> bool:
        return all(d.supports_fetch_outside_dataloader for d in self.parts)
