"""LanguageBalancedDataset: the epoch fairseq's MultiCorpusDataset drew, planned with arrays.

Draw and batches against fairseq's class; audio shares against p_l; seeds, ranks,
resume, both batching modes; a million-utterance corpus planned without a Python call
per utterance; file names in pyarrow."""

from collections import Counter, OrderedDict

import numpy as np
import pyarrow
import pytest
from fairseq import tasks
from fairseq.data.multi_corpus_dataset import MultiCorpusDataset
from omegaconf import OmegaConf, open_dict

import xlsr_plugin  # noqa: F401  (registers the task)
from conftest import write_language
from xlsr_core.sampling import SamplingTable, sampling_probabilities
from xlsr_plugin.data.balanced import LanguageBalancedDataset
from xlsr_plugin.data.batching import CompleteBatching
from xlsr_plugin.data.multilingual import LanguageAudioDataset
from xlsr_plugin.tasks.xlsr_pretraining import XlsrPretrainingConfig


def _manifests(data, sizes_per_lang):
    """``train_<lang>.tsv`` with the given sizes (samples) and no audio behind them."""
    data.mkdir(parents=True, exist_ok=True)
    for lang, sizes in sizes_per_lang.items():
        lines = "".join(f"{lang}/{i}.flac\t{s}\n" for i, s in enumerate(sizes))
        (data / f"train_{lang}.tsv").write_text(f"/nonexistent\n{lines}")
    return data


def _task(data, language_batches="one", alpha=0.5, seed=1, **options):
    options.setdefault("skip_manifest_check", True)  # most manifests here have no audio
    cfg = OmegaConf.structured(XlsrPretrainingConfig(
        data=str(data), sampling_alpha=alpha, language_batches=language_batches, **options))
    with open_dict(cfg):
        cfg._name, cfg.seed, cfg.tpu, cfg.train_subset = "xlsr_pretraining", seed, False, "train"
    return tasks.setup_task(cfg)


def _skewed_sizes(seed=0):
    """Four languages of unequal sizes and utterance lengths."""
    rng = np.random.default_rng(seed)
    return {lang: rng.integers(lo, hi, n) for lang, (n, lo, hi) in {
        "aa": (3000, 16000, 48000), "bb": (700, 8000, 24000), "cc": (120, 32000, 96000), "dd": (15, 16000, 40000),
    }.items()}


class FairseqMultiCorpus(CompleteBatching, MultiCorpusDataset):
    """What the training split was before: fairseq's class, every drawn utterance batched."""


def test_same_draw_and_batches_as_fairseq_multi_corpus(tmp_path):
    data = _manifests(tmp_path, _skewed_sizes())
    datasets = OrderedDict(
        (lang, LanguageAudioDataset(str(data / f"train_{lang}.tsv"), k, sample_rate=16000,
                                    max_sample_size=40000, min_sample_size=10000))
        for k, lang in enumerate(("aa", "bb", "cc", "dd")))
    table = SamplingTable.from_sizes({l: d.sizes for l, d in datasets.items()}, 0.3, 16000)
    weights = [table.utterance_weights[lang] for lang in datasets]
    ref = FairseqMultiCorpus(datasets, weights, seed=3, sort_indices=True, batch_sample=True)
    new = LanguageBalancedDataset(datasets, weights, seed=3, language_batches="one")
    for epoch in (1, 2, 7):
        ref.set_epoch(epoch)
        new.set_epoch(epoch)
        drawn = new.ordered_indices()
        assert np.array_equal(drawn, ref.ordered_indices())
        for limit in (30000, 10**9):
            kept, ignored = new.filter_indices_by_size(drawn, (limit, limit))
            ref_kept, ref_ignored = ref.filter_indices_by_size(drawn, (limit, limit))
            assert np.array_equal(kept, ref_kept) and ignored == ref_ignored
        for options in (dict(max_tokens=100000, required_batch_size_multiple=8),
                        dict(max_tokens=300000, max_sentences=5)):
            got, want = new.batch_by_size(kept, **options), ref.batch_by_size(kept, **options)
            assert [b.tolist() for b in got] == [b.tolist() for b in want]


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_audio_shares_are_p_l(tmp_path, alpha):
    sizes = _skewed_sizes()
    task = _task(_manifests(tmp_path, sizes), alpha=alpha)
    task.load_dataset("train")
    ds = task.dataset("train")
    shares = []
    for epoch in (1, 2, 3):
        ds.set_epoch(epoch)
        drawn = ds.ordered_indices()
        audio = np.bincount(ds.language_of(drawn), weights=ds.sizes[drawn], minlength=4)
        shares.append(audio / audio.sum())
    p = sampling_probabilities({lang: s.sum() for lang, s in sizes.items()}, alpha)
    assert np.mean(shares, axis=0) == pytest.approx(list(p.values()), abs=0.01)


def test_draw_depends_on_seed_and_epoch_only(tmp_path):
    data = _manifests(tmp_path, _skewed_sizes())

    def draw(seed, epoch):
        task = _task(data, seed=seed)
        task.load_dataset("train")
        ds = task.dataset("train")
        ds.set_epoch(epoch)
        return ds.ordered_indices()

    assert np.array_equal(draw(1, 2), draw(1, 2))
    assert not np.array_equal(np.sort(draw(1, 1)), np.sort(draw(1, 2)))  # a new draw each epoch
    assert not np.array_equal(np.sort(draw(1, 2)), np.sort(draw(2, 2)))


@pytest.fixture(scope="module")
def audio_data(tmp_path_factory):
    """Small real clips (0.25-0.75 s), for iterators that collate audio."""
    data = tmp_path_factory.mktemp("balanced") / "data"
    rng = np.random.default_rng(0)
    for lang, n in (("aa", 24), ("bb", 10), ("cc", 4)):
        write_language(data, "train", lang, rng.uniform(0.25, 0.75, n).round(3).tolist())
    return data


def _epoch_batches(data, language_batches, epoch=1, num_shards=1, shard_id=0, state=None, skip=0):
    """A rank's batches of an epoch as (language ids, utterance ids, crop checksum), from
    a fresh task, as fairseq-train builds them (after ``skip`` batches; or resumed from
    an iterator ``state``)."""
    task = _task(data, language_batches)
    task.load_dataset("train")
    epoch_itr = task.get_batch_iterator(
        task.dataset("train"), max_tokens=24000, max_positions=(24000, 24000), seed=1,
        num_shards=num_shards, shard_id=shard_id, epoch=epoch if state is None else state["epoch"],
        required_batch_size_multiple=1,
    )
    if state is not None:
        epoch_itr.load_state_dict(state)
    itr = epoch_itr.next_epoch_itr(shuffle=True)
    batches = []
    for b in itr:
        if b:  # not a shard's filler (when batches do not divide evenly)
            batches.append((tuple(b["lang"].tolist()), tuple(b["id"].tolist()),
                            round(float(b["net_input"]["source"].abs().sum()), 3)))
        if len(batches) == skip:
            break
    return batches, epoch_itr.state_dict()


@pytest.mark.parametrize("language_batches", ["one", "mixed"])
def test_batching_modes_cover_the_same_draw(audio_data, language_batches):
    batches, _ = _epoch_batches(audio_data, language_batches)
    langs_per_batch = [len(set(langs)) for langs, _, _ in batches]
    if language_batches == "one":
        assert max(langs_per_batch) == 1
    else:
        assert max(langs_per_batch) > 1
    task = _task(audio_data, language_batches)
    task.load_dataset("train")
    ds = task.dataset("train")
    ds.set_epoch(1)
    langs, local = ds.locate(ds.ordered_indices())
    drawn = Counter(zip(langs.tolist(), local.tolist()))  # no utterance dropped
    assert Counter(u for langs, ids, _ in batches for u in zip(langs, ids)) == drawn


@pytest.mark.parametrize("language_batches", ["one", "mixed"])
def test_ranks_take_disjoint_shards_of_one_draw(audio_data, language_batches):
    whole, _ = _epoch_batches(audio_data, language_batches, epoch=2)
    shards = [_epoch_batches(audio_data, language_batches, epoch=2, num_shards=3, shard_id=r)[0]
              for r in range(3)]
    assert all(shards)
    assert sum(map(Counter, shards), Counter()) == Counter(whole)  # each batch on one rank


@pytest.mark.parametrize("language_batches", ["one", "mixed"])
def test_resume_continues_the_same_batches(audio_data, language_batches):
    """fairseq stores the epoch and the position in it; a new process that loads them
    must get the very batches (and crops) the uninterrupted run would have."""
    for epoch in (1, 2):
        whole, _ = _epoch_batches(audio_data, language_batches, epoch=epoch)
        k = len(whole) // 2
        _, state = _epoch_batches(audio_data, language_batches, epoch=epoch, skip=k)
        assert state["epoch"] == epoch and state["iterations_in_epoch"] == k
        rest, _ = _epoch_batches(audio_data, language_batches, state=state)
        assert rest == whole[k:]


def test_mixed_batches_refuse_per_language_buckets(tmp_path):
    data = _manifests(tmp_path, _skewed_sizes())
    with pytest.raises(ValueError, match="language_batches=one"):
        _task(data, "mixed", num_batch_buckets=4)
    _task(data, "one", num_batch_buckets=4)


MILLION, LANGUAGES = 1_000_000, 50


@pytest.fixture(scope="module")
def million(tmp_path_factory):
    """1,000,000 manifest lines over 50 languages (Zipf-shaped sizes, 2-15 s), no audio."""
    data = tmp_path_factory.mktemp("million")
    rng = np.random.default_rng(0)
    weights = 1.0 / np.arange(1, LANGUAGES + 1)
    counts = (weights / weights.sum() * MILLION).astype(np.int64)
    counts[0] += MILLION - counts.sum()
    for k, n in enumerate(counts):
        sizes = rng.integers(32000, 240001, n).astype(str)
        names = np.char.add(np.char.add(f"{k}/", np.arange(n).astype(str)), ".flac\t")
        (data / f"train_l{k:02d}.tsv").write_text("/nonexistent\n" + "\n".join(np.char.add(names, sizes)) + "\n")
    return data


@pytest.mark.parametrize("language_batches", ["one", "mixed"])
def test_a_million_utterances_are_planned_without_python_per_utterance(million, language_batches, monkeypatch):
    """The epoch plan fairseq-train builds on every rank (8 shards, the recipes'
    max_tokens); every per-utterance Python path of the dataset is made to fail."""
    task = _task(million, language_batches, max_sample_size=250000, min_sample_size=32000)
    task.load_dataset("train")
    ds = task.dataset("train")
    assert len(ds) == MILLION and len(ds.datasets) == LANGUAGES
    assert all(isinstance(d.fnames, pyarrow.Array) for d in ds.datasets.values())  # one buffer each

    def per_utterance(*args):
        raise AssertionError("a Python call per utterance")

    for name in ("num_tokens", "size", "_part"):
        monkeypatch.setattr(ds, name, per_utterance)
    for part in ds.datasets.values():
        for name in ("num_tokens", "size"):
            monkeypatch.setattr(part, name, per_utterance)
    for epoch in (1, 2):
        itr = task.get_batch_iterator(
            ds, max_tokens=1_400_000, max_positions=(1_400_000, 1_400_000), ignore_invalid_inputs=True,
            required_batch_size_multiple=8, seed=1, num_shards=8, shard_id=3, epoch=epoch,
            disable_iterator_cache=True,
        ).next_epoch_itr(shuffle=True)
        assert len(itr) > MILLION // 8 // 12  # ~8.5 s utterances, ~10 a batch

