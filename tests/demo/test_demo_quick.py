"""``xlsr-demo --quick`` end to end through its console script: synth, manifests,
pre-training (multilingual, monolingual, none), CTC fine-tuning, decoding, report.

One run (about 2-4 minutes on 2 cores) is shared by the tests of this module; they check
the table against the decoding output it was made from, the stage scripts and the log,
and that a re-run skips finished stages while --from-stage redoes them.
"""

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from xlsr_demo.report import collect_per

DEMO = str(Path(sys.executable).with_name("xlsr-demo"))
LANGS = ("es", "fr", "ky")  # --quick: two languages and a low-resource one
MODELS = {"XLSR-3": LANGS, "XLSR-Monolingual": ("ky",), "No pre-training": LANGS}
RUNS = {"XLSR-3": "xlsr", "XLSR-Monolingual": "mono_ky", "No pre-training": "none"}


def _demo(*args, timeout=600):
    proc = subprocess.run([DEMO, *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "results"
    return out, _demo("--quick", "--out", str(out))


def _table(path: Path):
    """{model: {column: cell}} from the Markdown table of table.md."""
    lines = [l for l in path.read_text(encoding="utf-8").splitlines() if l.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header[1:], cells[1:]))
    return header, rows


def test_quick_demo_table_is_complete_and_measured(quick):
    out, stdout = quick
    header, rows = _table(out / "table.md")
    assert header == ["Model", *LANGS, "Avg"]
    assert set(rows) == set(MODELS)
    for model, langs in MODELS.items():
        measured = collect_per([out / "decode" / f"{RUNS[model]}_{lang}" for lang in langs])
        for lang in langs:
            per = float(rows[model][lang])
            assert math.isfinite(per) and 0.0 <= per <= 300.0, (model, lang, per)
            assert per == pytest.approx(measured[lang], abs=0.051)  # the table shows what was decoded
        missing = [lang for lang in LANGS if lang not in langs]
        assert all(rows[model][lang] == "–" for lang in missing)
    # the average of the decoded PERs (averaging the table's rounded cells can be 0.1 off)
    measured = collect_per([out / "decode" / f"{RUNS['XLSR-3']}_{lang}" for lang in LANGS])
    avg = sum(measured[lang] for lang in LANGS) / len(LANGS)
    assert float(rows["XLSR-3"]["Avg"]) == pytest.approx(avg, abs=0.051)
    assert re.search(r"Relative PER reduction of XLSR-3 vs XLSR-Monolingual.*ky [-+]\d", 
                     (out / "table.md").read_text(encoding="utf-8"))
    assert (out / "per.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "finished in" in stdout and "stage 6/6 report" in stdout


def test_quick_demo_records_the_stage_scripts_and_their_commands(quick):
    out, _ = quick
    commands = (out / "commands.sh").read_text(encoding="utf-8").splitlines()
    scripts = [re.search(r"recipes/demo/(\S+\.sh)", c).group(1) for c in commands if "recipes/demo" in c]
    # 1 synth, 1 manifests, 3 pre-trainings, 7 fine-tunings, 7 decodings, 1 report
    assert [scripts.count(f) for f in ("01_synth.sh", "02_manifests.sh", "03_pretrain.sh",
                                       "04_finetune.sh", "05_decode.sh", "06_report.sh")] == [1, 1, 3, 7, 7, 1]
    for script in set(scripts):
        assert (Path(__file__).resolve().parents[2] / "recipes/demo" / script).is_file()
    log = (out / "demo.log").read_text(encoding="utf-8")
    for tool in ("xlsr-synth", "xlsr-manifest commonvoice", "fairseq-hydra-train", "fairseq-generate"):
        assert tool in log
    assert "exit 1" not in log


def test_quick_demo_rerun_skips_and_from_stage_redoes(quick):
    out, _ = quick
    stdout = _demo("--quick", "--out", str(out), timeout=120)
    assert stdout.count("done earlier, skipped") == 6
    before = (out / "table.md").stat().st_mtime_ns
    stdout = _demo("--quick", "--out", str(out), "--from-stage", "report", timeout=120)
    assert "stage 6/6 report: 1 job(s)" in stdout and stdout.count("skipped") == 5
    assert (out / "table.md").stat().st_mtime_ns > before


def test_demo_refuses_other_settings_in_a_finished_folder(quick):
    out, _ = quick
    proc = subprocess.run([DEMO, "--quick", "--out", str(out), "--finetune-updates", "31"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "other settings" in proc.stderr
