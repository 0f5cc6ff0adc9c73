"""Task ``xlsr_pretraining``: wav2vec 2.0 pre-training on many languages at once.

Extends fairseq's ``audio_pretraining`` with what XLSR adds (Conneau et al. 2020, §3):
one manifest per language (``<split>_<lang>.tsv`` in ``task.data``, named by
``manifests.layout``), language-balanced re-sampling of the training split every epoch
with ``p_l ∝ (n_l/N)^alpha`` (``xlsr_plugin.data.multilingual``, with the table of
``xlsr_core.sampling`` that ``xlsr-manifest balance`` prints too), and evaluation per
language. Every manifest line is checked before the first step
(``xlsr_plugin.data.validation``).

A subset that names a manifest directly (``valid_es``, or a plain ``valid.tsv``) is read
as it is, so ``--valid-subset valid_es,valid_ru`` and ``--gen-subset test_es`` work too.
"""


import logging
from collections import OrderedDict
from pathlib import Path
from dataclasses import dataclass, field
from typing import List, Optional

import torch
from fairseq import utils
from fairseq.data import data_utils
from fairseq.logging import metrics
from fairseq.optim.amp_optimizer import AMPOptimizer
from fairseq.data.text_compressor import TextCompressionLevel
from fairseq.dataclass import ChoiceEnum
from fairseq.tasks import register_task
from fairseq.tasks.audio_pretraining import AudioPretrainingConfig, AudioPretrainingTask
from omegaconf import II

from manifests import layout
from xlsr_core.sampling import TwoLevelSamplingTable, check_alpha, unit_name
from xlsr_plugin.data.balanced import LANGUAGE_BATCHES
from xlsr_plugin.data.multilingual import LanguageAudioDataset, combine_languages
from xlsr_plugin.data.resume import ManifestCheckedIterator
from xlsr_plugin.data.validation import (
    SizeFloor, check_manifest, check_size_floor, model_size_floor, receptive_field, record_note,
)
from xlsr_plugin.errors import InputError
from xlsr_plugin.models.xlsr import record_architecture
from xlsr_plugin.tasks.step_guards import (
    SKIPPED, CodebookMonitor, NonFiniteGuard, gradients_finite, has_loss_scaler, log_batch, zeroed,
)

logger = logging.getLogger(__name__)

UNKNOWN_LANGUAGE = -1


@dataclass
class XlsrPretrainingConfig(AudioPretrainingConfig):
    languages: Optional[str] = field(
        default=None,
        metadata={
            "help": "comma-separated language codes, in a fixed order (their index is the "
            "language id); default: every <train_subset>_<lang>.tsv found in task.data"
        },
    )
    single_language: bool = field(
        default=False,
        metadata={
            "help": "a one-language run (XLSR-Monolingual, XLSR-English, one language's "
            "fine-tuning): task.languages must name exactly that language. Without it, a "
            "folder holding several languages' manifests would train on all of them, "
            "alpha-resampled; the run is refused instead, naming the languages found"
        },
    )
    sampling_alpha: float = field(
        default=0.5,
        metadata={
            "help": "language sampling p_l ∝ (n_l/N)^alpha over hours n_l (of the clips "
            "min_sample_size keeps): 1 = natural distribution, 0 = uniform over languages; "
            "the paper uses 0.5. xlsr-manifest balance prints the same table"
        },
    )
    language_batches: ChoiceEnum(LANGUAGE_BATCHES) = field(
        default="mixed",
        metadata={
            "help": "training batches: mixed = cut from the whole size-ordered draw of all "
            "languages, as one re-sampled manifest gives (XLSR-53); one = a single language "
            "per batch (each update of one GPU with update_freq=1 then sees one language), "
            "which makes the criterion's per-language training metrics (loss_<lang>, ...) "
            "exact; with mixed they are logged for validation only. Evaluation batches hold "
            "one language either way"
        },
    )
    skip_manifest_check: bool = field(
        default=False,
        metadata={
            "help": "do not read every audio header before training (by default all bad "
            "lines are listed up front: missing/empty/unreadable files, wrong sample rate)"
        },
    )
    max_load_failures: int = field(
        default=10,
        metadata={
            "help": "utterances of one manifest that may fail to load during the run (per rank): "
            "a file deleted, truncated or rewritten after the start-up check, or holding NaN/Inf "
            "samples, is skipped with a warning naming it (and quietly when drawn again) and "
            "counted once; one more stops the run"
        },
    )
    corpus_alpha: float = field(
        default=0.5,
        metadata={
            "help": "two-level sampling (task.data=/data/cv:/data/mls, several corpus folders "
            "as XLS-R mixed corpora): p_d ∝ (n_d/N)^corpus_alpha over corpora, then "
            "sampling_alpha over the languages inside each; unused with one folder"
        },
    )
    train_subset: str = field(
        default=II("dataset.train_subset"),
        metadata={"help": "the split that is re-sampled by language every epoch"},
    )
    max_nonfinite_skips: int = field(
        default=100,
        metadata={
            "help": "a training batch whose loss (or, in fp32/bf16, gradient) is inf/NaN is "
            "skipped and counted (nonfinite_skips in the log); past this many in a run, the "
            "run stops with an error naming the batch (0: stop at the first; -1: never)"
        },
    )
    collapse_updates: int = field(
        default=1000,
        metadata={
            "help": "warn of codebook collapse once code perplexity or diversity (of the model, "
            "or of one language's batches) has stayed below collapse_perplexity / "
            "collapse_diversity for this many training batches in a row (0: never)"
        },
    )
    collapse_perplexity: float = field(
        default=2.0,
        metadata={"help": "code perplexity per codebook (1 = a single code used) below which "
                          "a batch counts towards collapse_updates"},
    )
    collapse_diversity: float = field(
        default=0.01,
        metadata={"help": "softmax perplexity over all G*V codebook entries, as a fraction of "
                          "G*V, below which a batch counts towards collapse_updates"},
    )
    batch_log: Optional[str] = field(
        default=None,
        metadata={
            "help": "debugging / reproducibility aid: append '<update>\\t<lang:index ...>' for "
            "every training batch to this file (flushed per line; '.rank<r>' added with several "
            "processes). A resumed run appends, so the file shows what each update saw"
        },
    )


def parse_corpora(data: str) -> "OrderedDict[Optional[str], str]":
    """``task.data``: one folder (``{None: folder}``), or several corpus folders in
    fairseq's own path-list syntax (``/data/cv:/data/mls``), each named by its folder."""
    folders = utils.split_paths(str(data))
    if len(folders) == 1:
        return OrderedDict([(None, folders[0])])
    names = [Path(f.rstrip("/")).name for f in folders]
    if len(set(names)) != len(names):
        raise ValueError(
            f"task.data={data!r}: corpora are named by their folders, and two are called the "
            "same; link one under another name"
        )
    return OrderedDict(zip(names, folders))


@register_task("xlsr_pretraining", dataclass=XlsrPretrainingConfig)
class XlsrPretrainingTask(AudioPretrainingTask):
    """Multilingual wav2vec 2.0 pre-training with language-balanced sampling."""

    cfg: XlsrPretrainingConfig

    def __init__(self, cfg: XlsrPretrainingConfig):
        super().__init__(cfg)
        check_alpha(cfg.sampling_alpha)
        self._refuse_unsupported(cfg)
        self.corpora = parse_corpora(cfg.data)
        self.two_level = next(iter(self.corpora)) is not None
        if self.two_level:
            check_alpha(cfg.get("corpus_alpha", 0.5))
            logger.info("corpora: " + ", ".join(f"{c} ({d})" for c, d in self.corpora.items()))
        self.languages: List[str] = self._resolve_languages()
        logger.info(f"languages ({len(self.languages)}): {', '.join(self.languages)}")
        if cfg.get("max_load_failures", 10) < 0:
            raise InputError(f"task.max_load_failures={cfg.max_load_failures}: give a count >= 0")
        # the fewest samples an utterance may have, once the model is known (training, evaluation)
        self._size_floors: Optional[dict] = None
        self._floor_recheck: list = []  # (manifest, dataset, is_train) loaded before the model
        self._train_manifests: dict = {}  # name -> sha256 of the training split's manifests
        self.nonfinite = NonFiniteGuard(cfg.get("max_nonfinite_skips", 100), self.languages)
        self.codebook_monitor = CodebookMonitor(
            cfg.get("collapse_updates", 1000), cfg.get("collapse_perplexity", 2.0),
            cfg.get("collapse_diversity", 0.01), self.languages,
        )

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        """The task of a run. A task rebuilt from a checkpoint (``from_checkpoint``: the
        pre-training task inside ``xlsr_ctc``, or a model loaded for inference) trains
        nothing, so ``single_language`` is not enforced there."""
        task = cls(cfg)
        if not kwargs.get("from_checkpoint", False):
            task.check_single_language()
        return task

    def check_single_language(self) -> None:
        """``task.single_language``: ``task.languages`` must name exactly one language."""
        if not self.cfg.get("single_language", False):
            return
        folders = ", ".join(self.corpora.values())
        if not self.cfg.languages:
            split = self._train_subset()
            found = sorted({l for f in self.corpora.values() for l in layout.discover_languages(f, split)})
            raise ValueError(
                f"task.languages is not set, and this recipe trains one language "
                f"(task.single_language=true). {folders} holds {split}_<lang>.tsv of "
                f"{len(found)} language(s): {', '.join(found) or 'none'}; without task.languages "
                f"all of them would be trained, alpha-resampled. Name the one to train, e.g. "
                f"task.languages={found[0] if found else '<lang>'} (fairseq-train: --languages)"
            )
        if len(self.languages) != 1:
            raise ValueError(
                f"task.languages={self.cfg.languages} names {len(self.languages)} languages, but "
                "this recipe trains one (task.single_language=true): name one, or use a "
                "multilingual recipe (e.g. xlsr_base, multilingual)"
            )

    @staticmethod
    def _refuse_unsupported(cfg) -> None:
        """audio_pretraining options this task's loader does not implement: refuse them
        rather than silently train without them."""
        unsupported = {
            "binarized_dataset": False,
            "multi_corpus_keys": None,
            "multi_corpus_sampling_weights": None,
            "subsample": 1.0,
        }
        set_ = [k for k, default in unsupported.items() if cfg.get(k, default) != default]
        name = cfg.get("_name") or "xlsr_pretraining"
        if set_:
            raise ValueError(
                f"task.{', task.'.join(set_)}: not supported by {name} (it samples "
                "languages itself: use task.languages and task.sampling_alpha, and "
                "xlsr-manifest balance --total-hours to subsample)"
            )
        if cfg.get("language_batches") == "mixed" and (cfg.get("num_batch_buckets") or cfg.get("tpu")):
            bf16 = " (fairseq's --bf16 / common.bf16 sets task.tpu: it means TPU training; on a GPU use " \
                "--fp16 or --amp)" if cfg.get("tpu") else ""
            raise ValueError(
                f"task.num_batch_buckets / task.tpu pad batches to per-language buckets: "
                f"use them with task.language_batches=one, not mixed ({name}){bf16}"
            )

    def has_sharded_data(self, split):
        """No: several folders in ``task.data`` are corpora sampled together, not shards
        of one corpus that fairseq would reload every epoch."""
        return False

    def _train_subset(self) -> str:
        try:
            return self.cfg.train_subset
        except Exception:  # interpolation without a dataset group (task built alone)
            return "train"

    def _resolve_languages(self) -> List[str]:
        if self.cfg.languages:
            langs = [layout.check_language(l.strip()) for l in self.cfg.languages.split(",") if l.strip()]
            if len(set(langs)) != len(langs):
                raise ValueError(f"task.languages lists a language twice: {self.cfg.languages}")
            return langs
        split = self._train_subset()
        found = sorted({l for folder in self.corpora.values() for l in layout.discover_languages(folder, split)})
        if not found:
            logger.warning(
                f"no {split}_<lang>.tsv manifests in {self.cfg.data}; set task.languages "
                "to name the languages"
            )
        return found

    def audio_dataset_kwargs(self, task_cfg) -> dict:
        """``FileAudioDataset`` arguments, as fairseq's ``audio_pretraining`` sets them."""
        kwargs = dict(
            sample_rate=task_cfg.get("sample_rate", self.cfg.sample_rate),
            max_sample_size=self.cfg.max_sample_size,
            min_sample_size=self.cfg.min_sample_size,
            pad=task_cfg.labels is not None or task_cfg.enable_padding,
            normalize=task_cfg.normalize,
            num_buckets=self.cfg.num_batch_buckets or int(self.cfg.tpu),
            text_compression_level=getattr(
                TextCompressionLevel, str(self.cfg.text_compression_level)
            ),
        )
        if getattr(task_cfg, "precompute_mask_config", None) is not None:
            kwargs.update(compute_mask=True, **task_cfg.precompute_mask_config)
        return kwargs

    def build_language_dataset(self, split: str, lang: Optional[str], task_cfg, corpus: Optional[str] = None):
        """One language's dataset for ``split`` (of ``corpus``, with several); fine-tuning
        adds its labels here."""
        lang_id = self.languages.index(lang) if lang in self.languages else UNKNOWN_LANGUAGE
        path = layout.manifest_path(self.corpora[corpus], split, lang)
        checked = check_manifest(
            path, lang or split, self.cfg.sample_rate, check_audio=not self.cfg.skip_manifest_check
        )
        is_train = split == self._train_subset()
        if is_train:
            self._train_manifests[path.name if corpus is None else f"{corpus}/{path.name}"] = checked.sha256
        known = checked.notes.get("duplicates")  # counted at an earlier start, with these settings
        if not (isinstance(known, dict) and known.get("min_sample_size") == self.cfg.min_sample_size):
            known = None
        dataset = LanguageAudioDataset(
            str(path), lang_id, seed=self.cfg.seed, max_load_failures=self.cfg.get("max_load_failures", 10),
            duplicates=known, count_duplicates=checked.checked,
            **self.audio_dataset_kwargs(task_cfg),
        )
        if checked.checked and known is None and dataset.duplicates is not None:
            record_note(checked, self.cfg.sample_rate, "duplicates", dataset.duplicates)
        self._check_sizes(path, dataset, is_train)
        if self._size_floors is None:  # checked again once the model says what it needs
            self._floor_recheck.append((path, dataset, is_train))
        return dataset

    def get_batch_iterator(self, dataset, *args, **kwargs):
        """fairseq's iterator; for the training split, one whose saved state (in every
        checkpoint) records the sha256 of the manifests the epoch was drawn from, so that
        resuming mid-epoch on changed manifests is refused (``ManifestCheckedIterator``)."""
        itr = super().get_batch_iterator(dataset, *args, **kwargs)
        if self._train_manifests and dataset is self.datasets.get(self._train_subset()):
            ManifestCheckedIterator.adopt(itr, dict(self._train_manifests))
        return itr

    def size_floor(self, is_train: bool) -> SizeFloor:
        """The fewest samples an utterance of a training (or evaluation) split may have:
        what the model needs once it is built, one frame of the standard feature encoder
        before."""
        if self._size_floors is not None:
            return self._size_floors[is_train]
        return SizeFloor(receptive_field(), "one frame of the standard wav2vec 2.0 feature encoder")

    def _check_sizes(self, path, dataset, is_train: bool) -> None:
        floor = self.size_floor(is_train)
        dataset.min_loaded_samples = floor.samples  # a clip that loads shorter was truncated since
        check_size_floor(path, dataset, floor)

    def build_model(self, model_cfg, from_checkpoint=False):
        model = super().build_model(model_cfg, from_checkpoint)
        record_architecture(model, model_cfg)
        self.learn_size_floor(model)
        return model

    def learn_size_floor(self, model) -> None:
        """Ask ``model`` what it needs of an utterance (frames for its feature encoder and
        its masking) and check the splits loaded before it."""
        self._size_floors = {t: model_size_floor(model, training=t) for t in (True, False)}
        for path, dataset, is_train in self._floor_recheck:
            self._check_sizes(path, dataset, is_train)
        self._floor_recheck = []
    # -- the training step -------------------------------------------------------------
    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False, **kwargs):
        """fairseq's forward and backward (``FairseqTask.train_step``), guarded
        (``xlsr_plugin.tasks.step_guards``): a batch with an inf/NaN loss gets no backward
        pass and zero logging numbers; with fp32/bf16, an inf/NaN gradient after the
        backward pass drops the update's gradients. Either is counted, and stops the run
        past ``task.max_nonfinite_skips``. Code perplexity is watched for collapse.

        The step runs under numpy's RNG seeded by ``task.seed`` and the update number, as
        fairseq seeds torch's before every step: fairseq's LayerDrop draws from numpy's
        global RNG, whose state otherwise depends on all the process did before, so a run
        resumed from a checkpoint dropped other layers than an uninterrupted one. (Every
        rank, and every batch of one update, draws the same layers, as ranks did before.)"""
        log_batch(self.cfg.get("batch_log"), sample, update_num, self.languages)
        with data_utils.numpy_seed(self.cfg.seed, update_num):
            return self._train_step(sample, model, criterion, optimizer, update_num, ignore_grad)

    def _train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad):
        model.train()
        model.set_num_updates(update_num)
        with torch.autograd.profiler.record_function("forward"):
            with torch.autocast("cuda", enabled=isinstance(optimizer, AMPOptimizer)):
                loss, sample_size, log = criterion(model, sample)
        log[SKIPPED] = 0
        if ignore_grad:
            loss *= 0
        elif not bool(torch.isfinite(loss).all()):
            self.nonfinite.skip(f"loss is {float(loss.detach().float().sum())}", sample, update_num)
            return self._skipped(model, optimizer, loss, log)
        with torch.autograd.profiler.record_function("backward"):
            optimizer.backward(loss)
        if not ignore_grad and not has_loss_scaler(optimizer) and not gradients_finite(model):
            self.nonfinite.skip("gradient is inf/NaN", sample, update_num)
            optimizer.zero_grad()
            return loss.detach() * 0, 0, dict(zeroed(log), **{SKIPPED: 1})
        if not ignore_grad:
            self.codebook_monitor.observe(model, log, update_num)
        return loss, sample_size, log

    @staticmethod
    def _skipped(model, optimizer, loss, log):
        """No gradient from this batch. With several processes every rank still runs a
        backward pass (c10d DDP reduces gradients during it; with ``legacy_ddp``, the
        recipes' backend, fairseq all-reduces them after it and a skipping rank adds zeros
        and a sample size of 0), and AMP's grad scaler needs gradients to step: there a
        zero loss over the parameters gives zero gradients (the optimizer's moments then
        still decay for that update). Each rank decides on its own batch; a rank stopping
        at ``task.max_nonfinite_skips`` leaves the others waiting for their collective
        until its timeout. Skipping has been run in one process only, not under c10d with
        ``find_unused_parameters`` (LayerDrop), whose hooks may object to the zero loss."""
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized() \
            and torch.distributed.get_world_size() > 1
        if distributed or isinstance(optimizer, AMPOptimizer):
            optimizer.backward(sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0)
        return torch.zeros_like(loss.detach()), 0, dict(zeroed(log), **{SKIPPED: 1})

    def reduce_metrics(self, logging_outputs, criterion):
        """The criterion's metrics, plus ``nonfinite_skips``: batches skipped in this
        logging interval (training only)."""
        has_skips = any(SKIPPED in log for log in logging_outputs)
        skipped = sum(int(log.get(SKIPPED, 0)) for log in logging_outputs)
        logging_outputs = [{k: v for k, v in log.items() if k != SKIPPED} for log in logging_outputs]
        super().reduce_metrics(logging_outputs, criterion)
        if has_skips:
            metrics.log_scalar_sum("nonfinite_skips", skipped, priority=900)

    def state_dict(self):
        """Stored in checkpoints, as a record: this process's count of skipped batches.
        fairseq's trainer does not call ``load_state_dict`` on resume (only its inference
        loader does), so a resumed run counts towards ``task.max_nonfinite_skips`` from 0."""
        return dict(super().state_dict(), nonfinite_skips=self.nonfinite.skips)

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict or {})
        self.nonfinite.skips = int(state_dict.pop("nonfinite_skips", 0))
        super().load_state_dict(state_dict)

    def valid_step(self, sample, model, criterion):
        """Validation draws masks (numpy) and distractors (torch) at random. Seeded per batch
        from ``common.seed`` and the batch's first utterance, a batch is scored the same on
        any rank, in any order and in every run (so per-language numbers of 2 ranks equal
        those of one process); the training RNG streams are restored afterwards."""
        if not sample or "id" not in sample or len(sample["id"]) == 0:
            return super().valid_step(sample, model, criterion)
        lang = sample.get("lang")
        key = (int(sample["id"][0]), int(lang[0]) if lang is not None and len(lang) else UNKNOWN_LANGUAGE)
        seed = int(hash((self.cfg.seed, *key)) % 1_000_000)
        with data_utils.numpy_seed(seed), utils.set_torch_seed(seed):
            return super().valid_step(sample, model, criterion)

    def load_dataset(self, split: str, task_cfg=None, **kwargs):
        task_cfg = task_cfg or self.cfg
        base, lang = layout.split_subset(split)
        layout.check_split(base)
        if self.two_level:
            self.datasets[split] = self._load_corpora(split, task_cfg)
            return
        if lang is not None and layout.manifest_path(self.cfg.data, base, lang).is_file():
            self.datasets[split] = self.build_language_dataset(base, lang, task_cfg)  # test_es
            return

        langs = [l for l in self.languages if layout.manifest_path(self.cfg.data, split, l).is_file()]
        plain = layout.manifest_path(self.cfg.data, split)
        if not langs and plain.is_file():  # one manifest without a language: read as it is
            self.datasets[split] = self.build_language_dataset(split, None, task_cfg)
            return
        if langs and plain.is_file():
            logger.warning(f"{plain} is ignored: per-language manifests of '{split}' exist")

        missing = [l for l in self.languages if l not in langs]
        is_train = split == self._train_subset()
        if not langs or (missing and is_train):
            raise FileNotFoundError(
                f"split '{split}': no manifest for language(s) "
                f"{', '.join(missing) or '(none configured)'} in {self.cfg.data} "
                f"(expected {layout.subset_name(split)}_<lang>.tsv); "
                "build them with xlsr-manifest or fix task.languages"
            )
        if missing:
            logger.warning(f"split '{split}' has no data for: {', '.join(missing)} (not evaluated)")

        datasets = OrderedDict(
            (lang, self.build_language_dataset(split, lang, task_cfg)) for lang in langs
        )
        self.datasets[split] = combine_languages(
            datasets,
            sample_rate=self.cfg.sample_rate,
            alpha=self.cfg.sampling_alpha,
            seed=self.cfg.seed,
            resample=is_train,
            language_batches=self.cfg.language_batches,
        )

    def _load_corpora(self, split: str, task_cfg):
        """``split`` of every corpus: its units (corpus, language) sampled at two levels
        for training, every utterance once otherwise."""
        base, lang = layout.split_subset(split)
        if lang is None or not any(layout.manifest_path(f, base, lang).is_file() for f in self.corpora.values()):
            base, langs = split, self.languages
        else:
            langs = [lang]  # test_es: that language in every corpus that has it
        units = OrderedDict()
        for corpus, folder in self.corpora.items():
            for l in langs:
                if layout.manifest_path(folder, base, l).is_file():
                    units[(corpus, l)] = self.build_language_dataset(base, l, task_cfg, corpus)
        is_train = split == self._train_subset()
        missing = [l for l in langs if all(u[1] != l for u in units)]
        if not units or (missing and is_train):
            raise FileNotFoundError(
                f"split '{split}': no manifest for language(s) {', '.join(missing) or '(none configured)'} "
                f"in any of {', '.join(self.corpora.values())} (expected {layout.subset_name(base)}_<lang>.tsv)"
            )
        if missing:
            logger.warning(f"split '{split}' has no data for: {', '.join(missing)} (not evaluated)")
        table = None
        if is_train:
            sizes = OrderedDict()
            for (corpus, l), ds in units.items():
                sizes.setdefault(corpus, OrderedDict())[l] = ds.sizes
            table = TwoLevelSamplingTable.from_sizes(
                sizes, self.cfg.corpus_alpha, self.cfg.sampling_alpha, self.cfg.sample_rate
            )
        return combine_languages(
            OrderedDict((unit_name(c, l), ds) for (c, l), ds in units.items()),
            sample_rate=self.cfg.sample_rate, alpha=self.cfg.sampling_alpha, seed=self.cfg.seed,
            resample=is_train, language_batches=self.cfg.language_batches, table=table,
        )
