"""Language-balanced sampling in training: what an epoch actually draws, ranks, complete batches;
the table `xlsr-manifest balance` prints is the one training logs."""

from collections import Counter

import numpy as np
import pytest
from omegaconf import OmegaConf, open_dict

import xlsr_plugin  # noqa: F401  (registers the task)
from fairseq import tasks
from fairseq.data import FileAudioDataset
from manifests import formats, layout
from xlsr_core.sampling import SamplingTable, kept_utterances, language_hours, sampling_probabilities
from conftest import pretrain_cli, run_cli, write_language
from xlsr_plugin.tasks.xlsr_pretraining import XlsrPretrainingConfig


def _task(data, alpha, seed=1, language_batches="one"):
    cfg = OmegaConf.structured(XlsrPretrainingConfig(data=str(data), sampling_alpha=alpha,
                                                     language_batches=language_batches))
    with open_dict(cfg):
        cfg._name, cfg.seed, cfg.tpu, cfg.train_subset = "xlsr_pretraining", seed, False, "train"
    return tasks.setup_task(cfg)


@pytest.fixture
def skewed_data(tmp_path):
    """aa: 60 x 1.0 s, bb: 20 x 0.5 s (shorter clips), cc: 5 x 2.0 s."""
    data = tmp_path / "data"
    write_language(data, "train", "aa", [1.0] * 60)
    write_language(data, "train", "bb", [0.5] * 20)
    write_language(data, "train", "cc", [2.0] * 5)
    return data


def _epoch_audio_shares(task, epoch):
    ds = task.dataset("train")
    ds.set_epoch(epoch)
    drawn = ds.ordered_indices()
    langs, local = ds.locate(drawn)
    audio = Counter()
    for k, i in zip(langs.tolist(), local.tolist()):  # through each language's own sizes
        audio[ds.languages[k]] += ds.datasets[ds.languages[k]].sizes[i]
    total = sum(audio.values())
    return {lang: audio[lang] / total for lang in ds.datasets}


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_epoch_audio_shares_match_formula(skewed_data, alpha):
    task = _task(skewed_data, alpha)
    task.load_dataset("train")
    hours = {"aa": 60 * 1.0, "bb": 20 * 0.5, "cc": 5 * 2.0}
    expected = sampling_probabilities(hours, alpha)
    shares = np.mean([list(_epoch_audio_shares(task, e).values()) for e in range(1, 6)], axis=0)
    # Whole utterances are drawn (85 per epoch), so shares are quantised to ~1/85.
    assert shares == pytest.approx([expected[k] for k in ("aa", "bb", "cc")], abs=0.03)


def test_resampled_each_epoch_deterministically(skewed_data):
    a, b = _task(skewed_data, 0.5, seed=3), _task(skewed_data, 0.5, seed=3)
    a.load_dataset("train")
    b.load_dataset("train")
    for epoch in (1, 2):
        a.dataset("train").set_epoch(epoch)
        b.dataset("train").set_epoch(epoch)
    ds_a, ds_b = a.dataset("train"), b.dataset("train")
    ds_a.set_epoch(1)
    e1 = ds_a.ordered_indices()
    ds_a.set_epoch(2)
    e2 = ds_a.ordered_indices()
    ds_b.set_epoch(2)
    assert not np.array_equal(np.sort(e1), np.sort(e2))  # a new draw every epoch
    assert np.array_equal(e2, ds_b.ordered_indices())  # same seed + epoch, same draw


def _batches(data, num_shards, shard_id, epoch=2):
    task = _task(data, 0.5)
    task.load_dataset("train")
    itr = task.get_batch_iterator(
        task.dataset("train"), max_tokens=40000, seed=1,
        num_shards=num_shards, shard_id=shard_id, epoch=epoch,
    ).next_epoch_itr(shuffle=True)
    batches = [b for b in itr if b]
    for b in batches:
        assert len(set(b["lang"].tolist())) == 1  # one language per batch
    # a batch = its language and its utterances (ids are per-language indices)
    return [(int(b["lang"][0]), *b["id"].tolist()) for b in batches], {int(b["lang"][0]) for b in batches}


def test_ranks_share_the_draw_and_split_the_batches(skewed_data):
    """What fairseq's distributed training does: every rank builds the same epoch and
    takes its own shard of its batches."""
    rank0, langs0 = _batches(skewed_data, 2, 0)
    rank1, langs1 = _batches(skewed_data, 2, 1)
    whole, langs = _batches(skewed_data, 1, 0)
    assert rank0 and rank1
    # together the ranks cover exactly the one shared draw, each batch once
    assert Counter(rank0) + Counter(rank1) == Counter(whole)
    assert abs(len(rank0) - len(rank1)) <= 1
    assert langs == {0, 1, 2}


def test_per_language_manifests_win_over_a_plain_one(skewed_data):
    """A combined train.tsv beside train_<lang>.tsv (e.g. from `xlsr-manifest balance`)
    must not silently switch language sampling off."""
    (skewed_data / "train.tsv").write_text((skewed_data / "train_aa.tsv").read_text())
    task = _task(skewed_data, 0.5)
    task.load_dataset("train")
    assert set(task.dataset("train").datasets) == {"aa", "bb", "cc"}


def test_missing_split_names_the_expected_files(skewed_data):
    task = _task(skewed_data, 0.5)
    with pytest.raises(FileNotFoundError, match=r"split 'dev'.*expected dev_<lang>\.tsv"):
        task.load_dataset("dev")


def test_audio_pretraining_options_it_cannot_honour_are_refused(skewed_data):
    cfg = OmegaConf.structured(XlsrPretrainingConfig(data=str(skewed_data), subsample=0.5))
    with open_dict(cfg):
        cfg._name, cfg.seed, cfg.tpu, cfg.train_subset = "xlsr_pretraining", 1, False, "train"
    with pytest.raises(ValueError, match="task.subsample: not supported by xlsr_pretraining"):
        tasks.setup_task(cfg)


@pytest.mark.parametrize("language_batches", ["one", "mixed"])
@pytest.mark.parametrize("n", [1, 7, 9, 12])
def test_every_utterance_is_batched_whatever_the_batch_multiple(tmp_path, n, language_batches):
    """fairseq-fixed's batch_by_size drops what follows the last batch whose size is a
    multiple of --required-batch-size-multiple (8 by default): a split of 7 entirely."""
    data = tmp_path / "data"
    for lang, k in (("aa", n), ("bb", n + 2)):
        write_language(data, "train", lang, [0.5] * k)  # 8000 samples each
        write_language(data, "dev", lang, [0.5] * k)
    task = _task(data, 0.5, language_batches=language_batches)
    for subset in ("dev", "dev_aa", "train"):
        task.load_dataset(subset)
        ds = task.dataset(subset)
        for max_tokens in (10**7, 20000):  # one batch per language, or two utterances a batch
            itr = task.get_batch_iterator(ds, max_tokens=max_tokens, required_batch_size_multiple=8,
                                          seed=1, epoch=1).next_epoch_itr(shuffle=False)
            got = Counter((int(lang), int(i)) for b in itr if b for lang, i in zip(b["lang"], b["id"]))
            if subset == "train":  # the epoch's draw (with repeats), as (language, index in it)
                want = Counter(zip(*(a.tolist() for a in ds.locate(ds.ordered_indices()))))
            else:  # every utterance once; a multilingual subset numbers them across languages
                want = Counter((int(ds[i]["lang"]), i) for i in range(len(ds)))
            assert got == want, (subset, max_tokens)


MIN_SAMPLES = 8000  # 0.5 s: the clips below are skipped by FileAudioDataset


def _corpus_with_short_clips(data):
    """Per language a few clips shorter than MIN_SAMPLES; bb has one of exactly
    MIN_SAMPLES (kept: fairseq skips only *fewer* samples) and one a sample short."""
    for lang, durations in {
        "aa": [1.5] * 6 + [0.2] * 5,
        "bb": [1.0] * 4 + [0.5, 0.49995],  # 8000 and 7999 samples
        "cc": [1.2] * 3 + [0.1] * 2,
    }.items():
        write_language(data, "train", lang, durations)
        write_language(data, "dev", lang, [1.0, 1.2])
    return data


def _printed_table(out: str):
    """The sampling table(s) in a program's output: the title line, header and rows."""
    lines = out.splitlines()
    tables = []
    for i, line in enumerate(lines):
        if line.startswith("language sampling, alpha="):
            end = i + 2
            while end < len(lines) and lines[end].endswith("x") and len(lines[end].split()) == 6:
                end += 1
            tables.append(lines[i:end])
    assert tables, out[-3000:]
    return tables


def test_hours_count_what_file_audio_dataset_keeps(tmp_path):
    path = write_language(tmp_path, "train", "bb", [1.0, 0.5, 0.49995, 0.2, 2.0])
    sizes = formats.read_manifest(path).sizes()
    assert sizes.tolist() == [16000, 8000, 7999, 3200, 32000]
    for min_size in (None, 0, MIN_SAMPLES, 16001):
        ds = FileAudioDataset(str(path), sample_rate=16000, min_sample_size=min_size)
        assert kept_utterances(sizes, min_size).sum() == len(ds)
        assert sizes[kept_utterances(sizes, min_size)].tolist() == ds.sizes.tolist()
        assert language_hours(sizes, 16000, min_size) == language_hours(ds.sizes, 16000)
    assert language_hours(sizes, 16000, MIN_SAMPLES) == (16000 + 8000 + 32000) / 16000 / 3600


def test_balance_prints_the_table_training_logs(tmp_path):
    """Same corpus, alpha and min_sample_size: `xlsr-manifest balance` and
    `fairseq-train --task xlsr_pretraining` print the same table, line for line."""
    data = _corpus_with_short_clips(tmp_path / "data")
    alpha, min_size = "0.3", str(MIN_SAMPLES)
    balanced = run_cli(["xlsr-manifest", "balance", data, "--alpha", alpha,
                        "--min-sample-size", min_size]).stdout
    trained = pretrain_cli(data, tmp_path / "ckpt", "--max-update", "1",
                           "--sampling-alpha", alpha, "--min-sample-size", min_size).stdout
    [table] = _printed_table(balanced)
    assert len(table) == 2 + 3  # title, header, aa bb cc
    assert all(t == table for t in _printed_table(trained))
    assert f"task.sampling_alpha={alpha} task.min_sample_size={min_size}" in balanced
    # the filter matters here: without it, balance counts clips training never loads
    unfiltered = run_cli(["xlsr-manifest", "balance", data, "--alpha", alpha]).stdout
    assert _printed_table(unfiltered)[0] != table
    assert table[3].split()[:3] == ["bb", "0.001", "5"]  # 8000 samples kept, 7999 not


def test_balance_mix_leaves_out_what_training_skips(tmp_path):
    data = _corpus_with_short_clips(tmp_path / "data")
    run_cli(["xlsr-manifest", "balance", data, "--alpha", "0.5", "--min-sample-size", MIN_SAMPLES,
             "--output-split", "train-bal"])
    mix = formats.read_manifest(layout.manifest_path(data, "train-bal"))
    assert mix.entries and min(n for _, n in mix.entries) == MIN_SAMPLES
    probs = SamplingTable.from_sizes(
        {l: formats.read_manifest(layout.manifest_path(data, "train", l)).sizes() for l in ("aa", "bb", "cc")},
        0.5, 16000, MIN_SAMPLES).probabilities
    total = sum(n for _, n in mix.entries)
    for lang in ("aa", "bb", "cc"):  # audio share = p_l within a clip
        got = sum(n for r, n in mix.entries if r.startswith(f"{lang}/"))
        assert abs(got - probs[lang] * total) <= 24000


def test_two_level_sampling_over_corpora(tmp_path):
    """task.data=cv:DIR,mls:DIR: corpora drawn with corpus_alpha, then languages inside
    each with sampling_alpha (XLS-R); both tables logged, validation over every unit."""
    from collections import OrderedDict

    from xlsr_core.sampling import TwoLevelSamplingTable

    corpora = {"cv": {"es": [0.5] * 200, "ky": [0.5] * 20}, "mls": {"es": [1.0] * 100, "pl": [1.0] * 30}}
    for corpus, langs in corpora.items():
        for lang, durations in langs.items():
            write_language(tmp_path / corpus, "train", lang, durations)
            write_language(tmp_path / corpus, "dev", lang, [1.0])
    cfg = OmegaConf.structured(XlsrPretrainingConfig(
        data=f"{tmp_path / 'cv'}:{tmp_path / 'mls'}", sampling_alpha=0.5, corpus_alpha=0.3))
    with open_dict(cfg):
        cfg._name, cfg.seed, cfg.tpu, cfg.train_subset = "xlsr_pretraining", 1, False, "train"
    task = tasks.setup_task(cfg)
    assert task.languages == ["es", "ky", "pl"]
    assert not task.has_sharded_data("train")  # corpora, not shards fairseq reloads every epoch
    task.load_dataset("train")
    ds = task.dataset("train")
    table = TwoLevelSamplingTable.from_sizes(
        {c: OrderedDict((l, [16000 * d for d in ds_]) for l, ds_ in langs.items()) for c, langs in corpora.items()},
        0.3, 0.5, 16000)
    assert set(ds.datasets) == {"cv/es", "cv/ky", "mls/es", "mls/pl"}
    # each unit's audio share of an epoch (averaged over epochs) is p_corpus * p_lang|corpus
    shares = Counter()
    for epoch in range(1, 3):
        for unit, share in _epoch_audio_shares(task, epoch).items():
            shares[unit] += share
    total = sum(shares.values())
    for unit, p in table.probabilities.items():
        assert shares[unit] / total == pytest.approx(p, abs=0.01), unit
    task.load_dataset("dev")
    assert len(task.dataset("dev")) == 4  # one dev utterance per unit, each once
    task.load_dataset("dev_es")  # a language in every corpus that has it
    assert len(task.dataset("dev_es")) == 2
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "cv").symlink_to(tmp_path / "mls")
    with pytest.raises(ValueError, match="two are called the same"):
        with open_dict(cfg):
            cfg.data = f"{tmp_path / 'cv'}:{tmp_path / 'x' / 'cv'}"
        tasks.setup_task(cfg)


def test_two_level_tables_are_logged(tmp_path):
    for corpus in ("cv", "mls"):
        write_language(tmp_path / corpus, "train", "es", [1.0] * 4)
        write_language(tmp_path / corpus, "dev", "es", [1.0])
    out = pretrain_cli(f"{tmp_path / 'cv'}:{tmp_path / 'mls'}", tmp_path / "ckpt", "--max-update", "1",
                       "--corpus-alpha", "0.3").stdout
    assert "corpus sampling, alpha=0.3" in out and "[cv] language sampling, alpha=0.5" in out
    assert "[mls] language sampling, alpha=0.5" in out


def test_repeated_draws_are_all_batched():
    """A draw repeats utterances of up-sampled languages; fairseq drops the tail after the
    last batch of 8, and a copy there must be batched although another copy was not dropped."""
    from fairseq.data import data_utils

    from xlsr_plugin.data.batching import complete_batches

    def batch_by_size(idx, **kw):
        return data_utils.batch_by_size(idx, lambda i: 100, **kw)

    drawn = np.array([0, 1, 2, 3, 4, 5, 6, 7, 7, 8, 9, 9])
    for options in (dict(max_sentences=8), dict(max_tokens=10**6)):
        batches = complete_batches(batch_by_size, drawn, required_batch_size_multiple=8, **options)
        assert Counter(np.concatenate(batches).tolist()) == Counter(drawn.tolist())
    assert complete_batches(batch_by_size, [], required_batch_size_multiple=8) == []
