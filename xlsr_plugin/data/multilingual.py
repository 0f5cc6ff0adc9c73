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
import os
from collections import OrderedDict
from functools import partial
from typing import Optional

import numpy as np
import torch
from fairseq.data import ConcatDataset, FairseqDataset, FileAudioDataset

from xlsr_core.sampling import SamplingTable, TwoLevelSamplingTable
from xlsr_plugin.data.balanced import LanguageBalancedDataset
from xlsr_plugin.data.batching import CompleteBatching, batches_per_part, complete_batches
from xlsr_plugin.errors import InputError

logger = logging.getLogger(__name__)


EXAMPLES = 3  # files named in a summary line


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

    At start the dataset reports what fairseq's loader does without naming anything:
    the clips ``min_sample_size`` skips (count and examples, file and manifest line) and
    duplicated lines (counted, kept: a resampled mix repeats lines on purpose).

    **Audio that breaks during training** (a file deleted, truncated or rewritten after
    the start-up check, or one holding NaN/Inf samples, which a header check cannot
    see) is skipped, not fatal: the item comes back with ``source=None``, a warning names
    the file, its manifest line and the running count, and the collater drops it
    (fairseq's collaters already drop ``source=None`` items; ``AddTargetDataset`` drops
    the label with it). Dropping rather than substituting another utterance keeps labels
    with their audio, never scores an utterance twice in evaluation, and needs nothing
    from other ranks: a rank whose batch lost items trains on a smaller batch, and one
    whose whole batch failed gets fairseq's dummy batch (weight 0), as with uneven
    shards. A file that failed is skipped quietly whenever it is drawn again (a
    resampled low-resource language draws each utterance many times an epoch); more than
    ``max_load_failures`` distinct failed utterances of one manifest on one rank (its
    data-loader workers share one byte per utterance) stop the run with an
    :class:`InputError`: at that point the corpus, not a file, is broken.
    """

    def __init__(self, manifest_path: str, lang_id: int, seed: int = 1, max_load_failures: int = 10,
                 duplicates: Optional[dict] = None, count_duplicates: bool = True, **kwargs):
        super().__init__(manifest_path, **kwargs)
        self.manifest_path = str(manifest_path)
        self.lang_id = lang_id
        self.seed = seed
        self.epoch = 1
        self.max_load_failures = max_load_failures
        self.min_loaded_samples = 1  # a loaded clip shorter than this was truncated (the task raises it)
        self._skipped = np.array(sorted(self.skipped_indices), dtype=np.int64)
        # one byte per utterance, shared with the data-loader workers: which ones failed to load
        self._failed = torch.zeros(len(self), dtype=torch.uint8).share_memory_()
        self._report_skipped(kwargs.get("min_sample_size"))
        # {"count": n, "examples": [[name, times], ...]}: given (a stamp's note), counted here, or
        # None (task.skip_manifest_check: nothing is checked; counting costs ~0.3 s per 1M lines)
        self.duplicates = duplicates if duplicates is not None else (
            self._count_duplicates() if count_duplicates else None)
        if self.duplicates and self.duplicates["count"]:
            shown = ", ".join(f"{name} x{n}" for name, n in self.duplicates["examples"])
            logger.warning(
                f"{self.manifest_path}: {self.duplicates['count']} duplicate line(s) (a file listed again), "
                f"e.g. {shown}: kept, each line is trained on (a resampled mix repeats lines on purpose; "
                "otherwise remove the repeats)"
            )

    # -- where an utterance comes from -------------------------------------------------
    def manifest_lines(self, indices) -> np.ndarray:
        """Manifest line numbers (header = 1) of kept utterances ``indices``."""
        k = np.asarray(indices, dtype=np.int64)
        shifted = self._skipped - np.arange(len(self._skipped))  # kept utterances before each skip
        return k + np.searchsorted(shifted, k, side="right") + 2

    def path_of(self, index: int) -> str:
        fn = self.fnames[index]
        fn = fn if isinstance(self.fnames, list) else fn.as_py()
        return os.path.join(self.root_dir, self.text_compressor.decompress(fn))

    def _report_skipped(self, min_sample_size) -> None:
        """Name what fairseq's ``min_sample_size`` filter left out (it only counts)."""
        if len(self._skipped) == 0:
            return
        wanted = set(self._skipped[:EXAMPLES].tolist())
        examples = []
        with open(self.manifest_path, encoding="utf-8") as f:
            next(f)
            for i, line in enumerate(f):
                if i in wanted:
                    rel, _, n = line.rstrip("\n").partition("\t")
                    examples.append(f"line {i + 2}: {os.path.join(self.root_dir, rel)} ({n} samples)")
                    if len(examples) == len(wanted):
                        break
        logger.warning(
            f"{self.manifest_path}: {len(self._skipped)} clip(s) shorter than task.min_sample_size "
            f"({min_sample_size} samples) skipped, e.g. " + "; ".join(examples)
        )

    def _count_duplicates(self) -> dict:
        """Lines listing a file listed before (vectorised over fairseq's pyarrow array of
        names: no Python object per line)."""
        if isinstance(self.fnames, list):
            from collections import Counter

            counts = Counter(self.fnames)
            duplicates = len(self.fnames) - len(counts)
            repeated = [(fn, n) for fn, n in counts.items() if n > 1][:EXAMPLES]
        else:
            import pyarrow.compute as pc

            vc = pc.value_counts(self.fnames)
            duplicates = len(self.fnames) - len(vc)
            many = pc.filter(vc, pc.greater(vc.field("counts"), 1))[:EXAMPLES]
            repeated = list(zip(many.field("values").to_pylist(), many.field("counts").to_pylist()))
        return {"count": int(duplicates), "min_sample_size": self.min_sample_size,
                "examples": [[self.text_compressor.decompress(fn), int(n)] for fn, n in repeated]}

    # -- items -------------------------------------------------------------------------
    def set_epoch(self, epoch):
        super().set_epoch(epoch)
        self.epoch = epoch

    @property
    def load_failures(self) -> int:
        """Distinct utterances of this manifest that failed to load in this run (this process
        and its data-loader workers)."""
        return int(self._failed.sum())

    def _fail(self, index: int, reason: str) -> dict:
        skipped = {"id": index, "source": None, "lang": self.lang_id}
        if self._failed[index]:  # failed before (a resampled language draws it again): skip quietly
            logger.debug(f"{self.manifest_path}: utterance {index} failed to load before; skipped again")
            return skipped
        self._failed[index] = 1
        count = self.load_failures
        where = f"{self.manifest_path}:{int(self.manifest_lines([index])[0])}: {self.path_of(index)}"
        if count > self.max_load_failures:
            raise InputError(
                f"{count} utterances failed to load, more than task.max_load_failures="
                f"{self.max_load_failures}; the last: {where}: {reason}. The corpus changed after the "
                "start-up check (files deleted, truncated or rewritten): fix the files or rebuild the "
                "manifest (xlsr-manifest), or raise task.max_load_failures"
            )
        logger.warning(f"{where}: {reason}; utterance skipped, now and whenever it is drawn again "
                       f"(load failure {count} of at most {self.max_load_failures} in this manifest, "
                       "task.max_load_failures)")
        return skipped

    def __getitem__(self, index):
        path = self.path_of(index)
        exists = os.path.isfile(path) or os.path.isfile(path.rsplit(":", 2)[0])  # or a zip's "archive:offset:size"
        if not exists:  # fairseq would retry a missing file for 3 s first
            if not os.path.isdir(self.root_dir):  # one line is wrong, not every file missing
                raise InputError(
                    f"{self.manifest_path}:1: the audio root {self.root_dir!r} is not a folder (line 1 "
                    "of a manifest is the folder its relative paths are below). Fix line 1, put the "
                    "audio back there, or rebuild the manifest with xlsr-manifest"
                )
            return self._fail(index, "file not found")
        try:
            item = super().__getitem__(index)
        except Exception as e:  # unreadable, wrong sample rate, ...
            return self._fail(index, f"cannot load ({str(e).splitlines()[0] if str(e) else type(e).__name__})")
        source = item["source"]
        if not bool(torch.isfinite(source).all()):
            bad = int((~torch.isfinite(source)).sum())
            return self._fail(index, f"{bad} NaN/Inf sample(s); re-encode or remove the file")
        if source.numel() < self.min_loaded_samples:
            return self._fail(index, f"{source.numel()} samples (the manifest says {int(self.sizes[index])}): "
                                     "truncated after the manifest was written")
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
