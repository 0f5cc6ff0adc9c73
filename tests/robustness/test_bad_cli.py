"""Bad input through the console scripts users run (issue 14): the message a user reads
last names the file, the line and what to do, with no traceback from inside fairseq;
or the run goes on and its log counts and names what it skipped.

All commands run at once (``run_clis``, one per core) in one module fixture: each costs
mostly its imports, and none trains more than 2 updates of the tiny model."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from omegaconf import OmegaConf

from conftest import PLUGIN, REPO, pretrain_command, run_clis, write_language

SR = 16000


def tail(text: str, n: int = 12) -> str:
    return "\n".join(text.rstrip().splitlines()[-n:])


def hydra(recipe: str, data: Path, out: Path, *overrides, config_dir: Path = None) -> list:
    return ["fairseq-hydra-train", "--config-dir", config_dir or REPO / "recipes" / recipe, "--config-name", "tiny",
            f"task.data={data}", f"common.user_dir={PLUGIN}", f"checkpoint.save_dir={out / 'ckpt'}",
            f"hydra.run.dir={out / 'hydra'}", *overrides]


def _messy_corpus(data: Path) -> Path:
    """Four good clips, plus: NaN samples (a header check cannot see them), a 100-sample
    clip, a stereo file and a duplicated line."""
    write_language(data, "train", "aa", [1.0] * 6)
    write_language(data, "dev", "aa", [1.0, 1.0])
    audio = data / "audio" / "aa"
    sf.write(audio / "train_0.flac", np.full(SR, np.nan, dtype="float32"), SR, format="WAV", subtype="FLOAT")
    sf.write(audio / "train_1.flac", np.zeros(100, dtype="float32"), SR)
    sf.write(audio / "train_2.flac", 0.1 * np.random.default_rng(0).standard_normal((SR, 2)).astype("float32"), SR)
    manifest = data / "train_aa.tsv"
    lines = manifest.read_text().splitlines()
    lines[2] = "train_1.flac\t100"
    manifest.write_text("\n".join(lines + [lines[4]]) + "\n")
    return data


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The fairseq CLIs, two at a time: the messy pre-training run first, whose checkpoint
    the fine-tuning command needs (fairseq-train builds the model before the splits)."""
    root = tmp_path_factory.mktemp("badcli")
    messy = _messy_corpus(root / "messy")

    # pre-training (fairseq-train, argparse): a manifest whose line 1 is no folder
    moved = root / "moved"
    write_language(moved, "train", "aa", [1.0] * 2)
    write_language(moved, "dev", "aa", [1.0])
    for m in moved.glob("*.tsv"):
        m.write_text(m.read_text().replace(str(moved / "audio" / "aa"), str(root / "nowhere"), 1))

    # fine-tuning data with an empty label line in dev; files that are no checkpoints
    ft = root / "ft"
    for split, n in (("train", 3), ("dev", 2)):
        write_language(ft, split, "aa", [1.0] * n)
        (ft / f"{split}_aa.phn").write_text("a e\n\n" if split == "dev" else "a e\ne a\na a\n")
    (ft / "dict.phn.txt").write_text("a 1\ne 1\n")
    (root / "notes.pt").write_text("not a checkpoint\n")

    first = {
        # a messy corpus trains 2 updates, every oddity counted and named in the log
        "messy": hydra("pretraining", messy, root / "o_messy", "optimization.max_update=2"),
        "root": pretrain_command(moved, root / "o_root", "--max-update", "1"),
    }
    then = {
        "empty_label": hydra("finetuning", ft, root / "o_ft",
                             f"model.w2v_path={root / 'o_messy' / 'ckpt' / 'checkpoint_last.pt'}"),
        "generate": ["fairseq-generate", ft, "--user-dir", PLUGIN, "--task", "xlsr_finetuning",
                     "--labels", "phn", "--path", root / "notes.pt", "--gen-subset", "dev_aa",
                     "--max-tokens", "100000", "--num-workers", "0"],
    }
    procs = dict(zip(first, run_clis(list(first.values()), check=False)))
    procs.update(zip(then, run_clis(list(then.values()), check=False)))
    yield procs, root
    shutil.rmtree(root, ignore_errors=True)


def test_messy_pretraining_corpus_trains_and_the_log_counts_and_names_each_oddity(runs):
    (procs, root) = runs
    p = procs["messy"]
    assert p.returncode == 0, tail(p.stdout, 40)
    audio = root / "messy" / "audio" / "aa"
    out = p.stdout
    floor = OmegaConf.load(REPO / "recipes" / "pretraining" / "tiny.yaml").task.min_sample_size
    assert f"1 clip(s) shorter than task.min_sample_size ({floor} samples) skipped, e.g. line 3: {audio / 'train_1.flac'} (100 samples)" in out
    assert "1 duplicate line(s)" in out and "train_3.flac x2" in out
    assert f"1 file(s) have more than one channel, e.g. line 4: {audio / 'train_2.flac'} (2 channels)" in out
    assert f"train_aa.tsv:2: {audio / 'train_0.flac'}: 16000 NaN/Inf sample(s)" in out
    assert "(load failure 1 of at most 10 in this manifest" in out
    assert "done training" in out


def test_a_root_line_that_is_no_folder_stops_fairseq_train_with_line_1_last(runs):
    (procs, root) = runs
    p = procs["root"]
    assert p.returncode != 0 and "Traceback" not in p.stdout
    assert p.stdout.rstrip().splitlines()[-1].startswith(f"{root / 'moved'}/dev_aa.tsv:1: the audio root")
    assert "XLSR_FULL_ERROR=1" in tail(p.stdout, 3)


def test_an_empty_label_line_stops_hydra_finetuning_before_training(runs):
    (procs, root) = runs
    p = procs["empty_label"]
    assert p.returncode != 0 and "Traceback" not in p.stdout
    last = tail(p.stdout, 6)
    assert f"{root / 'ft' / 'dev_aa.phn'}: 1 empty label line(s), at line(s) 2" in last
    assert "num_updates" not in p.stdout


def test_generate_says_the_path_is_no_checkpoint_on_its_last_line(runs):
    (procs, root) = runs
    p = procs["generate"]
    assert p.returncode != 0
    assert tail(p.stdout, 1).endswith(f"{root / 'notes.pt'}: not a checkpoint torch can read "
                                      "(Unsupported operand 110); expected a fairseq .pt file written by torch.save")


# -- the other console scripts, in-process through their main(argv) ---------------------

@pytest.mark.parametrize("content,said", [
    (b"", "(an empty file)"),
    (b"hello\n", "(KeyError while unpickling)"),
])
def test_xlsr_checkpoint_says_the_file_is_no_checkpoint(tmp_path, capsys, content, said):
    from xlsr_tools import checkpoint as checkpoint_cli

    (tmp_path / "x.pt").write_bytes(content)
    assert checkpoint_cli.main(["info", str(tmp_path / "x.pt")]) != 0
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"xlsr-checkpoint info: error: {tmp_path / 'x.pt'}: not a checkpoint torch can read {said}; " \
                  "expected a fairseq .pt file written by torch.save"


def test_a_truncated_checkpoint_is_named_as_truncated(tmp_path):
    import torch

    from xlsr_plugin.checkpoint import NotACheckpointError, read_checkpoint

    torch.save({"model": {"w": torch.zeros(1000)}, "cfg": {"model": {}}}, tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(NotACheckpointError, match=r"cut.pt: not a checkpoint torch can read \(truncated or damaged"):
        read_checkpoint(str(tmp_path / "cut.pt"))
    torch.save({"a": 1}, tmp_path / "other.pt")
    with pytest.raises(NotACheckpointError, match=r"other.pt: not a fairseq checkpoint: expected 'model' and 'cfg'"):
        read_checkpoint(str(tmp_path / "other.pt"))


def test_xlsr_manifest_names_a_missing_folder(tmp_path, capsys):
    from manifests import cli

    assert cli.main(["folder", str(tmp_path / "nope"), str(tmp_path / "out"), "--language", "aa"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"xlsr-manifest folder: error: {tmp_path / 'nope'}: no such directory (the corpus folder to scan for audio)")


def test_xlsr_manifest_rejects_a_0_byte_mp3_as_empty_and_keeps_the_good_one(tmp_path, capsys):
    from manifests import cli

    mp3 = tmp_path / "mp3s"
    mp3.mkdir()
    sf.write(mp3 / "good.mp3", 0.1 * np.sin(np.arange(SR) / 5).astype("float32"), SR, format="MP3")
    (mp3 / "empty.mp3").write_bytes(b"")
    assert cli.main(["folder", str(mp3), str(tmp_path / "out"), "--language", "aa", "--ext", "mp3",
                     "--valid-percent", "0"]) == 0
    out = capsys.readouterr().out
    assert "1 rejected (empty audio 1)" in out and "does not exist" not in out
    rejects = (tmp_path / "out" / "train_aa.rejects.tsv").read_text()
    assert "empty.mp3" in rejects and "0-byte file" in rejects
    assert (tmp_path / "out" / "train_aa.tsv").read_text().splitlines()[1].startswith("good.mp3\t")


@pytest.mark.parametrize("line,said", [
    ("  bogus_key: 1\n", "Key 'bogus_key' not in 'XlsrPretrainingConfig'"),
    ("  sampling_alpha: half\n", "Value 'half' of type 'str' could not be converted to Float"),
])
def test_a_recipe_with_an_unknown_key_or_a_wrong_type_names_the_key(tmp_path, line, said):
    """As fairseq-hydra-train composes a recipe and builds its task (``tasks.setup_task``
    merges the YAML into the registered dataclass): the error names key and class. (Its
    CLI prints hydra's shortened traceback above this message, which ends its output but
    for hydra's one-line HYDRA_FULL_ERROR hint; the plugin is not called before it.)"""
    from fairseq import tasks
    from fairseq.dataclass.configs import FairseqConfig
    from omegaconf.errors import OmegaConfBaseException

    text = (REPO / "recipes" / "pretraining" / "tiny.yaml").read_text()
    text = text.replace("  sampling_alpha: 0.5  # [paper] §3.2\n", "").replace("task:\n", "task:\n" + line, 1)
    (tmp_path / "tiny.yaml").write_text(text)
    write_language(tmp_path / "data", "train", "aa", [1.0])
    cfg = OmegaConf.merge(OmegaConf.structured(FairseqConfig), OmegaConf.load(tmp_path / "tiny.yaml"),
                          OmegaConf.from_dotlist([f"task.data={tmp_path / 'data'}"]))
    with pytest.raises(OmegaConfBaseException) as e:
        tasks.setup_task(cfg.task)
    assert said in str(e.value) and line.split(":")[0].strip() in str(e.value)


def test_demo_scripts_refuse_bad_arguments_before_any_work(tmp_path, capsys):
    from xlsr_demo import pipeline, synth

    assert synth.main(["--out", str(tmp_path / "s"), "--languages", "es", "--minutes", "0"]) != 0
    assert capsys.readouterr().err.strip().startswith("xlsr-synth: error: minutes per language must be > 0")
    with pytest.raises(SystemExit) as e:
        pipeline.main(["--out", str(tmp_path / "d"), "--low-resource", "es=5"])
    assert e.value.code == 2 and "--low-resource" in capsys.readouterr().err
    assert not (tmp_path / "s").exists() and not (tmp_path / "d").exists()
