"""xlsr-analyze probe: the linear frame-level phone probe of frozen representations.

The classifier is checked on planted features (features that encode the phone give no
errors, features that do not give about the majority phone's error); the labels against
hand-placed segments; the whole command on tone "phones" (each phone a tone of its own
frequency, the held-out split at other amplitudes) through a randomly initialised tiny
model, whose convolutions already separate tones; and its errors.
"""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from fairseq import options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from omegaconf import OmegaConf

from conftest import PLUGIN, TINY_MODEL_ARGS
from xlsr_demo.alignments import SILENCE, alignment_path, write_alignments
from xlsr_tools import analyze, probe
from xlsr_tools.probe_table import read_probe_tsv

TONES = {"a": 300.0, "i": 900.0, "u": 2000.0, "s": None}  # None: noise


def test_frame_label_is_the_phone_at_the_frame_centre():
    segments = [(0.0, 0.03, SILENCE), (0.03, 0.05, "a"), (0.05, 0.1, "b")]
    # stride 320, field 400 at 16 kHz: centres at 12.5, 32.5, 52.5, 72.5, 92.5, 112.5 ms
    labels = probe.frame_labels(segments, 6, 320, 400, 16000)
    assert labels.tolist() == [SILENCE, "a", "b", "b", "b", SILENCE]


def test_probe_on_planted_features():
    rng = np.random.default_rng(0)
    phones = np.array(list("abcdef"), dtype=object)
    y_train, y_test = phones[rng.integers(6, size=600)], phones[rng.integers(6, size=300)]
    code = {p: rng.standard_normal(16) * 3 for p in phones}
    encode = lambda y: np.stack([code[p] for p in y]) + rng.standard_normal((len(y), 16))  # noqa: E731
    fitted = probe.fit_probe(encode(y_train).astype(np.float32), y_train, steps=50)
    majority = max(set(y_train.tolist()), key=y_train.tolist().count)
    good = probe.score(fitted, encode(y_test).astype(np.float32), y_test, majority)
    assert good["error"] < 2.0 and good["frames"] == 300 and good["unseen"] == 0
    noise = rng.standard_normal((600, 16)).astype(np.float32)
    fitted = probe.fit_probe(noise, y_train, steps=50)
    chance = probe.score(fitted, rng.standard_normal((300, 16)).astype(np.float32), y_test, majority)
    assert chance["error"] > 70.0 and abs(chance["error"] - chance["majority_error"]) < 12.0
    # a test phone the training frames never had is an error, and counted
    y_new = y_test.copy()
    y_new[:30] = "z"
    assert probe.score(fitted, noise[:300], y_new, majority)["unseen"] == 30
    with pytest.raises(probe.ProbeError, match="at least two phones"):
        probe.fit_probe(noise[:10], np.array(["a"] * 10, dtype=object))


def _tone_corpus(root, lang="xx"):
    """Manifests train/dev/test of ``lang`` whose utterances are runs of tone phones, and their
    alignments; dev/test are quieter (another "speaker")."""
    rng = np.random.default_rng(1)
    audio_dir = root / "data" / "audio" / lang
    audio_dir.mkdir(parents=True)
    for split, gain, count in (("train", 0.3, 8), ("dev", 0.1, 3), ("test", 0.12, 3)):
        lines, clips = [str(audio_dir)], []
        for k in range(count):
            t, pieces, segments = 0.1, [np.zeros(1600)], [(0.0, 0.1, SILENCE)]
            for p in rng.choice(list(TONES), size=10):
                n = int(rng.integers(1600, 3200))
                f = TONES[p]
                x = rng.standard_normal(n) * 0.5 if f is None else np.sin(2 * np.pi * f * np.arange(n) / 16000)
                pieces.append(gain * x)
                segments.append((t, t + n / 16000, str(p)))
                t += n / 16000
            x = np.concatenate(pieces).astype(np.float32)
            name = f"{split}_{k}.flac"
            sf.write(audio_dir / name, x, 16000)
            lines.append(f"{name}\t{len(x)}")
            clips.append((name, [(round(s, 3), round(e, 3), p) for s, e, p in segments]))
        (root / "data" / f"{split}_{lang}.tsv").write_text("\n".join(lines) + "\n")
        write_alignments(alignment_path(root / "release", lang, split), clips)
    return root / "data", root / "release"


def _random_checkpoint(root):
    """A pre-training checkpoint of the tiny model at its (seeded) initialisation."""
    args = options.parse_args_and_arch(options.get_training_parser(), [
        str(root), "--user-dir", str(PLUGIN), "--task", "xlsr_pretraining", "--arch", "xlsr_base",
        "--criterion", "xlsr_wav2vec", *TINY_MODEL_ARGS])
    cfg = convert_namespace_to_omegaconf(args)
    torch.manual_seed(0)
    model = tasks.setup_task(cfg.task).build_model(cfg.model)
    path = root / "init.pt"
    torch.save({"args": None, "cfg": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
                "model": model.state_dict(), "extra_state": {},
                "optimizer_history": [{"criterion_name": "Wav2vecCriterion", "optimizer_name": "Adam",
                                       "lr_scheduler_state": {}, "num_updates": 0}]}, path)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    data, release = _tone_corpus(root)
    return data, release, _random_checkpoint(root)


def test_cli_probes_every_layer_of_a_frozen_model(corpus, tmp_path):
    data, release, ckpt = corpus
    out = tmp_path / "out"
    assert analyze.main(["probe", f"init={ckpt}", "--data", str(data), "--alignments", str(release),
                         "--languages", "xx", "--out", str(out), "--steps", "30", "--no-progress"]) == 0
    rows = read_probe_tsv(out / "probe.tsv")
    layers = ["cnn", "quantized", "layer_0", "layer_1", "layer_2", "final"]
    assert [(r["layer"], r["split"]) for r in rows] == [(l, s) for l in layers for s in ("dev", "test")]
    assert {r["name"] for r in rows} == {"init"} and {r["classes"] for r in rows} == {len(TONES)}
    meta = json.loads((out / "probe.json").read_text(encoding="utf-8"))
    frames = meta["frames"]["xx"]
    assert frames["dev"]["utterances"] == 3 and frames["dev"]["silence_frames"] >= 3  # the leading 0.1 s
    assert all(r["frames"] == frames[r["split"]]["frames"] for r in rows)
    cnn = next(r for r in rows if r["layer"] == "cnn" and r["split"] == "test")
    assert cnn["error"] < 0.5 * cnn["majority_error"]  # tones are told apart at another loudness


def test_cli_errors_name_the_file_line_and_fix(corpus, tmp_path, capsys):
    data, release, ckpt = corpus
    base = ["--data", str(data), "--alignments", str(release), "--languages", "xx", "--out", str(tmp_path / "o")]
    assert analyze.main(["probe", str(ckpt), *base, "--layers", "layer_9"]) == 2
    assert "unknown representation 'layer_9'" in capsys.readouterr().err
    assert analyze.main(["probe", str(ckpt), *base, "--layers", "codes"]) == 2
    assert "codebook indices" in capsys.readouterr().err
    assert analyze.main(["probe", str(tmp_path / "nope.pt"), *base]) == 2
    assert "nope.pt: no such checkpoint" in capsys.readouterr().err
    assert analyze.main(["probe", str(ckpt), *base[:-2], "--languages", "yy", "--out", str(tmp_path / "o")]) == 2
    assert "train_yy.tsv: no such manifest" in capsys.readouterr().err
    # a manifest line without an alignment is named before any model work
    broken = tmp_path / "release"
    for split in ("train", "dev", "test"):
        src = alignment_path(release, "xx", split)
        lines = src.read_text(encoding="utf-8").splitlines()
        if split == "dev":
            lines = [l for l in lines if not l.startswith("dev_1\t")]
        alignment_path(broken, "xx", split).parent.mkdir(parents=True, exist_ok=True)
        alignment_path(broken, "xx", split).write_text("\n".join(lines) + "\n", encoding="utf-8")
    base[3] = str(broken)
    assert analyze.main(["probe", str(ckpt), *base]) == 2
    err = capsys.readouterr().err
    assert "dev_xx.tsv line 3: dev_1.flac has no phone alignment" in err
    alignment_path(broken, "xx", "dev").unlink()
    assert analyze.main(["probe", str(ckpt), *base]) == 2
    assert "dev.tsv: no such alignment file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
