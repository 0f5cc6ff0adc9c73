"""Pre-training through fairseq's CLIs: train, checkpoint, resume; hydra recipe; 2 ranks."""

import os
import re
import subprocess

import pytest
import torch

from conftest import (
    BIN, PLUGIN, REPO, TINY_MODEL_ARGS, TINY_TRAIN_ARGS, free_port, pretrain_cli, readme_command, run_cli,
    write_language,
)
from manifests.formats import verified_rate


def _updates(ckpt):
    return torch.load(ckpt, weights_only=False)["optimizer_history"][-1]["num_updates"]


def test_fairseq_train_trains_saves_and_resumes(multilingual_data, tmp_path):
    save = tmp_path / "ckpt"
    out = pretrain_cli(multilingual_data, save, "--max-update", "4", "--sampling-alpha", "0.5").stdout
    assert "language sampling, alpha=0.5" in out
    for lang in ("aa", "bb", "cc"):  # per-language validation metrics
        assert re.search(rf"valid on 'dev' subset.*loss_{lang} [\d.]+.*accuracy_{lang}", out)
    # mixed-language training batches (the default): no per-language training metrics
    assert re.search(r"train_inner .* loss=", out)
    assert not re.search(r"train_inner .*(loss|accuracy)_(aa|bb|cc)=", out)
    assert _updates(save / "checkpoint_last.pt") == 4

    out = pretrain_cli(multilingual_data, save, "--max-update", "7", "--language-batches", "one").stdout
    assert "Loaded checkpoint" in out and "@ 4 updates" in out
    assert out.count("header check skipped") == 6  # train and dev of 3 languages, stamped by the first start
    assert _updates(save / "checkpoint_last.pt") == 7
    # one language per batch: each training batch is logged under its language
    assert re.search(r"train_inner .*loss_(aa|bb|cc)=[\d.]+, accuracy_(aa|bb|cc)=", out)


def test_readme_train_command_validates_every_language(tmp_path):
    """The README's fairseq-train command as printed (fairseq's default batch multiple of 8)
    on dev sets of 1, 7 and 9 utterances: each language must be validated."""
    data = tmp_path / "data"
    for lang, n in (("aa", 1), ("bb", 7), ("cc", 9)):
        write_language(data, "train", lang, [1.0] * 6)
        write_language(data, "dev", lang, [1.0] * n)
    cmd = readme_command("fairseq-train", {"/data/manifests": data, "xlsr_plugin": PLUGIN})
    out = run_cli([*cmd, *TINY_MODEL_ARGS, "--lr-scheduler", "polynomial_decay", "--warmup-updates", "1",
                   "--total-num-update", "2", "--max-update", "2", "--num-workers", "0", "--valid-subset", "dev",
                   "--log-format", "simple", "--max-sample-size", "32000", "--no-save"]).stdout
    valid = [line for line in out.splitlines() if "valid on 'dev' subset" in line]
    assert valid, out[-3000:]
    for lang in ("aa", "bb", "cc"):
        assert re.search(rf"loss_{lang} [\d.]+", valid[-1]), valid[-1]


def test_same_seed_same_weights(multilingual_data, tmp_path):
    """Masks, distractors, crops and the language draw all follow common.seed: two runs
    end with identical weights (fairseq alone draws masks from fresh OS entropy)."""
    states = []
    for run in ("a", "b"):
        pretrain_cli(multilingual_data, tmp_path / run, "--max-update", "4")
        states.append(torch.load(tmp_path / run / "checkpoint_last.pt", weights_only=False)["model"])
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_hydra_tiny_recipe_trains_and_resumes(multilingual_data, tmp_path):
    run = tmp_path / "run"
    args = ["fairseq-hydra-train", "--config-dir", REPO / "recipes/pretraining", "--config-name", "tiny",
            f"task.data={multilingual_data}", f"common.user_dir={PLUGIN}", f"hydra.run.dir={run}",
            f"checkpoint.save_dir={run}/ckpt", "optimization.max_update=4"]
    run_cli(args)
    assert _updates(run / "ckpt/checkpoint_last.pt") == 4
    out = run_cli(args[:-1] + ["optimization.max_update=6"]).stdout
    assert "Loaded checkpoint" in out
    assert _updates(run / "ckpt/checkpoint_last.pt") == 6


def test_two_process_gloo_training(multilingual_data, tmp_path):
    """fairseq's own distributed engine on CPU: two ranks, gloo, one shared checkpoint."""
    outs = _gloo_ranks([multilingual_data, "--user-dir", PLUGIN, "--task", "xlsr_pretraining",
                        "--arch", "xlsr_base", "--criterion", "xlsr_wav2vec", *TINY_MODEL_ARGS, *TINY_TRAIN_ARGS,
                        "--save-dir", tmp_path / "ckpt", "--max-update", "3"])
    assert _updates(tmp_path / "ckpt/checkpoint_last.pt") == 3
    # the ranks shared the audio check (train_aa: 12 lines, 6 read by rank 0) and stamped it
    assert re.search(r"train_aa.tsv: 12 utterances, 6 audio headers checked here", outs[0])
    assert all(verified_rate(p) == 16000 for p in multilingual_data.glob("*.tsv"))


def _gloo_ranks(args, world_size=2):
    """Run ``fairseq-train args`` as ``world_size`` gloo processes; their outputs."""
    init = f"tcp://127.0.0.1:{free_port()}"
    procs = [
        subprocess.Popen(
            [str(BIN / "fairseq-train"), *map(str, args), "--cpu", "--distributed-world-size", str(world_size),
             "--distributed-backend", "gloo", "--ddp-backend", "legacy_ddp", "--distributed-init-method", init,
             "--distributed-rank", str(rank), "--distributed-no-spawn"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
            env=dict(os.environ, OMP_NUM_THREADS="1"),  # as run_cli: the same arithmetic as one process
        )
        for rank in range(world_size)
    ]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * world_size, outs[-1][-3000:] + outs[0][-3000:]
    assert f"training on {world_size} devices" in outs[0]
    return outs


def _valid_metrics(out: str) -> dict:
    line = [l for l in out.splitlines() if "valid on 'dev' subset" in l][-1]
    return {k: float(v) for k, v in re.findall(r"\| ((?:loss|accuracy)_[a-z]\w*) ([\d.]+)", line)}


def test_per_language_validation_is_the_same_on_two_ranks(multilingual_data, tmp_path):
    """dev is one batch per language (aa, cc on rank 0, bb on rank 1) and validation is
    seeded per batch: per-language loss and accuracy of 2 gloo ranks equal one process's
    (learning rate 0 keeps the seeded initial weights in both runs)."""
    args = [multilingual_data, "--user-dir", PLUGIN, "--task", "xlsr_pretraining", "--arch", "xlsr_base",
            "--criterion", "xlsr_wav2vec", *TINY_MODEL_ARGS, *TINY_TRAIN_ARGS, "--lr", "0.0",
            "--max-update", "1", "--no-save", "--save-dir", tmp_path / "ckpt"]
    alone = _valid_metrics(run_cli(["fairseq-train", *args]).stdout)
    assert {k.split("_")[1] for k in alone} == {"aa", "bb", "cc"}
    assert _valid_metrics(_gloo_ranks(args)[0]) == alone


@pytest.fixture
def bad_audio_data(multilingual_data):
    import numpy as np
    import soundfile as sf

    audio = multilingual_data / "audio" / "bb"
    (audio / "empty.flac").write_bytes(b"")
    (audio / "garbage.flac").write_bytes(b"not audio at all" * 10)
    sf.write(audio / "narrowband.flac", np.zeros(8000, dtype="float32"), 8000)
    tsv = multilingual_data / "train_bb.tsv"
    tsv.write_text(tsv.read_text() + "missing.flac\t16000\nempty.flac\t16000\n"
                   "garbage.flac\t16000\nnarrowband.flac\t8000\n")
    return multilingual_data


def test_bad_audio_is_reported_before_training(bad_audio_data, tmp_path):
    out = pretrain_cli(bad_audio_data, tmp_path / "ckpt", "--max-update", "2", check=False)
    assert out.returncode != 0
    text = out.stdout
    tsv = bad_audio_data / "train_bb.tsv"
    assert "4 bad line(s)" in text and "language 'bb'" in text
    assert f"{tsv}:8:" in text and "missing.flac: file not found" in text
    assert f"{tsv}:9:" in text and "file is empty" in text
    assert f"{tsv}:10:" in text and "unreadable audio" in text
    assert f"{tsv}:11:" in text and "sample rate 8000 Hz" in text
    assert "Start iterating over samples" not in text  # nothing trained


def test_language_without_utterances_is_named(multilingual_data, tmp_path):
    (multilingual_data / "train_cc.tsv").write_text(str(multilingual_data / "audio") + "\n")
    out = pretrain_cli(multilingual_data, tmp_path / "ckpt", "--max-update", "2", check=False)
    assert out.returncode != 0 and "language 'cc' has no utterances" in out.stdout


def test_alpha_outside_unit_interval_is_refused(multilingual_data, tmp_path):
    out = pretrain_cli(multilingual_data, tmp_path / "ckpt", "--sampling-alpha", "1.5", check=False)
    assert out.returncode != 0 and "alpha must be in [0, 1]" in out.stdout
    assert "Start iterating over samples" not in out.stdout


def test_logging_outputs_have_the_same_keys_for_every_language():
    """fairseq sums summable logging outputs across ranks by position: batches of different
    languages (on different ranks) must give the same keys in the same order."""
    from types import SimpleNamespace

    from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Config, Wav2Vec2Model

    from xlsr_plugin.criterions.xlsr_wav2vec import XlsrWav2vecCriterion, XlsrWav2vecCriterionConfig

    torch.manual_seed(0)
    model = Wav2Vec2Model(Wav2Vec2Config(
        conv_feature_layers="[(8, 10, 5)] + [(8, 3, 2)] * 4 + [(8, 2, 2)] * 2", encoder_layers=1,
        encoder_embed_dim=16, encoder_ffn_embed_dim=16, encoder_attention_heads=1, final_dim=8,
        latent_vars=4, conv_pos=4, conv_pos_groups=2, num_negatives=2, mask_prob=0.3, mask_length=2,
        quantize_targets=True,
    )).eval()
    criterion = XlsrWav2vecCriterion(XlsrWav2vecCriterionConfig(), SimpleNamespace(languages=["aa", "bb", "cc"]))
    keys = []
    for lang in (0, 2):
        sample = {"net_input": {"source": torch.randn(2, 8000)}, "id": torch.arange(2), "lang": torch.tensor([lang] * 2)}
        with torch.no_grad():
            _, _, log = criterion.forward(model, sample)
        keys.append(list(log))
        assert log[f"_xlsr:{'aa' if lang == 0 else 'cc'}:batches"] == 1 and log["_xlsr:bb:batches"] == 0
    assert keys[0] == keys[1]
