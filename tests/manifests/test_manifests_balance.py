"""xlsr-manifest balance (the alpha table, weights, a combined manifest) and stats."""

import subprocess
from pathlib import Path

import pytest

from manifests import formats, layout
from manifests.cli import main
from corpora import CLI, SR, make_commonvoice, run_cli


def make_manifests(out: Path):
    """Three languages at different roots: es 6 h-ish, fr small, ky tiny (in samples)."""
    sizes = {"es": [SR * 10] * 30, "fr": [SR * 5] * 6, "ky": [SR * 2] * 3}
    for lang, ns in sizes.items():
        root = out.parent / "audio_roots" / lang / "clips"
        formats.write_manifest(layout.manifest_path(out, "train", lang), formats.Manifest(
            str(root), [(f"{lang}_{i}.flac", n) for i, n in enumerate(ns)]))
        formats.write_lines(layout.label_path(out, "train", lang, "wrd"),
                            [f"{lang} utt {i}" for i in range(len(ns))])
    return sizes


def test_balance_table_weights_and_combined_manifest(tmp_path, capsys):
    from xlsr_core.sampling import sampling_probabilities

    out = tmp_path / "data"
    sizes = make_manifests(out)
    run_cli("balance", out, "--alpha", "0.5", "--seed", "7", "--output-split", "train-bal")
    text = capsys.readouterr().out
    hours = {l: sum(ns) / SR / 3600 for l, ns in sizes.items()}
    total = sum(hours.values())
    expect = {l: (h / total) ** 0.5 for l, h in hours.items()}
    z = sum(expect.values())
    probs = sampling_probabilities(hours, 0.5)
    for lang in sizes:
        assert probs[lang] == pytest.approx(expect[lang] / z, rel=1e-12)
        assert f"{expect[lang] / z:>8.2%}" in text
    weights = text.split("task.multi_corpus_sampling_weights=")[1].split()[0].split(",")
    assert sum(float(w) for w in weights) == 1.0  # exactly, as MultiCorpusDataset asserts
    assert "task.languages=es,fr,ky task.sampling_alpha=0.5" in text

    man = formats.read_manifest(layout.manifest_path(out, "train-bal"))
    assert man.root == str(tmp_path / "audio_roots")  # common root of all languages
    got = {l: sum(n for r, n in man.entries if r.startswith(f"{l}/")) for l in sizes}
    total_samples = sum(sum(ns) for ns in sizes.values())
    for lang, ns in sizes.items():  # audio share = p_l within half a clip
        assert abs(got[lang] - probs[lang] * total_samples) <= ns[0] / 2
    assert got["ky"] > sum(sizes["ky"]) and got["es"] < sum(sizes["es"])  # up / down sampled
    assert all((Path(man.root) / r).parent.name == "clips" for r, _ in man.entries)
    wrd = formats.read_lines(layout.label_path(out, "train-bal", None, "wrd"))
    assert len(wrd) == len(man)
    assert all(w.split()[0] == r.split("/")[0] for w, (r, _) in zip(wrd, man.entries))
    first = layout.manifest_path(out, "train-bal").read_bytes()
    run_cli("balance", out, "--alpha", "0.5", "--seed", "7", "--output-split", "train-bal")
    assert layout.manifest_path(out, "train-bal").read_bytes() == first  # deterministic
    run_cli("balance", out, "--alpha", "0.5", "--seed", "8", "--output-split", "train-bal")
    assert layout.manifest_path(out, "train-bal").read_bytes() != first


def test_balance_alpha_one_is_natural(tmp_path, capsys):
    out = tmp_path / "data"
    make_manifests(out)
    run_cli("balance", out, "--alpha", "1", "--output-split", "train-nat")
    man = formats.read_manifest(layout.manifest_path(out, "train-nat"))
    assert sorted(r for r, _ in man.entries) == sorted(
        f"{l}/clips/{l}_{i}.flac" for l, k in (("es", 30), ("fr", 6), ("ky", 3)) for i in range(k))
    assert main(["balance", str(out), "--alpha", "1.5"]) == 2
    assert "alpha must be in [0, 1]" in capsys.readouterr().err


def test_stats_hours_utterances_speakers(tmp_path, capsys):
    make_commonvoice(tmp_path / "cv")
    out = tmp_path / "out"
    run_cli("commonvoice", tmp_path / "cv", out, "--splits", "train", "--num-jobs", "1")
    capsys.readouterr()
    proc = subprocess.run([CLI, "stats", out], capture_output=True, text=True, check=True)
    rows = {tuple(l.split()[:2]): l.split()[2:] for l in proc.stdout.splitlines()[1:]}
    assert rows[("es", "train")] == [f"{5.25 / 3600:.3f}", "4", "2"]
    assert rows[("fr", "train")] == [f"{1.25 / 3600:.3f}", "1", "1"]
