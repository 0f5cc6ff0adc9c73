"""Checkpoints of every fairseq era load (safely), keep their own settings, seed pre-training,
and ``xlsr-checkpoint info`` / ``clean`` describe them and write them plainly."""

import argparse
import json
import logging
import os
import pickle
import shutil

import numpy as np
import pytest
import torch
from fairseq import checkpoint_utils
from fairseq.dataclass.utils import merge_with_parent
from fairseq.tasks.audio_pretraining import AudioPretrainingConfig
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError

import xlsr_plugin
from conftest import pretrain_cli, pretrain_command, run_cli, run_clis
from eras import ERAS, era_config, make_checkpoint
from xlsr_plugin.checkpoint import (
    UnsafeCheckpointError, checkpoint_era, load_checkpoint, read_checkpoint, stored_model_config,
)
from xlsr_tools import checkpoint as cli

# What the re-uploaded xlsr_53_56k.pt carries beside today's fields: fine-tuning keys in
# its pre-training task (fairseq #3741, s3prl #376); and one model field gone since.
OLD_FIELDS = {"task.eval_wer": False, "task.eval_wer_post_process": "letter", "model.gone_field": 3}
STORED_AS = {"argparse": "argparse", "dictconfig": "dictconfig", "dictconfig_ns": "dictconfig", "dict": "dict"}


@pytest.fixture(scope="module")
def tiny_checkpoint(shared_multilingual_data, tmp_path_factory):
    save = tmp_path_factory.mktemp("pre")
    pretrain_cli(shared_multilingual_data, save, "--max-update", "2", "--encoder-attention-heads", "4")
    return save / "checkpoint_last.pt"


@pytest.fixture(scope="module")
def era_files(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("eras")
    return {era: make_checkpoint(tiny_checkpoint, out / f"{era}.pt", era, extra=OLD_FIELDS) for era in ERAS}


def dropped_names(era):
    """How the warning names OLD_FIELDS: a 2020 Namespace is flat (no groups), and a
    Namespace group is flat too (its model fields are not reported)."""
    if era == "argparse":
        return [f"args.{k.split('.')[1]}" for k in OLD_FIELDS]
    return [k for k in OLD_FIELDS if not (era == "dictconfig_ns" and k.startswith("model."))]


def clear_allow_list():
    torch.serialization.clear_safe_globals()


@pytest.mark.parametrize("era", ERAS)
def test_every_era_loads_with_its_own_settings(era_files, tiny_checkpoint, era, caplog, tmp_path):
    path = tmp_path / f"{era}.pt"  # a fresh name: the warning is given once per file and process
    shutil.copy(era_files[era], path)
    clear_allow_list()
    try:
        with pytest.raises(pickle.UnpicklingError):  # torch alone refuses every era
            torch.load(path)
    finally:
        xlsr_plugin.allow_fairseq_checkpoints()
    assert checkpoint_era(read_checkpoint(path)) == STORED_AS[era]
    with caplog.at_level(logging.WARNING, logger="xlsr_plugin.checkpoint"):
        state = load_checkpoint(str(path))
    model_cfg = stored_model_config(state, str(path))
    assert model_cfg._name == "wav2vec2" and model_cfg.encoder_attention_heads == 4
    assert "gone_field" not in model_cfg and "eval_wer" not in state["cfg"].task
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert str(path) in warned and all(name in warned for name in dropped_names(era)), warned
    source = torch.load(tiny_checkpoint, weights_only=False)["model"]
    assert all(torch.equal(state["model"][k], v) for k, v in source.items())


def test_old_fields_are_what_fairseq_0_12_2_merges_into_a_crash(era_files):
    """fairseq 0.12.2's ``tasks.setup_task`` merges a stored task config into its
    dataclass with ``merge_with_parent`` in struct mode: XLSR-53's ``eval_wer`` raised
    there. The stored config as the plugin hands it on merges."""
    raw = OmegaConf.create(read_checkpoint(era_files["dictconfig"])["cfg"].task)
    with pytest.raises(ConfigKeyError, match="eval_wer"):
        merge_with_parent(AudioPretrainingConfig(), raw)
    normalized = load_checkpoint(str(era_files["dictconfig"]))["cfg"].task
    assert merge_with_parent(AudioPretrainingConfig(), normalized).normalize == raw.normalize


@pytest.fixture(scope="module")
def continued(shared_multilingual_data, era_files, tmp_path_factory):
    """Two updates of pre-training from the 2020 file and from the DictConfig one whose
    model group is a Namespace (the runs at once). The recipe says 2 heads, the files 4."""
    eras = ["argparse", "dictconfig_ns"]
    saves = [tmp_path_factory.mktemp(f"cont_{era}") for era in eras]
    procs = run_clis([pretrain_command(shared_multilingual_data, save, "--max-update", "2", "--init-checkpoint",
                                       era_files[era], "--encoder-attention-heads", "2")
                      for era, save in zip(eras, saves)])
    return {era: (save, proc.stdout) for era, save, proc in zip(eras, saves, procs)}


@pytest.mark.parametrize("era", ["argparse", "dictconfig_ns"])
def test_continued_pretraining_from_old_eras(continued, era_files, era):
    save, out = continued[era]
    assert "encoder_attention_heads: 2 -> 4" in out  # the checkpoint's architecture wins
    assert all(name in out for name in dropped_names(era)), out[-3000:]
    state = torch.load(save / "checkpoint_last.pt", weights_only=False)
    assert state["cfg"]["model"]["encoder_attention_heads"] == 4
    start = torch.load(era_files[era], weights_only=False)["model"]
    assert {k: v.shape for k, v in state["model"].items()} == {k: v.shape for k, v in start.items()}
    # trained on from there (which transformer layers train in 2 updates depends on layerdrop)
    changed = [k for k in start if not torch.equal(state["model"][k], start[k])]
    assert any(k.startswith("encoder.layers.") and "self_attn" in k for k in changed), changed


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_code_running_pickle_is_refused(shared_multilingual_data, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"args": _Payload(marker), "model": {}}, evil)

    with pytest.raises(UnsafeCheckpointError, match=r"evil\.pt: refused to load.*system"):
        load_checkpoint(str(evil))
    out = pretrain_cli(shared_multilingual_data, tmp_path / "ckpt", "--max-update", "1",
                       "--init-checkpoint", evil, check=False)
    assert out.returncode != 0 and "refused to load" in out.stdout
    assert not marker.exists()


def _hide(cfg, where: str, payload):
    """A DictConfig-era config with ``payload`` in its content, its metadata or a Namespace group."""
    cfg = OmegaConf.create(OmegaConf.to_container(cfg), flags={"allow_objects": True})
    if where == "content":
        cfg.task.post_save_script = payload
    elif where == "metadata":
        cfg.model._metadata.flags["readonly"] = payload
    else:
        cfg.model = argparse.Namespace(_name="wav2vec2", conv_feature_layers=payload)
    return cfg


@pytest.mark.parametrize("where", ["content", "metadata", "namespace"])
def test_payload_inside_a_dictconfig_is_refused(tiny_checkpoint, where, tmp_path, capsys):
    marker = tmp_path / "pwned"
    state = torch.load(tiny_checkpoint, weights_only=False)
    _, cfg = era_config(state["cfg"], "dictconfig", {"arch": "wav2vec2", "task": "audio_pretraining"})
    evil = tmp_path / "evil.pt"
    torch.save({"args": None, "cfg": _hide(cfg, where, _Payload(marker)), "model": state["model"],
                "optimizer_history": state["optimizer_history"], "extra_state": {}}, evil)
    assert not marker.exists()  # saving does not run it; loading would

    with pytest.raises(UnsafeCheckpointError, match=r"evil\.pt: refused to load.*system"):
        load_checkpoint(str(evil))
    assert cli.main(["info", str(evil)]) == 2
    err = capsys.readouterr().err
    assert "evil.pt: refused to load" in err and "xlsr-checkpoint clean" in err
    assert not marker.exists()


def test_layer_list_that_would_run_code_is_refused(tiny_checkpoint, tmp_path):
    """fairseq builds the feature encoder with ``eval(conv_feature_layers)``: a safe pickle
    can still carry code in that string."""
    marker = tmp_path / "pwned"
    state = torch.load(tiny_checkpoint, weights_only=False)
    state["cfg"]["model"]["conv_feature_layers"] = f"__import__('os').system('touch {marker}') or [(32, 10, 5)]"
    evil = tmp_path / "evil.pt"
    torch.save(state, evil)
    with pytest.raises(UnsafeCheckpointError, match=r"evil\.pt: refused to load: model\.conv_feature_layers"):
        load_checkpoint(str(evil))
    with pytest.raises(UnsafeCheckpointError, match="conv_feature_layers"):
        checkpoint_utils.load_model_ensemble_and_task([str(evil)])
    assert not marker.exists()


@pytest.mark.parametrize("era", ["argparse", "dict"])
def test_resolver_interpolation_is_refused_before_anything_resolves_it(era_files, era, tmp_path):
    """A stored value ``${name:...}`` would make omegaconf call resolver ``name`` when the
    config is read (fairseq's converter resolves an argparse file's values at once)."""
    calls = []
    OmegaConf.register_new_resolver("xlsr_probe", lambda *a: calls.append(a) or "x", replace=True)
    assert OmegaConf.create({"v": "${xlsr_probe:}"}).v == "x" and calls  # the probe does fire
    calls.clear()
    state = torch.load(era_files[era], weights_only=False)
    if era == "argparse":
        state["args"].tensorboard_logdir = "${xlsr_probe:}"
    else:
        state["cfg"]["common"]["tensorboard_logdir"] = "${xlsr_probe:}"
    probe = tmp_path / "probe.pt"
    torch.save(state, probe)
    with pytest.raises(UnsafeCheckpointError, match=r"probe\.pt: refused to load: .*tensorboard_logdir.*resolver"):
        checkpoint_utils.load_checkpoint_to_cpu(str(probe))
    with pytest.raises(UnsafeCheckpointError, match="resolver"):
        stored_model_config(read_checkpoint(probe), str(probe))
    assert calls == []


# -- xlsr-checkpoint info / clean ------------------------------------------------------------
def _info(path, capsys) -> dict:
    assert cli.main(["info", "--json", str(path)]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("era", ERAS)
def test_info_describes_every_era(era_files, tiny_checkpoint, era, capsys):
    source = torch.load(tiny_checkpoint, weights_only=False)
    cfg = source["cfg"]
    info = _info(era_files[era], capsys)
    conv_weights = {k.split(".")[2] for k in source["model"] if k.startswith("feature_extractor.conv_layers.")}
    layer_weights = {k.split(".")[2] for k in source["model"] if k.startswith("encoder.layers.")}
    assert info["era"] == STORED_AS[era] and not info["finetuned"]
    assert info["model"] == "wav2vec2" and info["task"] == "audio_pretraining"
    assert info["layers"] == len(layer_weights) == cfg["model"]["encoder_layers"]
    assert info["conv_layers"] == len(conv_weights)
    assert (info["embed_dim"], info["ffn_dim"], info["heads"]) == (
        cfg["model"]["encoder_embed_dim"], cfg["model"]["encoder_ffn_embed_dim"], 4)
    assert info["extractor_mode"] == cfg["model"]["extractor_mode"]
    assert info["layer_norm_first"] == cfg["model"]["layer_norm_first"]
    assert info["normalize"] == cfg["task"]["normalize"]
    assert info["parameters"] == sum(v.numel() for v in source["model"].values())
    assert info["num_updates"] == source["optimizer_history"][-1]["num_updates"]
    assert info["optimizer_state"] and info["dictionary_size"] is None


def _plain_types(obj, where="state"):
    if isinstance(obj, dict):
        for k, v in obj.items():
            _plain_types(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _plain_types(v, f"{where}[{i}]")
    else:
        assert isinstance(obj, (str, int, float, bool, type(None), torch.Tensor)), f"{where}: {type(obj)}"


@pytest.mark.parametrize("era", ERAS)
def test_clean_writes_a_plain_file_fairseq_loads(era_files, era, tmp_path, capsys):
    out = tmp_path / "release" / "clean.pt"
    assert cli.main(["clean", str(era_files[era]), str(out)]) == 0
    assert "no optimizer state" in capsys.readouterr().out
    assert os.listdir(out.parent) == ["clean.pt"]  # no temporary file left behind
    clear_allow_list()
    try:  # loads with an empty allow-list: nothing in it but tensors and plain data
        clean = torch.load(out, weights_only=True)
    finally:
        xlsr_plugin.allow_fairseq_checkpoints()
    _plain_types(clean)
    assert clean["args"] is None and clean["last_optimizer_state"] is None
    original = load_checkpoint(str(era_files[era]))
    assert clean["optimizer_history"][-1]["num_updates"] == original["optimizer_history"][-1]["num_updates"]
    assert clean["cfg"]["model"] == OmegaConf.to_container(original["cfg"].model, resolve=True, enum_to_str=True)
    assert "gone_field" not in clean["cfg"]["model"] and "eval_wer" not in clean["cfg"]["task"]
    assert clean["model"].keys() == original["model"].keys()
    assert all(torch.equal(clean["model"][k], original["model"][k]) for k in clean["model"])

    (model,), _, _ = checkpoint_utils.load_model_ensemble_and_task([str(out)])
    assert all(torch.equal(v, clean["model"][k]) for k, v in model.state_dict().items())


def test_bad_input_is_named_with_what_to_do(tmp_path, capsys):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    weights_only = tmp_path / "weights.pt"
    torch.save({"encoder.weight": torch.zeros(2)}, weights_only)
    for path, expected in [(text, "notes.pt: not a checkpoint torch can read"),
                           (weights_only, "weights.pt: not a fairseq checkpoint: expected 'model' and 'cfg'")]:
        assert cli.main(["info", str(path)]) == 2
        assert expected in capsys.readouterr().err
    assert cli.main(["clean", str(text), str(tmp_path / "out.pt")]) == 2
    assert "notes.pt: not a checkpoint" in capsys.readouterr().err and not (tmp_path / "out.pt").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".clean-")] == []

    proc = run_cli(["xlsr-checkpoint", "info", tmp_path / "missing.pt"], check=False)  # the console script
    assert proc.returncode == 2 and "missing.pt: no such checkpoint file" in proc.stdout


def test_extract_reads_every_era_as_the_original(era_files, tiny_checkpoint, shared_multilingual_data, tmp_path):
    """``xlsr-extract`` on each era's file (the same weights, stored the old ways) writes the
    very features it writes from the plugin's own checkpoint, layer by layer."""
    from xlsr_tools import extract

    manifest = str(shared_multilingual_data / "dev_bb.tsv")
    runs = {"original": tiny_checkpoint, **era_files}
    for name, path in runs.items():
        assert extract.main([str(path), manifest, "--out", str(tmp_path / name), "--layers", "cnn,codes,layer_1,final",
                             "--num-workers", "0", "--no-progress"]) == 0
    rows = list(extract.read_index(tmp_path / "original"))
    assert len(rows) == 2
    for era in era_files:
        assert list(extract.read_index(tmp_path / era)) == rows
        for layer in ("cnn", "codes", "layer_1", "final"):
            for row in rows:
                assert np.array_equal(extract.load_features(tmp_path / era, layer, row),
                                      extract.load_features(tmp_path / "original", layer, row)), (era, layer)


def test_to_hf_reads_every_era_as_the_original(era_files, tiny_checkpoint, tmp_path):
    """``xlsr-checkpoint to-hf`` of each era's file gives the original's transformers weights."""
    transformers = pytest.importorskip("transformers")
    from xlsr_tools import hf

    hf.to_hf(tiny_checkpoint, tmp_path / "original")
    want = transformers.Wav2Vec2ForPreTraining.from_pretrained(tmp_path / "original").state_dict()
    for era, path in era_files.items():
        hf.to_hf(path, tmp_path / era)
        got = transformers.Wav2Vec2ForPreTraining.from_pretrained(tmp_path / era).state_dict()
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want), era
