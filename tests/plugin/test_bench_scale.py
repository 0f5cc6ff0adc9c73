"""benchmarks/bench_scale.py on a tiny corpus: the two systems read the same utterances,
both measure, and the report prints (the real runs take minutes; see BENCHMARKS.md)."""


import numpy as np
import pytest

from conftest import load_benchmark  # noqa: E402


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_scale")


def test_zipf_counts_sum_to_the_corpus(bench):
    counts = bench.language_counts(1_000_000, 53, 1.0)
    assert counts.sum() == 1_000_000 and len(counts) == 53
    assert (np.diff(counts) <= 0).all() and counts[-1] >= 1
    assert counts[0] / counts[9] == pytest.approx(10, rel=0.01)  # 1/rank


def test_both_systems_measure_the_same_corpus(bench, tmp_path):
    corpus = bench.write_manifests(tmp_path, 2000, 5, 1.0)
    assert corpus["utterances"] == 2000
    combined = (tmp_path / "stock" / "train.tsv").read_text().splitlines()
    per_language = [(tmp_path / "xlsr" / f"train_{bench.language_code(r)}.tsv").read_text().splitlines()
                    for r in range(1, 6)]
    assert all(lines[0] == combined[0] for lines in per_language)  # one audio root
    assert [line for lines in per_language for line in lines[1:]] == combined[1:]
    samples = np.array([int(line.split("\t")[1]) for line in combined[1:]])
    assert samples.min() >= 2 * 16000 and samples.max() <= 15 * 16000
    assert bench.write_manifests(tmp_path, 2000, 5, 1.0) == corpus  # reused, not rewritten

    rows = {}
    for system in bench.SYSTEMS:
        folder = tmp_path / ("xlsr" if system == "xlsr_pretraining" else "stock")
        # in a fresh interpreter, as the benchmark runs it: measure() forks a data-loader
        # worker, and a fork of this pytest process (threads of earlier tests) can deadlock
        rows[system] = r = bench.run_system(system, folder, profile=False)
        assert r["utterances"] == 2000
        assert 0 < r["batches_e2"] and 0 < r["utterances_e2"] <= 2000
        # a list of names is read entry by entry; a pyarrow array (pyarrow installed) needs no reads
        assert r["worker_names_touched"] == (2000 if r["fnames"] == "list" else 0)
        assert r["worker_private_mib"] > 0
    table = bench.markdown([dict(corpus=corpus, rows=rows, ratios=bench.ratios(rows))])
    assert table.count("\n") == 4 and "**xlsr/stock**" in table
