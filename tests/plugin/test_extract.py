"""xlsr-extract: shards and index that read back as the model's own forward pass, per
layer; batched equals alone for both feature-encoder variants; resumable; clear errors.

Two tiny models pre-trained by ``fairseq-train`` (one update): BASE-like (group-norm
feature encoder, post-LN, no normalisation) and LARGE-like (layer-norm feature encoder,
pre-LN, ``--normalize``). The reference is the model loaded by fairseq's own
``load_model_ensemble_and_task`` run on one utterance at a time, audio read with
soundfile: nothing of xlsr-extract's reading, batching or writing is shared with it.
"""

import json
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from fairseq import checkpoint_utils, options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from omegaconf import OmegaConf

from conftest import PLUGIN, pretrain_cli, write_language
from xlsr_tools import extract as ex
from xlsr_tools.representations import ExtractError

TOL = dict(rtol=1e-5, atol=1e-5)
# two pairs of equal length (group-norm batches) among unequal ones (padded batches)
DURATIONS = [0.6, 0.9, 0.6, 1.1, 0.9, 0.75]
VARIANTS = {"gn": [], "ln": ["--extractor-mode", "layer_norm", "--layer-norm-first", "--normalize"]}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The two checkpoints (trained side by side), and a test manifest of clips."""
    root = tmp_path_factory.mktemp("extract")
    data = root / "data"
    write_language(data, "train", "aa", [1.0] * 4)
    write_language(data, "dev", "aa", [1.0] * 2)
    runs = [threading.Thread(target=pretrain_cli, args=(data, root / v, "--max-update", "1", *a))
            for v, a in VARIANTS.items()]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    ckpts = {v: root / v / "checkpoint_last.pt" for v in VARIANTS}
    assert all(p.exists() for p in ckpts.values()), "pre-training failed (see the log above)"
    clips = write_language(root / "clips", "test", "xx", DURATIONS, seed=3)
    return SimpleNamespace(root=root, data=data, ckpts=ckpts, clips=clips)


def run_extract(ckpt, manifests, out, **kw):
    kw = {"num_workers": 0, "progress": False, "shard_frames": 60, "max_tokens": 40_000, **kw}
    return ex.extract(str(ckpt), [str(m) for m in manifests], str(out), **kw)


@pytest.fixture(scope="module")
def extracted(setup):
    return {v: (run_extract(c, [setup.clips], setup.root / f"out_{v}"), setup.root / f"out_{v}")
            for v, c in setup.ckpts.items()}


def reference_model(ckpt, data):
    models, _, task = checkpoint_utils.load_model_ensemble_and_task([str(ckpt)], arg_overrides={"data": str(data)})
    model = models[0]
    return model.eval(), task.cfg.normalize


def utterances(manifest):
    lines = manifest.read_text().splitlines()
    return [(i, f"{lines[0]}/{line.split(chr(9))[0]}") for i, line in enumerate(lines[1:])]


@torch.no_grad()
def direct(model, path, normalize, padded_to=None):
    """fairseq's forward pass on one utterance (optionally padded, with a padding mask)."""
    wav, rate = sf.read(path, dtype="float32")
    assert rate == 16000
    x = torch.from_numpy(wav)
    if normalize:
        x = F.layer_norm(x, x.shape)
    mask = None
    if padded_to:
        mask = torch.arange(padded_to)[None] >= len(x)
        x = F.pad(x, (0, padded_to - len(x)))
    res = model.extract_features(x[None], mask, mask=False)
    out = {"cnn": res["features"][0], "final": res["x"][0]}
    out.update({f"layer_{i + 1}": lr[0][:, 0] for i, lr in enumerate(res["layer_results"])})
    inp = model.post_extract_proj(res["features"])  # the transformer's input, by hand
    inp = inp + model.encoder.pos_conv(inp.transpose(1, 2)).transpose(1, 2)
    out["layer_0"] = (inp if model.encoder.layer_norm_first else model.encoder.layer_norm(inp))[0]
    if model.quantizer is not None and not padded_to:
        out["codes"] = model.quantize(x[None])[1][0]  # fairseq's own: feature encoder, quantizer
    return {k: v.numpy() for k, v in out.items()}


@pytest.mark.parametrize("variant", VARIANTS)
def test_features_equal_the_models_forward_per_utterance(setup, extracted, variant):
    meta, out = extracted[variant]
    model, normalize = reference_model(setup.ckpts[variant], setup.data)
    assert meta["normalize"] is normalize is (variant == "ln") and meta["complete"]
    assert meta["model"]["layer_norm_first"] is (variant == "ln")
    names = ["cnn", "codes", "quantized", "layer_0", "layer_1", "layer_2", "final"]
    assert list(meta["layers"]) == names
    rows = list(ex.read_index(out))
    assert sorted(r["index"] for r in rows) == list(range(len(DURATIONS)))
    assert len({r["shard"] for r in rows}) >= 3  # 60-frame shards
    for row in rows:
        path = f"{meta['manifests']['test_xx']['root']}/{row['path']}"
        ref = direct(model, path, normalize)
        assert row["frames"] == len(ref["cnn"]) == int(16000 * DURATIONS[row["index"]] - 400) // 320 + 1
        for name in names:
            got = ex.load_features(out, name, row)
            assert got.shape[1] == meta["layers"][name]["dim"]
            if name == "codes":
                assert got.dtype == np.int16
                np.testing.assert_array_equal(got, ref["codes"])
            elif name == "quantized":  # q_t: the chosen entry of each codebook, concatenated, project_q
                q = model.quantizer
                entries = q.vars[0].view(q.groups, q.num_vars, -1)[torch.arange(q.groups), torch.from_numpy(
                    ex.load_features(out, "codes", row).astype(np.int64))]
                with torch.no_grad():
                    expect = model.project_q(entries.flatten(1)).numpy()
                np.testing.assert_allclose(got, expect, **TOL)
            else:
                np.testing.assert_allclose(got, ref[name], **TOL, err_msg=f"{name} of {row['path']}")
    # pre-LN: the blocks' outputs are the raw residual stream, final is normalised
    last, final = (np.concatenate([ex.load_features(out, n, r) for r in rows]) for n in ("layer_2", "final"))
    assert np.array_equal(last, final) is (variant == "gn")


@pytest.mark.parametrize("variant", VARIANTS)
def test_batched_equals_alone(setup, extracted, variant, tmp_path):
    meta, batched = extracted[variant]
    sizes = np.array([int(16000 * d) for d in DURATIONS])
    plan = ex.plan_batches(sizes, 40_000, equal_lengths=(variant == "gn"))
    shared = [b for b in plan if len(b) > 1]
    assert shared, "nothing was batched"
    if variant == "gn":  # group norm: only equal lengths share a batch
        assert all(len(set(sizes[b])) == 1 for b in plan)
    else:
        assert any(len(set(sizes[b])) > 1 for b in plan)  # padded batches
    alone = tmp_path / "alone"
    run_extract(setup.ckpts[variant], [setup.clips], alone, max_tokens=1)
    key = lambda r: r["index"]  # noqa: E731
    for a, b in zip(sorted(ex.read_index(batched), key=key), sorted(ex.read_index(alone), key=key)):
        for name in meta["layers"]:
            np.testing.assert_allclose(ex.load_features(batched, name, a), ex.load_features(alone, name, b), **TOL)

    # why the rule: padding changes a group-norm encoder's output, not a layer-norm one's
    model, normalize = reference_model(setup.ckpts[variant], setup.data)
    short = utterances(setup.clips)[0][1]
    padded, single = direct(model, short, normalize, padded_to=16000), direct(model, short, normalize)
    for name in ("cnn", "final"):
        diff = np.abs(padded[name][: len(single[name])] - single[name]).max()
        assert diff > 1e-3 if variant == "gn" else diff < 1e-5, (name, diff)


def test_cli_float16_chosen_layers_two_manifests(setup, extracted, tmp_path, capsys):
    meta32, out32 = extracted["gn"]
    second = tmp_path / "dev_xx.tsv"  # two manifests into one output
    second.write_text("\n".join(setup.clips.read_text().splitlines()[:3]) + "\n")
    out = tmp_path / "out"
    argv = [setup.ckpts["gn"], setup.clips, second, "--out", out, "--dtype", "float16",
            "--layers", "layer_-1,cnn", "--shard-frames", "100", "--num-workers", "1", "--device", "cpu"]
    assert ex.main([str(a) for a in argv]) == 0  # what the xlsr-extract console script runs
    assert "8/8" in capsys.readouterr().err  # the progress bar
    meta = json.loads((out / "meta.json").read_text())
    assert list(meta["layers"]) == ["cnn", "layer_2"] and meta["layers"]["cnn"]["dtype"] == "float16"
    assert sorted(p.name for p in out.iterdir()) == ["cnn", "index.tsv", "layer_2", "meta.json"]
    rows = list(ex.read_index(out))
    assert [r["split"] for r in rows].count("dev_xx") == 2 and len(rows) == 8
    for shard in {r["shard"] for r in rows}:  # bounded: the largest clip has 54 frames
        assert len(np.load(out / "cnn" / ex.shard_name(shard))) <= 100
    ref = {r["index"]: r for r in ex.read_index(out32)}
    for row in rows:
        got = ex.load_features(out, "layer_2", row)
        assert got.dtype == np.float16
        np.testing.assert_allclose(got, ex.load_features(out32, "layer_2", ref[row["index"]]), rtol=2e-3, atol=2e-3)


def make_ctc_checkpoint(pretrained, root, dst):
    """An ``xlsr_ctc`` checkpoint with fairseq's key structure (cfg as a plain dict with the
    pre-training config in ``model.w2v_args``, weights under ``w2v_encoder.``), built by the
    plugin's own task and model; its encoder is then changed, as fine-tuning would."""
    data = root / "ctc"
    data.mkdir()
    (data / "dict.phn.txt").write_text("a 5\nb 3\n")
    args = options.parse_args_and_arch(options.get_training_parser(), [
        str(data), "--user-dir", str(PLUGIN), "--task", "xlsr_finetuning", "--arch", "xlsr_ctc",
        "--w2v-path", str(pretrained), "--labels", "phn", "--criterion", "xlsr_ctc"])
    cfg = convert_namespace_to_omegaconf(args)
    model = tasks.setup_task(cfg.task).build_model(cfg.model)
    with torch.no_grad():
        bias = model.w2v_encoder.w2v_model.encoder.layers[0].fc2.bias
        bias.add_(torch.linspace(-1, 1, len(bias)))  # not a constant, which layer norm would remove
    torch.save({"args": None, "cfg": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
                "model": model.state_dict(), "extra_state": {},
                "optimizer_history": [{"criterion_name": "CtcCriterion", "optimizer_name": "Adam",
                                       "lr_scheduler_state": {}, "num_updates": 1}]}, dst)
    return data


def test_ctc_checkpoint_gives_its_encoder(setup, extracted, tmp_path):
    ctc = tmp_path / "ctc.pt"
    data = make_ctc_checkpoint(setup.ckpts["gn"], tmp_path, ctc)
    with pytest.raises(ExtractError, match="no quantizer.*fine-tuned.*pre-trained checkpoint"):
        run_extract(ctc, [setup.clips], tmp_path / "bad", layers="cnn,codes")
    meta = run_extract(ctc, [setup.clips], tmp_path / "out")
    assert list(meta["layers"]) == ["cnn", "layer_0", "layer_1", "layer_2", "final"]
    assert meta["model"]["source"] == "fine-tuned (xlsr_ctc): its encoder"
    model, normalize = reference_model(ctc, data)
    encoder = model.w2v_encoder.w2v_model
    pre_meta, pre_out = extracted["gn"]
    pre = {r["index"]: r for r in ex.read_index(pre_out)}
    for row in ex.read_index(tmp_path / "out"):
        ref = direct(encoder, f"{setup.clips.parent}/audio/xx/{row['path']}", normalize)
        for name in meta["layers"]:
            np.testing.assert_allclose(ex.load_features(tmp_path / "out", name, row), ref[name], **TOL)
        changed = ex.load_features(pre_out, "layer_1", pre[row["index"]])  # the pre-trained model's
        assert np.abs(changed - ref["layer_1"]).max() > 0.1


def test_interrupted_run_leaves_whole_shards_and_resumes(setup, extracted, tmp_path, monkeypatch):
    meta, full = extracted["gn"]
    out = tmp_path / "out"
    real, calls = ex._atomic_write, []

    def dies_in_shard_2(path, write):  # while writing the third shard's second layer
        calls.append(path.name)
        if path.name == ex.shard_name(2) and calls.count(ex.shard_name(2)) == 2:
            path.with_name(path.name + ".tmp").write_bytes(b"\x93NUMPY")  # half a file, then the crash
            raise KeyboardInterrupt
        return real(path, write)

    monkeypatch.setattr(ex, "_atomic_write", dies_in_shard_2)
    with pytest.raises(KeyboardInterrupt):
        run_extract(setup.ckpts["gn"], [setup.clips], out)
    monkeypatch.setattr(ex, "_atomic_write", real)
    assert not (out / "index.tsv").exists() and not json.loads((out / "meta.json").read_text())["complete"]
    for f in out.rglob("*.npy"):
        np.load(f)  # every shard file there is whole
    assert ex.finished_parts(out) == 2

    with pytest.raises(ExtractError, match="other settings.*shard_frames"):
        run_extract(setup.ckpts["gn"], [setup.clips], out, shard_frames=50)
    resumed = run_extract(setup.ckpts["gn"], [setup.clips], out, max_tokens=1)  # batching may differ
    assert resumed["complete"] and resumed["shards"] == meta["shards"] and resumed["utterances"] == 6
    assert not list(out.rglob("*.tmp")) and not (out / ex.PARTS).exists()
    assert list(ex.read_index(out)) == list(ex.read_index(full))
    for row in ex.read_index(out):
        for name in meta["layers"]:
            np.testing.assert_allclose(ex.load_features(out, name, row), ex.load_features(full, name, row), **TOL)
    assert run_extract(setup.ckpts["gn"], [setup.clips], out)["complete"]  # already done: nothing to do
    again = run_extract(setup.ckpts["gn"], [setup.clips], out, shard_frames=1000, overwrite=True)
    assert again["shards"] == 1 and sorted(p.name for p in (out / "cnn").iterdir()) == [ex.shard_name(0)]


def test_bad_input_is_named_with_its_line(setup, tmp_path, capsys):
    ckpt = setup.ckpts["ln"]
    lines = setup.clips.read_text().splitlines()

    def manifest(name, body):
        path = tmp_path / f"{name}.tsv"
        path.write_text("\n".join([lines[0], *body]) + "\n")
        return path

    missing = manifest("missing", [*lines[1:3], "gone.flac\t16000", *lines[3:]])
    with pytest.raises(ExtractError, match=r"missing.tsv line 4: audio file .*gone.flac does not exist"):
        run_extract(ckpt, [missing], tmp_path / "o1")
    assert not (tmp_path / "o1").exists()  # found before anything was written
    with pytest.raises(ExtractError, match="line 4: .*gone.flac does not exist"):  # when read, past --check-first
        run_extract(ckpt, [missing], tmp_path / "o2", check_first=1)

    sf.write(setup.clips.parent / "audio" / "xx" / "slow.flac", np.zeros(8000, "float32"), 8000)
    slow = manifest("slow", [*lines[1:4], "slow.flac\t8000"])
    for workers in (0, 1):  # a worker's error comes back with its message
        with pytest.raises(ExtractError, match=r"^\S*slow.tsv line 5: \S*slow.flac is sampled at 8000 Hz, "
                                               r"the model needs 16000 Hz: resample"):
            run_extract(ckpt, [slow], tmp_path / f"o3{workers}", check_first=2, num_workers=workers)

    wrong = manifest("wrong", [lines[1].split("\t")[0] + "\t12345"])
    with pytest.raises(ExtractError, match="wrong.tsv line 2: .* samples, the manifest says 12345"):
        run_extract(ckpt, [wrong], tmp_path / "o4")
    short = manifest("short", [*lines[1:3], "x.flac\t300"])
    with pytest.raises(ExtractError, match=r"short.tsv line 4: 300 samples, shorter than .*\(400 samples"):
        run_extract(ckpt, [short], tmp_path / "o5")
    bad = manifest("bad", [lines[1], "no-tab-here"])
    with pytest.raises(ExtractError, match="bad.tsv line 3: expected 'relpath<TAB>num_samples'"):
        run_extract(ckpt, [bad], tmp_path / "o6")
    with pytest.raises(ExtractError, match="unknown representation 'layer_9'"):
        run_extract(ckpt, [setup.clips], tmp_path / "o7", layers="cnn,layer_9")
    (tmp_path / "o8").mkdir()
    (tmp_path / "o8" / "notes.txt").write_text("mine")
    with pytest.raises(ExtractError, match="not empty and not an xlsr-extract output"):
        run_extract(ckpt, [setup.clips], tmp_path / "o8")
    assert ex.main([str(tmp_path / "nope.pt"), str(setup.clips), "--out", str(tmp_path / "o9")]) == 2
    assert "xlsr-extract: error: " in capsys.readouterr().err  # the message, no traceback


def test_plan_streams_windows_and_covers_each_utterance_once(tmp_path):
    rng = np.random.default_rng(0)
    sizes = rng.choice([16000, 24000, 32000, 40000, 200000], size=1000)
    path = tmp_path / "big.tsv"
    path.write_text("/nowhere\n" + "".join(f"u{i}.flac\t{s}\n" for i, s in enumerate(sizes)))
    manifest = ex.scan_manifest(ex.open_manifest(str(path)), 400)
    assert (manifest.utterances, manifest.samples) == (1000, sizes.sum())
    for equal in (True, False):
        seen = []
        for win, batches in ex.plan([manifest], 300, 100_000, equal):
            assert len(win.names) <= 300
            for b in batches:
                s = win.sizes[b]
                assert len(b) == 1 or s.max() * len(b) <= 100_000  # an over-long utterance runs alone
                assert not equal or len(set(s)) == 1
                seen.extend(win.first + b)
        assert sorted(seen) == list(range(1000))
