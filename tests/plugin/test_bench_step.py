"""benchmarks/bench_step.py at a tiny size: the fairseq and transformers models it times are
the same network (every transformers tensor is a fairseq tensor of the same shape, same
parameter count) doing the same work per step (the same FLOPs up to the heads, which
transformers applies to every frame and fairseq to masked frames only), and its report is
written. The real runs take minutes; see benchmarks/BENCHMARKS.md."""

import json

import pytest
import torch

pytest.importorskip("transformers")

from xlsr_tools.hf_mapping import rename, weight_rules  # noqa: E402

from conftest import load_benchmark  # noqa: E402


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_step")


@pytest.mark.parametrize("size", ["base", "large"])  # group norm + post-LN; layer norm + pre-LN (shapes)
def test_same_network_and_flops(bench, size):
    cfg = bench.fairseq_config(size, **bench.TINY)
    wav, mask = bench.make_batch(cfg, 2, 16000, torch.device("cpu"))
    runners = {impl: bench.Runner(impl, impl, cfg, torch.device("cpu"), "fp32") for impl in ("fairseq", "transformers")}
    fs, hf = (runners[i].model for i in ("fairseq", "transformers"))
    assert hf.config.num_hidden_layers == cfg.encoder_layers and hf.config.do_stable_layer_norm == (size == "large")

    fs_shapes = {k: v.shape for k, v in fs.named_parameters()}
    rules = weight_rules(cfg.extractor_mode, fine_tuned=False)
    for name, p in hf.named_parameters():
        fs_name = rename(name, rules, reverse=True)
        assert fs_name in fs_shapes and fs_shapes[fs_name] == p.shape, name
    assert runners["fairseq"].params == runners["transformers"].params == bench.n_params(hf)
    if size == "large":
        return  # the same operations as base, in another order: counted once, below

    def counts(runner):
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            runner.loss(wav, mask).backward()
        return {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}, counter.get_total_flops()

    (fs_ops, fs_total), (hf_ops, hf_total) = counts(runners["fairseq"]), counts(runners["transformers"])
    assert fs_ops["aten.convolution"] == hf_ops["aten.convolution"] > 0  # feature encoder + positional conv
    assert fs_ops["aten.bmm"] > 0 and hf_ops["aten.bmm"] > 0  # attention is counted on both sides
    assert fs_total == pytest.approx(hf_total, rel=0.03)


def test_report_and_json(bench, tmp_path, capsys):
    out = tmp_path / "step.json"
    bench.main(["--sizes", "tiny", "--seconds", "0.5", "--repeats", "1", "--warmup", "0", "--no-memory",
                "--dtype", "bf16",
                "--json", str(out)])
    report = json.loads(out.read_text())
    rows = report["sizes"][0]["results"]
    assert set(rows) == {"fairseq", "transformers"} and report["meta"]["dtype"] == "bf16"
    for row in rows.values():
        assert len(row["times_s"]) == 1 and row["step_s"] > 0 and row["gflop_per_step"] > 0
        assert row["audio_s_per_s"] == pytest.approx(1 / row["step_s"])
    fs, hf = rows["fairseq"], rows["transformers"]
    assert fs["ratio_vs_transformers"] == pytest.approx(fs["step_s"] / hf["step_s"])
    assert "ratio" in capsys.readouterr().out


def test_autocast_step_keeps_the_contrastive_logits_fp32(bench):
    """Under bf16 autocast (the GPU run of bench_step.py) a step runs (fairseq's masking put
    fp32 mask embeddings into bf16 features and failed) with fp32 contrastive logits; in
    fp32 the plugin's model computes exactly what fairseq's own does."""
    from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Model

    cfg = bench.fairseq_config("base", **bench.TINY)
    wav, mask = bench.make_batch(cfg, 2, 16000, torch.device("cpu"))
    runner = bench.Runner("fairseq", "fairseq", cfg, torch.device("cpu"), "fp32")
    stock = Wav2Vec2Model(cfg)
    stock.load_state_dict(runner.model.state_dict())
    outputs = {}
    for name, model in (("plugin", runner.model), ("stock", stock)):
        torch.manual_seed(1)
        outputs[name] = model.eval()(wav, mask_indices=mask)["x"]
    assert outputs["plugin"].dtype == torch.float32 and torch.equal(outputs["plugin"], outputs["stock"])

    runner.model.train()
    torch.manual_seed(2)
    fp32 = runner.loss(wav, mask).item()
    runner.dtype = "bf16"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.manual_seed(2)
        logits = runner.model(wav, mask_indices=mask)["x"]
    assert logits.dtype == torch.float32
    torch.manual_seed(2)
    loss = runner.step(wav, mask).item()
    assert loss == pytest.approx(fp32, rel=0.05)
    assert all(torch.isfinite(p.grad).all() for p in runner.model.parameters() if p.grad is not None)
