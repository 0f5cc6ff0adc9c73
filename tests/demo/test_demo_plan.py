"""The full demo's job plan (``xlsr-demo`` without ``--quick``), checked without running it:
which models are pre-trained on which languages, which are fine-tuned where, and that
English (XLSR-English) never enters the XLSR-10 mix or its sampling table."""

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
    pretrain = {a[1]: a[2] for a in _args(plan, 3, "03_pretrain.sh")}
    assert pretrain == {"xlsr": ten, "mono_ky": "ky", "mono_tt": "tt", "english": "en", "none": ten}
    updates = {a[1]: a[3] for a in _args(plan, 3, "03_pretrain.sh")}
    assert {updates[m] for m in ("xlsr", "mono_ky", "mono_tt", "english")} == {"1200"}
    assert updates["none"] == "1"  # the floor: initialisation written after one update at lr 0
    finetune = {(a[1], a[2]): a[5:] for a in _args(plan, 4, "04_finetune.sh")}
    assert {lang for model, lang in finetune if model == "xlsr"} == set(pipeline.XLSR10)
    assert {lang for model, lang in finetune if model == "none"} == set(pipeline.XLSR10)
    assert {(m, l) for m, l in finetune if m not in ("xlsr", "none")} == {
        ("mono_ky", "ky"), ("mono_tt", "tt"), ("english", "ky"), ("english", "tt")}
    # one recipe for all; only the floor trains its (random) feature encoder
    assert {k: v for k, v in finetune.items() if v} == {
        ("none", lang): ["model.feature_grad_mult=1.0"] for lang in pipeline.XLSR10}
    decode = {(a[1], a[2]) for a in _args(plan, 5, "05_decode.sh")}
    assert decode == {(f"{m}_{l}", l) for m, l in finetune}
    report, = _args(plan, 6, "06_report.sh")
    names = [spec.split("=")[0] for spec in report[4:-2]]
    assert names == ["XLSR-10", "XLSR-Monolingual", "XLSR-English", "No pre-training"]
    assert report[-2:] == ["--codebook", "xlsr"]  # the codebook analysis of XLSR-10's pre-trained model


def test_quick_plan_has_no_english():
    plan = pipeline.plan(pipeline.QUICK, OUT)
    assert "en" not in _args(plan, 1, "01_synth.sh")[0][1].split(",")
    assert not [a for a in _args(plan, 3, "03_pretrain.sh") if a[1] == "english"]
