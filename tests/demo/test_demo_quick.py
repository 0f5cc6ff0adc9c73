"""``xlsr-demo --quick`` end to end through its console script: synth, manifests,
pre-training (multilingual with α = 0.5 and α = 1, monolingual, none), CTC fine-tuning
(on the low-resource language, XLSR-3, α = 1 and monolingual with two seeds, each
pre-trained anew), decoding, report.

One run (about 3 minutes on 2 cores) is shared by the tests of this module; they check
the table against the decoding output it was made from (mean ± sd over seeds), that
commands.sh holds every fairseq command that ran, complete (re-parsed as fairseq-hydra-train
and fairseq-generate parse them, and one of them re-run from the file), the log, and that a
re-run skips finished stages while --from-stage redoes them.
"""

import importlib
import itertools
import math
import re
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from xlsr_demo.report import collect_per

DEMO = str(Path(sys.executable).with_name("xlsr-demo"))
LANGS = ("es", "fr", "ky")  # --quick: two languages and a low-resource one
MODELS = {"XLSR-3": LANGS, "XLSR-3 unbalanced": LANGS, "XLSR-Monolingual": ("ky",), "No pre-training": LANGS}
RUNS = {"XLSR-3": "xlsr", "XLSR-3 unbalanced": "xlsr_a1", "XLSR-Monolingual": "mono_ky", "No pre-training": "none"}
SEEDS = {"es": (1,), "fr": (1,), "ky": (1, 2)}  # --quick: two seeds on the low-resource language ...
REPEATED = ("XLSR-3", "XLSR-3 unbalanced", "XLSR-Monolingual")  # ... for the models of the paper's directions


def _seeds(model, lang):
    return SEEDS[lang] if model in REPEATED else (1,)


def _run(model, lang, seed):
    """The folder name of a fine-tuning (and its decoding): seed 1 fine-tunes pretrain/<p>,
    a later seed its own pre-training pretrain/<p>_s<seed>."""
    pre = RUNS[model] if seed == 1 else f"{RUNS[model]}_s{seed}"
    return f"{pre}_{lang}_s{seed}"
RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def _demo(*args, timeout=600):
    proc = subprocess.run([DEMO, *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "results"
    return out, _demo("--quick", "--out", str(out))


def _table(path: Path, first: str = "| Model |"):
    """{model: {column: cell}} from the Markdown table of table.md whose header starts with ``first``."""
    text = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, l in enumerate(text) if l.startswith(first))
    lines = list(itertools.takewhile(lambda l: l.startswith("|"), text[start:]))
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
    means = {}
    for model, langs in MODELS.items():
        for lang in langs:
            decoded = [collect_per([out / "decode" / _run(model, lang, s)])[lang] for s in _seeds(model, lang)]
            assert all(math.isfinite(p) and 0.0 <= p <= 300.0 for p in decoded), (model, lang, decoded)
            means[model, lang] = statistics.mean(decoded)
            cell = rows[model][lang].split(" ± ")
            assert float(cell[0]) == pytest.approx(means[model, lang], abs=0.051)  # the table shows what was decoded
            if len(decoded) > 1:  # mean ± sample sd over the seeds
                assert float(cell[1]) == pytest.approx(statistics.stdev(decoded), abs=0.051)
            else:
                assert len(cell) == 1
        missing = [lang for lang in LANGS if lang not in langs]
        assert all(rows[model][lang] == "–" for lang in missing)
    # the average of the decoded PERs (averaging the table's rounded cells can be 0.1 off)
    avg = sum(means["XLSR-3", lang] for lang in LANGS) / len(LANGS)
    assert float(rows["XLSR-3"]["Avg"]) == pytest.approx(avg, abs=0.051)
    text = (out / "table.md").read_text(encoding="utf-8")
    assert re.search(r"Relative PER reduction of XLSR-3 vs XLSR-Monolingual.*ky [-+]\d", text)
    # the paper's two directions on ky, each with an interval and a verdict
    for other in ("XLSR-Monolingual", "XLSR-3 unbalanced"):
        assert re.search(rf"XLSR-3 beats {other} on ky: .*95% interval [-+][\d.]+% to [-+][\d.]+%\): "
                         r"(holds|reversed|not resolved)", text), other
    assert (out / "per.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "finished in" in stdout and "stage 6/6 report" in stdout


def test_quick_demo_records_the_stage_scripts_and_their_commands(quick):
    out, _ = quick
    commands = (out / "commands.sh").read_text(encoding="utf-8").splitlines()
    scripts = [re.search(r"recipes/demo/(\S+\.sh)", c).group(1) for c in commands if "recipes/demo" in c]
    # 1 synth, 1 manifests, 4 + 3 pre-trainings, 10 + 3 fine-tunings (ky: 2 seeds), as many decodings, 1 report
    assert [scripts.count(f) for f in ("01_synth.sh", "02_manifests.sh", "03_pretrain.sh",
                                       "04_finetune.sh", "05_decode.sh", "06_report.sh")] == [1, 1, 7, 13, 13, 1]
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


def _commands(out: Path, tool: str):
    lines = (out / "commands.sh").read_text(encoding="utf-8").splitlines()
    return [shlex.split(line) for line in lines if line.startswith(tool + " ")]


def test_commands_sh_holds_every_training_command_complete(quick):
    """Each fairseq-hydra-train line names an existing recipe and only overrides that hydra
    parses and that recipe's config has; together they are exactly the runs of the demo."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    importlib.import_module("xlsr_plugin")  # registers the task and model dataclasses
    from fairseq.dataclass.configs import FairseqConfig
    from fairseq.models import MODEL_DATACLASS_REGISTRY
    from fairseq.tasks import TASK_DATACLASS_REGISTRY

    out, _ = quick
    runs = {}
    for argv in _commands(out, "fairseq-hydra-train"):
        i, j = argv.index("--config-dir"), argv.index("--config-name")
        recipe = Path(argv[i + 1]) / f"{argv[j + 1]}.yaml"
        assert recipe in (RECIPES / "pretraining/demo.yaml", RECIPES / "finetuning/demo.yaml")
        rest = [a for k, a in enumerate(argv[1:], 1) if k not in (i, i + 1, j, j + 1)]
        cfg = OmegaConf.merge(OmegaConf.structured(FairseqConfig), OmegaConf.load(recipe))
        cfg.task = OmegaConf.merge(OmegaConf.structured(TASK_DATACLASS_REGISTRY[cfg.task._name]), cfg.task)
        cfg.model = OmegaConf.merge(OmegaConf.structured(MODEL_DATACLASS_REGISTRY[cfg.model._name]), cfg.model)
        values = {}
        for override in OverridesParser.create().parse_overrides(rest):
            key, value = override.key_or_group, override.value()
            values[key] = value
            if not key.startswith("hydra."):
                OmegaConf.update(cfg, key, value, merge=False)  # raises on a key the config has not
        assert Path(values["task.data"]).is_dir() and Path(values["common.user_dir"]).is_dir()
        save = Path(values["checkpoint.save_dir"])
        assert values["hydra.run.dir"] == str(save) and (save / "checkpoint_last.pt").is_file()
        if recipe.parent.name == "finetuning":
            assert Path(values["model.w2v_path"]).is_file()
            assert save.name.endswith(f"_{values['task.languages']}_s{values['common.seed']}")
        runs[save.relative_to(out).as_posix()] = values
    expected = {f"pretrain/{p}" for p in ("xlsr", "xlsr_a1", "mono_ky", "none", "xlsr_s2", "xlsr_a1_s2", "mono_ky_s2")}
    expected |= {f"finetune/{_run(m, lang, s)}" for m, langs in MODELS.items() for lang in langs for s in _seeds(m, lang)}
    assert set(runs) == expected
    # a later seed pre-trains with that seed, and its fine-tuning starts from that pre-training
    assert runs["pretrain/xlsr_s2"]["common.seed"] == 2
    assert runs["finetune/xlsr_s2_ky_s2"]["model.w2v_path"] == str(out / "pretrain/xlsr_s2/checkpoint_last.pt")
    # the α = 1 ablation differs from XLSR-3's pre-training in the sampling alpha only
    a1, xlsr = runs["pretrain/xlsr_a1"], runs["pretrain/xlsr"]
    assert a1.pop("task.sampling_alpha") == 1.0 and "task.sampling_alpha" not in xlsr
    assert {k: v for k, v in a1.items() if "dir" not in k} == {k: v for k, v in xlsr.items() if "dir" not in k}


def test_commands_sh_decoding_reruns_from_the_file(quick):
    """Every fairseq-generate line parses as fairseq-generate parses it; one of them, run
    verbatim from commands.sh, writes the same results as the demo's own run."""
    from fairseq import options

    out, _ = quick
    generate = _commands(out, "fairseq-generate")
    assert len(generate) == sum(len(_seeds(m, lang)) for m, langs in MODELS.items() for lang in langs)
    for argv in generate:
        args = options.parse_args_and_arch(options.get_generation_parser(), input_args=argv[1:])
        assert args.scoring == "per" and Path(args.path).is_file()
        assert (Path(args.results_path) / f"generate-{args.gen_subset}.txt").is_file()
    line = next(line for line in (out / "commands.sh").read_text(encoding="utf-8").splitlines()
                if line.startswith("fairseq-generate ") and "/decode/xlsr_ky_s1" in line)
    result = out / "decode" / "xlsr_ky_s1" / "generate-test_ky.txt"
    before = result.read_text(encoding="utf-8")
    result.unlink()
    bin_dir = str(Path(sys.executable).parent)
    proc = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=300,
                          env={"PATH": bin_dir + ":/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert result.read_text(encoding="utf-8") == before


def test_quick_demo_probes_the_frozen_pretrained_models(quick):
    """Stage 6 runs xlsr-analyze probe on every pre-training fine-tuned on ky (seeds included)
    and table.md shows its numbers: the layer each run's dev speaker picks, scored on test."""
    from xlsr_tools.analyze import get_parser
    from xlsr_tools.probe_table import read_probe_tsv

    out, _ = quick
    rows = read_probe_tsv(out / "probe" / "ky" / "probe.tsv")
    runs = {"XLSR-3": ("xlsr", "xlsr_s2"), "XLSR-3 unbalanced": ("xlsr_a1", "xlsr_a1_s2"),
            "XLSR-Monolingual": ("mono_ky", "mono_ky_s2"), "No pre-training": ("none",)}
    assert {r["name"] for r in rows} == {run for names in runs.values() for run in names}
    assert {r["layer"] for r in rows} == {"cnn", "quantized", "layer_0", "layer_1", "layer_2", "final"}
    assert all(r["frames"] > 100 and 0.0 <= r["error"] <= 100.0 and r["lang"] == "ky" for r in rows)
    error = {(r["name"], r["layer"], r["split"]): r["error"] for r in rows}
    _, table = _table(out / "table.md", "| Model | ky best layer")
    for model, names in runs.items():
        best = [error[n, min((l for (m, l, s) in error if m == n and s == "dev"), key=lambda l: error[n, l, "dev"]),
                      "test"] for n in names]
        cell = table[model]["ky best layer"].split(" (")[0].split(" ± ")
        assert float(cell[0]) == pytest.approx(statistics.mean(best), abs=0.051)
        last = [error[n, "final", "test"] for n in names]
        assert float(table[model]["ky last layer"].split(" ± ")[0]) == pytest.approx(statistics.mean(last), abs=0.051)
    text = (out / "table.md").read_text(encoding="utf-8")
    for measure in ("best layer", "last layer"):
        for other in ("XLSR-Monolingual", "XLSR-3 unbalanced"):
            assert re.search(rf"\* {measure}: XLSR-3 beats {other} on ky: frame error .*95% interval "
                             r"[-+][\d.]+% to [-+][\d.]+%\): (holds|reversed|not resolved)", text), (measure, other)
    assert (out / "probe.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # commands.sh has the probe command, complete
    probes = [argv for argv in _commands(out, "xlsr-analyze") if argv[1] == "probe"]
    assert probes and all(p == probes[0] for p in probes)  # --from-stage report ran it again
    args = get_parser().parse_args(probes[0][1:])
    assert args.out == str(out / "probe" / "ky") and args.languages == "ky"
    assert all(Path(c.split("=", 1)[1]).is_file() for c in args.checkpoints) and len(args.checkpoints) == 7
