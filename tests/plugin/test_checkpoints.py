"""Old-format checkpoints load (safely), keep their own settings, and seed pre-training."""

import os
import pickle

import pytest
import torch

import xlsr_plugin  # noqa: F401
from conftest import pretrain_cli
from legacy import make_legacy_checkpoint
from xlsr_plugin.checkpoint import UnsafeCheckpointError, load_checkpoint, stored_model_config


@pytest.fixture(scope="module")
def tiny_checkpoint(shared_multilingual_data, tmp_path_factory):
    save = tmp_path_factory.mktemp("pre")
    pretrain_cli(shared_multilingual_data, save, "--max-update", "2", "--encoder-attention-heads", "4")
    return save / "checkpoint_last.pt"


def test_torch_alone_refuses_the_legacy_format(tiny_checkpoint, tmp_path):
    legacy = tmp_path / "legacy.pt"
    make_legacy_checkpoint(tiny_checkpoint, legacy)
    torch.serialization.clear_safe_globals()
    try:
        with pytest.raises(pickle.UnpicklingError):
            torch.load(legacy)
    finally:
        xlsr_plugin.allow_fairseq_checkpoints()
    state = load_checkpoint(str(legacy))
    model_cfg = stored_model_config(state, str(legacy))
    assert model_cfg._name == "wav2vec2" and model_cfg.encoder_attention_heads == 4


def test_continued_pretraining_from_legacy_checkpoint(shared_multilingual_data, tiny_checkpoint, tmp_path):
    legacy = tmp_path / "legacy.pt"
    make_legacy_checkpoint(tiny_checkpoint, legacy)
    save = tmp_path / "cont"
    # The recipe says 2 heads; the checkpoint has 4 and must win.
    out = pretrain_cli(shared_multilingual_data, save, "--max-update", "2", "--init-checkpoint", legacy,
                       "--encoder-attention-heads", "2").stdout
    assert "encoder_attention_heads: 2 -> 4" in out
    state = torch.load(save / "checkpoint_last.pt", weights_only=False)
    assert state["cfg"]["model"]["encoder_attention_heads"] == 4
    start = torch.load(legacy, weights_only=False)["model"]
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
