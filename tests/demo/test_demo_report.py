"""The paper-shaped PER report: parsing fairseq-generate output, the table and the chart."""

import json
import math
import re

import matplotlib.image as mpimg
import numpy as np
import pytest

from xlsr_demo import report

LOG = """\
2024-05-01 10:00:00 | INFO | fairseq_cli.generate | NOTE: hypothesis and token scores are output in base 2
2024-05-01 10:00:01 | INFO | fairseq_cli.generate | Generate test_es with beam=1: PER: 12.34
\x1b[32m2024-05-01 10:00:02 | INFO | fairseq_cli.generate | Generate test_ky with beam=5:  PER = 40.5, errors 81/200\x1b[0m
Generate test_tt with beam=1: WER: 9.0
Generate test_zh with beam=1: PER: 7
Generate test_es with beam=1: PER: 11.0
"""


def test_parse_generate_output_is_tolerant():
    got = report.parse_generate_output(LOG)
    # the last line per subset wins; WER lines are not PER
    assert got == {"test_es": 11.0, "test_ky": 40.5, "test_zh": 7.0}
    assert report.parse_generate_output(LOG, metric="WER") == {"test_tt": 9.0}
    assert report.parse_generate_output("no result here\n") == {}


def test_per_from_results_files(tmp_path):
    res = tmp_path / "res"
    res.mkdir()
    # generate-<subset>.txt without a Generate line: recomputed from T-/H- lines
    (res / "generate-test_ky.txt").write_text(
        "T-1\ta b c d |\nH-1\t-0.5\ta x c d |\nD-1\t-0.5\ta x c d |\n"
        "T-0\ta b\nH-0\t-0.2\ta b e\nH-0\t-0.9\tz z\n",
        encoding="utf-8",
    )
    # 1 substitution + 1 insertion over 6 reference phones ('|' ignored); 2nd H-0 ignored
    assert report.per_from_generate_file(res / "generate-test_ky.txt") == pytest.approx(100 * 2 / 6)
    (res / "generate-test_es.txt").write_text("T-0\ta\nH-0\t0\tb\nGenerate test_es with beam=1: PER: 3.5\n")
    log = tmp_path / "generate_tt.log"
    log.write_text("... | Generate test_tt with beam=1: PER: 55.0\n")
    assert report.collect_per([res, log]) == {"es": 3.5, "ky": pytest.approx(33.333, abs=1e-3),
                                              "tt": 55.0}
    with pytest.raises(ValueError, match="no 'Generate"):
        report.collect_per([tmp_path / "res" / "generate-test_ky.txt"])
    with pytest.raises(ValueError, match="not found"):
        report.collect_per([tmp_path / "missing"])


def test_per_from_hypothesis_reference_pair(tmp_path):
    ref, hyp = tmp_path / "ref.phn", tmp_path / "hyp.phn"
    ref.write_text("a b c (utt-2)\nd e (utt-1)\n")
    hyp.write_text("d e (utt-1)\na c (utt-2)\n")  # other order, matched by id
    assert report.per_from_pair(hyp, ref) == pytest.approx(100 * 1 / 5)
    ref.write_text("a b c\nd e\n")
    hyp.write_text("a b c\nd\n")
    assert report.per_from_pair(hyp, ref) == pytest.approx(20.0)
    hyp.write_text("a b c\n")
    with pytest.raises(ValueError, match="1 lines"):
        report.per_from_pair(hyp, ref)


RESULTS = {
    "No pre-training": {"es": 60.0, "ky": 80.0, "tt": 70.0},
    "XLSR-Monolingual": {"ky": 50.0, "tt": 40.0},
    "XLSR-10": {"es": 20.0, "ky": 25.0, "tt": 30.0},
}


def test_relative_reduction():
    red = report.relative_reduction(RESULTS, "XLSR-10", "XLSR-Monolingual", ["es", "ky", "tt"])
    assert red["ky"] == pytest.approx(50.0) and red["tt"] == pytest.approx(25.0)
    assert red["avg"] == pytest.approx(100 * (45 - 27.5) / 45)  # of the mean PER over ky, tt
    assert "es" not in red


def test_write_report_table_and_chart(tmp_path):
    paths = report.write_report(RESULTS, tmp_path / "results", languages=["es", "ky", "tt"],
                                low_resource=["ky", "tt"],
                                pretrain_minutes={"es": 3, "ky": 0.5, "tt": 0.5}, notes="seed 1")
    text = paths.table.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert "| Model | es | ky | tt | Avg |" in lines
    assert "| *pre-training minutes* | 3 | 0.5 | 0.5 | |" in lines
    assert "| XLSR-10 | 20.0 | 25.0 | 30.0 | 25.0 |" in lines
    assert "| XLSR-Monolingual | – | 50.0 | 40.0 | – |" in lines
    assert "| No pre-training | 60.0 | 80.0 | 70.0 | 70.0 |" in lines
    reduction = next(line for line in lines if line.startswith("Relative PER reduction"))
    assert "ky +50.0%" in reduction and "tt +25.0%" in reduction and "+38.9%" in reduction
    assert "seed 1" in text and "per.png" in text
    img = mpimg.imread(paths.chart)
    assert img.shape[0] > 200 and img.shape[1] > 400
    assert np.unique(img.reshape(-1, img.shape[-1]), axis=0).shape[0] > 10  # bars drawn
    assert not list(paths.table.parent.glob(".*tmp"))  # atomic writes left nothing behind


def test_report_cli_and_bad_values(tmp_path, capsys):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "x10.log").write_text("Generate test_es with beam=1: PER: 10.0\n"
                                  "Generate test_ky with beam=1: PER: 30.0\n")
    (logs / "mono.log").write_text("Generate test_ky with beam=1: PER: 45.0\n")
    out = tmp_path / "results"
    assert report.main(["--model", f"XLSR-10={logs / 'x10.log'}",
                        "--model", f"XLSR-Monolingual={logs / 'mono.log'}",
                        "--out", str(out), "--low-resource", "ky"]) == 0
    assert "| XLSR-10 | 10.0 | 30.0 | 20.0 |" in (out / "table.md").read_text()
    assert "ky +33.3%" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text(json.dumps({"m": {"es": -1}}))
    assert report.main(["--json", str(tmp_path / "bad.json"), "--out", str(out)]) == 1
    assert "PER must be numbers" in capsys.readouterr().err
    with pytest.raises(ValueError):
        report.write_report({"m": {"es": math.nan}}, tmp_path / "r2")


def test_default_column_order_follows_the_paper():
    table = report.format_table({"m": {"en": 1.0, "zh": 2.0, "ky": 3.0, "es": 4.0}})
    assert table.splitlines()[0] == "| Model | es | ky | zh | en | Avg |"


def test_report_shows_the_codebook_analysis(tmp_path, capsys):
    """table.md carries xlsr-analyze codes' findings and links its pictures (the files exist)."""
    import re

    from xlsr_tools import codebook

    rng = np.random.default_rng(0)
    codes = [rng.integers(0, v, size=(50, 2)) for v in (8, 8, 5)]  # the third uses fewer entries
    counts = np.stack([codebook.count_codes(c, 8) for c in codes])
    usage = codebook.CodeUsage(["es", "fr", "ky"], counts, [5, 5, 5], [50, 50, 50])
    result = codebook.analyse(usage)
    result.update(split="train", max_utterances=5)
    codebook.write_outputs(tmp_path / "results" / "codebook", usage, result)
    out = tmp_path / "results"
    assert report.main(["--json", str(_json(tmp_path)), "--out", str(out),
                        "--codebook", str(out / "codebook")]) == 0
    text = (out / "table.md").read_text(encoding="utf-8")
    assert "## Codebook usage of XLSR-10" in text
    assert all(line in text for line in result["findings"])
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert "codebook/similarity.png" in links and "codebook/usage.png" in links
    assert all((out / link).is_file() for link in links)
    assert report.main(["--json", str(_json(tmp_path)), "--out", str(out), "--codebook", str(tmp_path)]) == 1
    assert "no codes.json; run xlsr-analyze codes" in capsys.readouterr().err


def _json(tmp_path):
    path = tmp_path / "per.json"
    path.write_text(json.dumps(RESULTS))
    return path


def _generate_dir(root, name, lang, per):
    d = root / name
    d.mkdir()
    (d / f"generate-test_{lang}.txt").write_text(
        f"Generate test_{lang} with beam=1: PER: {per}\n", encoding="utf-8")
    return d


def test_seeds_of_one_language_are_kept_and_shown_as_mean_and_sd(tmp_path):
    dirs = [_generate_dir(tmp_path, f"xlsr_ky_s{s}", "ky", per) for s, per in ((1, 70.0), (2, 74.0), (3, 78.0))]
    dirs.append(_generate_dir(tmp_path, "xlsr_es_s1", "es", 60.0))
    runs = report.collect_runs(dirs)
    assert runs == {"ky": [70.0, 74.0, 78.0], "es": [60.0]}
    table = report.format_table({"XLSR-2": runs}, ["es", "ky"], multilingual="XLSR-2")
    row = next(line for line in table.splitlines() if line.startswith("| XLSR-2"))
    # sample sd of 70, 74, 78 is 4; Avg is the mean of the per-language means
    assert row == "| XLSR-2 | 60.0 | 74.0 ± 4.0 | 67.0 |"


def test_reduction_interval_is_welchs_and_the_verdict_follows_it():
    red, low, high = report.reduction_interval([70.0, 71.0, 72.0], [80.0, 81.0, 82.0])
    assert red == pytest.approx(100 * 10 / 81)
    # Welch: se = sqrt(1/3 + 1/3), df = 4, t(0.975, 4) = 2.776
    half = 2.7764451 * math.sqrt(2 / 3)
    assert (low, high) == (pytest.approx(100 * (10 - half) / 81, abs=1e-4), pytest.approx(100 * (10 + half) / 81, abs=1e-4))
    assert report.verdict(low, high) == "holds"
    _, low, high = report.reduction_interval([80.0, 81.0, 82.0], [70.0, 71.0, 72.0])
    assert report.verdict(low, high) == "reversed"
    _, low, high = report.reduction_interval([70.0, 80.0, 90.0], [75.0, 80.0, 85.0])
    assert report.verdict(low, high).startswith("not resolved")


def test_directions_section_needs_several_seeds_of_both(tmp_path):
    results = {"XLSR-3": {"ky": [70.0, 71.0, 72.0], "es": 50.0},
               "XLSR-3 unbalanced": {"ky": [80.0, 81.0, 82.0], "es": 55.0},
               "XLSR-Monolingual": {"ky": 75.0}}
    section = report.directions_section(results, "XLSR-3", "XLSR-Monolingual", "XLSR-3 unbalanced", ["ky"])
    lines = [line for line in section.splitlines() if line.startswith("* ")]
    # one seed of the monolingual model: no interval, no line for it
    assert len(lines) == 1 and "beats XLSR-3 unbalanced on ky" in lines[0] and lines[0].endswith("holds.")
    assert "71.0 ± 1.0 vs 81.0 ± 1.0" in lines[0]
    assert report.directions_section(results, "XLSR-3", "XLSR-Monolingual", None, ["ky"]) == ""
    paths = report.write_report(results, tmp_path, ["es", "ky"], "XLSR-3", low_resource=["ky"],
                                unbalanced="XLSR-3 unbalanced")
    assert "## The paper's directions" in paths.table.read_text(encoding="utf-8")


def _probe_tsv(path, errors):
    """A probe.tsv: ``errors[(run, lang)] = {layer: (dev, test)}``."""
    from xlsr_tools.probe_table import write_outputs

    rows = [{"name": run, "lang": lang, "layer": layer, "split": split, "frames": 100, "error": err,
             "majority_error": 90.0, "unseen": 0, "classes": 20, "checkpoint": f"/x/{run}.pt"}
            for (run, lang), layers in errors.items() for layer, pair in layers.items()
            for split, err in zip(("dev", "test"), pair)]
    write_outputs(path, rows, {})
    return path / "probe.tsv"


def test_probe_section_best_layer_by_dev_last_layer_and_directions(tmp_path, capsys):
    def layers(cnn, l1, final, dev_best="layer_1"):
        dev = {"cnn": 60.0, "layer_1": 60.0, "final": 60.0, dev_best: 50.0}
        return {"cnn": (dev["cnn"], cnn), "layer_1": (dev["layer_1"], l1), "final": (dev["final"], final)}

    tsv = _probe_tsv(tmp_path / "probe", {
        ("xlsr", "ky"): layers(70.0, 40.0, 50.0), ("xlsr_s2", "ky"): layers(70.0, 42.0, 52.0),
        ("mono", "ky"): layers(70.0, 60.0, 50.0), ("mono_s2", "ky"): layers(70.0, 62.0, 53.0, dev_best="cnn"),
        ("none", "ky"): layers(80.0, 80.0, 80.0)})
    probe = report.read_probe([tsv], {"XLSR-3": ["xlsr", "xlsr_s2"], "XLSR-Monolingual": ["mono", "mono_s2"],
                                      "No pre-training": ["none"], "XLSR-English": ["english"]})
    assert set(probe) == {"XLSR-3", "XLSR-Monolingual", "No pre-training"}  # no rows: left out
    assert probe["XLSR-Monolingual"]["ky"][1].best() == ("cnn", 70.0)  # chosen on dev, scored on test
    results = {"XLSR-3": {"ky": [70.0, 71.0]}, "XLSR-Monolingual": {"ky": [75.0, 76.0]}}
    paths = report.write_report(results, tmp_path / "out", ["ky"], "XLSR-3", low_resource=["ky"], probe=probe)
    text = paths.table.read_text(encoding="utf-8")
    assert "| XLSR-3 | 41.0 ± 1.4 (layer_1) | 51.0 ± 1.4 |" in text
    assert "| XLSR-Monolingual | 65.0 ± 7.1 (cnn,layer_1) | 51.5 ± 2.1 |" in text
    assert "| No pre-training | 80.0 (layer_1) | 80.0 |" in text
    lines = [l for l in text.splitlines() if l.startswith("* best layer:") or l.startswith("* last layer:")]
    assert len(lines) == 2 and "XLSR-3 beats XLSR-Monolingual on ky: frame error 41.0 ± 1.4 vs 65.0 ± 7.1" in lines[0]
    assert re.search(r"95% interval [-+][\d.]+% to [-+][\d.]+%\): (holds|reversed|not resolved)", lines[1])
    assert (tmp_path / "out" / "probe.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the CLI: runs of no model, and --probe without --probe-model, are errors
    js = tmp_path / "per.json"
    js.write_text(json.dumps(results), encoding="utf-8")
    base = ["--json", str(js), "--out", str(tmp_path / "cli"), "--probe", str(tsv)]
    assert report.main(base) == 1 and "--probe-model" in capsys.readouterr().err
    assert report.main(base + ["--probe-model", "XLSR-3=xlsr,xlsr_s2"]) == 1
    assert "'mono' belongs to no --probe-model" in capsys.readouterr().err
    owners = ["--probe-model", "XLSR-3=xlsr,xlsr_s2", "--probe-model", "XLSR-Monolingual=mono,mono_s2",
              "--probe-model", "No pre-training=none"]
    assert report.main(base + owners) == 0 and (tmp_path / "cli" / "probe.png").is_file()
