"""The full demo's job plan (``xlsr-demo`` without ``--quick``), checked without running it:
which models are pre-trained on which languages (XLSR-10 with α = 0.5 and with α = 1),
which are fine-tuned where and with which seeds, and that English (XLSR-English) never
enters the XLSR-10 mix or its sampling table."""

from pathlib import Path

from xlsr_demo import pipeline

OUT = Path("/nonexistent/results")


def _args(plan, stage, script):
    return [job.args for job in plan[stage] if job.script == script]


def test_full_plan_models_languages_and_english():
    plan = pipeline.plan(pipeline.FULL, OUT)
    ten = ",".join(pipeline.XLSR10)
    synth, = _args(plan, 1, "01_synth.sh")
    assert synth[1] == ten + ",en"  # English is spoken ...
    manifests, = _args(plan, 2, "02_manifests.sh")
    assert manifests[1] == ten and manifests[3:] == ["en"]  # ... but kept out of the alpha table
    pretrain = {a[1]: (a[2], a[4]) for a in _args(plan, 3, "03_pretrain.sh")}
    first = {"xlsr": ten, "xlsr_a1": ten, "mono_ky": "ky", "mono_tt": "tt", "english": "en", "none": ten}
    # seeds 2 and 3 pre-train the models of the paper's directions anew, with their own seed
    repeated = {f"{m}_s{s}": (first[m], str(s)) for s in (2, 3) for m in ("xlsr", "xlsr_a1", "mono_ky", "mono_tt")}
    assert pretrain == {**{m: (ls, "1") for m, ls in first.items()}, **repeated}
    updates = {a[1]: a[3] for a in _args(plan, 3, "03_pretrain.sh")}
    assert {v for m, v in updates.items() if m != "none"} == {"1200"}
    assert updates["none"] == "1"  # the floor: initialisation written after one update at lr 0
    overrides = {a[1]: a[5:] for a in _args(plan, 3, "03_pretrain.sh")}
    # α = 1 differs from XLSR-10 in the sampling alpha only
    assert overrides["xlsr_a1"] == overrides["xlsr_a1_s3"] == ["task.sampling_alpha=1.0"]
    assert overrides["xlsr"] == overrides["xlsr_s2"] == []
    finetune = {(a[1], a[2], a[4]): a[5:] for a in _args(plan, 4, "04_finetune.sh")}
    for model in ("xlsr", "xlsr_a1", "none"):
        assert {lang for m, lang, seed in finetune if m == model} == set(pipeline.XLSR10)
    assert {(m, l) for m, l, s in finetune if s == "1" and m not in ("xlsr", "xlsr_a1", "none")} == {
        ("mono_ky", "ky"), ("mono_tt", "tt"), ("english", "ky"), ("english", "tt")}
    # each later seed fine-tunes its own pre-training, on the low-resource languages only
    later = {(m, l, s) for m, l, s in finetune if s != "1"}
    assert later == {(f"{m}_s{s}", lang, str(s)) for s in (2, 3) for lang in ("ky", "tt")
                     for m in ("xlsr", "xlsr_a1", f"mono_{lang}")}
    # one recipe for all; only the floor trains its (random) feature encoder
    assert {k for k, v in finetune.items() if v} == {k for k in finetune if k[0] == "none"}
    assert {tuple(v) for v in finetune.values() if v} == {("model.feature_grad_mult=1.0",)}
    decode = {(a[1], a[2]) for a in _args(plan, 5, "05_decode.sh")}
    assert decode == {(f"{m}_{l}_s{s}", l) for m, l, s in finetune}
    report, = _args(plan, 6, "06_report.sh")
    probe = report.index("--probe")
    report, probes = report[:probe], report[probe:]
    specs = dict(spec.split("=", 1) for spec in report[4:-4])
    assert list(specs) == ["XLSR-10", "XLSR-10 unbalanced", "XLSR-Monolingual", "XLSR-English", "No pre-training"]
    # every decoding goes to its model's row, seeds included
    assert sum(len(v.split(",")) for v in specs.values()) == len(decode)
    assert len(specs["XLSR-Monolingual"].split(",")) == 6  # ky and tt, three seeds each
    assert len(specs["XLSR-English"].split(",")) == 2
    assert report[-4:] == ["--unbalanced", "XLSR-10 unbalanced", "--codebook", "xlsr"]
    # the probe: on each low-resource language, every pre-training (all seeds) fine-tuned there
    pairs = [(probes[i], probes[i + 1]) for i in range(0, len(probes), 2)]
    assert {flag for flag, _ in pairs} == {"--probe", "--probe-model"}
    probed = dict(v.split("=", 1) for flag, v in pairs if flag == "--probe")
    for lang in ("ky", "tt"):
        runs = probed[lang].split(",")
        assert sorted(runs) == sorted({m for m, l, s in finetune if l == lang})
        assert len(runs) == 11 and f"mono_{lang}_s3" in runs and "english" in runs and "none" in runs
    owners = dict(v.split("=", 1) for flag, v in pairs if flag == "--probe-model")
    assert list(owners) == list(specs)  # the same rows as the PER table
    assert owners["XLSR-10 unbalanced"] == "xlsr_a1,xlsr_a1_s2,xlsr_a1_s3"
    assert sorted(",".join(owners.values()).split(",")) == sorted(set(probed["ky"].split(",")) | set(probed["tt"].split(",")))


def test_quick_plan_has_no_english():
    plan = pipeline.plan(pipeline.QUICK, OUT)
    assert "en" not in _args(plan, 1, "01_synth.sh")[0][1].split(",")
    assert not [a for a in _args(plan, 3, "03_pretrain.sh") if a[1] == "english"]


def test_without_unbalanced_and_with_one_seed_the_plan_is_the_old_one():
    cfg = pipeline.DemoConfig(("es", "ky"), {"ky": 1.0}, 1.0, 1.0, 10, 10, unbalanced=False, seeds=1)
    plan = pipeline.plan(cfg, OUT)
    assert [a[1] for a in _args(plan, 3, "03_pretrain.sh")] == ["xlsr", "mono_ky", "none"]
    assert {a[4] for a in _args(plan, 4, "04_finetune.sh")} == {"1"}
    report, = _args(plan, 6, "06_report.sh")
    assert "--unbalanced" not in report
