"""Language-balanced sampling of XLSR (xlsr_core.sampling): the formula, exact weights, the table."""

import subprocess
import sys

import numpy as np
import pytest

from xlsr_core.sampling import SamplingTable, exact_distribution, sampling_probabilities


HOURS = {"aa": 40.0, "bb": 8.0, "cc": 1.0}


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_probabilities_follow_formula(alpha):
    p = sampling_probabilities(HOURS, alpha)
    n = sum(HOURS.values())
    z = sum((h / n) ** alpha for h in HOURS.values())
    for lang, h in HOURS.items():
        assert p[lang] == pytest.approx((h / n) ** alpha / z, rel=1e-12)
    assert sum(p.values()) == 1.0  # exactly: fairseq's MultiCorpusDataset asserts it


def test_alpha_extremes_and_ordering():
    assert sampling_probabilities(HOURS, 0.0) == pytest.approx({k: 1 / 3 for k in HOURS})
    natural = sampling_probabilities(HOURS, 1.0)
    half = sampling_probabilities(HOURS, 0.5)
    assert half["cc"] > natural["cc"] and half["aa"] < natural["aa"]  # low-resource up-sampled


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
def test_alpha_out_of_range_is_refused(alpha):
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        sampling_probabilities(HOURS, alpha)


def test_exact_distribution_sums_to_one_for_awkward_weights():
    rng = np.random.default_rng(0)
    for _ in range(200):
        w = {str(i): float(x) for i, x in enumerate(rng.random(rng.integers(2, 60)))}
        assert sum(exact_distribution(w).values()) == 1.0


def test_table_from_sizes_is_the_table_from_hours():
    sizes = {"aa": [16000] * 6 + [100] * 3, "bb": [8000] * 4, "cc": [32000]}
    table = SamplingTable.from_sizes(sizes, 0.5, 16000, min_sample_size=1000)
    hours = {"aa": 6 / 3600, "bb": 2 / 3600, "cc": 2 / 3600}
    assert table == SamplingTable.from_hours(hours, {"aa": 6, "bb": 4, "cc": 1}, 0.5)
    assert table.probabilities == sampling_probabilities(hours, 0.5)
    assert sum(table.utterance_weights.values()) == 1.0  # exactly, as MultiCorpusDataset asserts
    # audio shares of the weights are p_l: weight_l * mean utterance length_l ∝ p_l
    audio = {l: table.utterance_weights[l] * hours[l] / n for l, n in (("aa", 6), ("bb", 4), ("cc", 1))}
    z = sum(audio.values())
    assert {l: a / z for l, a in audio.items()} == pytest.approx(table.probabilities, rel=1e-12)
    with pytest.raises(ValueError, match=r"cc have no utterances of at least 40000 samples"):
        SamplingTable.from_sizes(sizes, 0.5, 16000, min_sample_size=40000)


def test_core_and_builders_import_no_fairseq_or_torch():
    code = ("import sys, pkgutil, importlib, xlsr_core, manifests.balance, manifests.cli\n"
            "for m in pkgutil.iter_modules(xlsr_core.__path__): importlib.import_module('xlsr_core.' + m.name)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'fairseq', 'torch', 'xlsr_plugin'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
