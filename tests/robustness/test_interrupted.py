"""Runs killed with SIGKILL and started again with the same command.

Pre-training and fine-tuning (``fairseq-train`` with the plugin) are killed once a
checkpoint after some update exists and the next update has started; the same command
then resumes from ``checkpoint_last.pt``. ``task.batch_log`` lists the utterances of every
update, so the updates after the resume can be compared, batch for batch, with one
uninterrupted run of the same command (module-scoped: one reference per module), and
the final weights too. A corpus conversion (``xlsr-manifest commonvoice``, MP3 -> FLAC in
a process pool) is killed halfway and re-run: the output equals that of an uninterrupted
run, with no duplicates and no temporary files left.

Every kill goes to the whole process group (data-loader and pool workers included), and
nothing here depends on timing: the tests poll for files, with generous timeouts.
"""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import BIN, PLUGIN, REPO, make_multilingual_data, pretrain_command, run_cli
from xlsr_plugin.checkpoint import read_checkpoint

SAVE_EVERY = 8
MAX_UPDATE = 40  # one utterance a batch: epoch 1 is 21 updates, so the kill lands in epoch 2
KILL_AFTER = 3 * SAVE_EVERY  # kill once update KILL_AFTER + 1 has started (15 before the end)
TIMEOUT = 240
ENV = {"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}  # as conftest.run_cli


def read_batches(path: Path):
    """``task.batch_log``: [(update, utterances)] in file order."""
    out = []
    for line in path.read_text().splitlines(keepends=True):
        if not line.endswith("\n"):  # being written as we read: not a line yet
            break
        update, _, ids = line.rstrip("\n").partition("\t")
        out.append((int(update), ids))
    return out


class Background:
    """A command running beside the test (the machine has two cores): ``wait()`` for it."""

    def __init__(self, args, log: Path):
        self.log = log
        self.proc = start(args, log)

    def wait(self) -> str:
        code = self.proc.wait(timeout=TIMEOUT)
        out = self.log.read_text()
        assert code == 0, f"failed ({code}):\n{out[-6000:]}"
        return out


def start(args, log: Path) -> subprocess.Popen:
    env = dict(os.environ, **ENV)
    return subprocess.Popen(
        [str(BIN / args[0]), *map(str, args[1:])], cwd=REPO, env=env, start_new_session=True,
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )


def kill_when(proc: subprocess.Popen, ready, what: str, log: Path) -> None:
    """SIGKILL ``proc``'s process group once ``ready()`` holds; fail if it ends first."""
    deadline = time.monotonic() + TIMEOUT
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(f"ended ({proc.returncode}) before {what}:\n{log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"no {what} after {TIMEOUT} s:\n{log.read_text()[-4000:]}")
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL


def reached(batch_log: Path, update: int):
    def ready():
        return batch_log.is_file() and any(u >= update for u, _ in read_batches(batch_log))
    return ready


def split_runs(batches):
    """The killed run's lines and the resumed run's (it starts again at a lower update)."""
    for i in range(1, len(batches)):
        if batches[i][0] <= batches[i - 1][0]:
            return batches[:i], batches[i:]
    raise AssertionError("the second run logged no batches")


def checkpoint_updates(path: Path) -> int:
    state = read_checkpoint(path)  # the plugin's vetted reader, not torch's allow-list as conftest left it
    return int(state["optimizer_history"][-1]["num_updates"])


def run_interrupted(command, save: Path, tmp: Path):
    """Start ``command`` (whose batch log is ``save/batches.txt``), SIGKILL it in update
    KILL_AFTER + 1, check the checkpoint it left, run the same command again."""
    batch_log = save / "batches.txt"
    proc = start(command, tmp / "killed.log")
    kill_when(proc, reached(batch_log, KILL_AFTER + 1), f"update {KILL_AFTER + 1}", tmp / "killed.log")
    last = save / "checkpoint_last.pt"
    resumed_from = checkpoint_updates(last)  # loads: not truncated
    assert resumed_from >= KILL_AFTER and resumed_from % SAVE_EVERY == 0
    out = run_cli(command, timeout=TIMEOUT).stdout
    assert f"Loaded checkpoint {last} (epoch" in out and f"@ {resumed_from} updates)" in out, out[-3000:]
    return resumed_from, out


def assert_resumed_like_reference(reference: Path, save: Path, resumed_from: int):
    ref = read_batches(reference / "batches.txt")
    killed, resumed = split_runs(read_batches(save / "batches.txt"))
    assert [u for u, _ in ref] == list(range(1, MAX_UPDATE + 1))
    # the update count goes on from the checkpoint, and the batches are the reference's
    assert [u for u, _ in resumed] == list(range(resumed_from + 1, MAX_UPDATE + 1))
    assert resumed == ref[resumed_from:]
    assert killed == ref[: len(killed)]
    assert checkpoint_updates(save / "checkpoint_last.pt") == MAX_UPDATE
    a = read_checkpoint(reference / "checkpoint_last.pt")["model"]
    b = read_checkpoint(save / "checkpoint_last.pt")["model"]
    assert a.keys() == b.keys()
    differ = {k: float((a[k].float() - b[k].float()).abs().max()) for k in a if not torch.equal(a[k], b[k])}
    assert not differ, f"resumed weights differ (max |diff| per tensor): {differ}"
    assert not list(save.glob("*.tmp"))


# -- pre-training ----------------------------------------------------------------------
def interval_args(save: Path):
    """Checkpoints every SAVE_EVERY updates, one utterance a batch, every batch logged."""
    return ["--max-update", MAX_UPDATE, "--max-tokens", "32000", "--save-interval-updates", SAVE_EVERY,
            "--keep-interval-updates", "1", "--disable-validation", "--batch-log", save / "batches.txt"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_multilingual_data(tmp_path_factory.mktemp("interrupted") / "data")


def pretraining(data: Path, save: Path) -> list:
    """With a learning rate that is not 0 yet after the resume (conftest's schedule decays
    to 0 at update 20), so that the weights tell the resumed updates apart."""
    return pretrain_command(data, save, *interval_args(save), "--total-num-update", 2 * MAX_UPDATE)


@pytest.fixture(scope="module")
def reference_run(data, tmp_path_factory):
    """One uninterrupted pre-training run, started in the background: (save dir, run)."""
    save = tmp_path_factory.mktemp("reference")
    return save, Background(pretraining(data, save), save.parent / "reference.log")


@pytest.fixture(scope="module")
def reference(reference_run) -> Path:
    """The uninterrupted pre-training run, finished: its save dir."""
    save, run = reference_run
    run.wait()
    return save


def test_pretraining_killed_resumes_with_the_same_batches(data, reference_run, tmp_path):
    save = tmp_path / "save"
    resumed_from, _ = run_interrupted(pretraining(data, save), save, tmp_path)
    reference_run[1].wait()
    assert_resumed_like_reference(reference_run[0], save, resumed_from)


# -- fine-tuning -----------------------------------------------------------------------
def add_labels(data: Path) -> None:
    """A phone label line per utterance, and the joint dictionary."""
    rng = np.random.default_rng(0)
    for tsv in data.glob("*_*.tsv"):
        n = len(tsv.read_text().splitlines()) - 1
        tsv.with_suffix(".phn").write_text("".join(" ".join(rng.choice(list("abcd"), 4)) + "\n" for _ in range(n)))
    (data / "dict.phn.txt").write_text("a 10\nb 10\nc 10\nd 10\n")


def finetune_command(data: Path, pretrained: Path, save: Path) -> list:
    return [
        "fairseq-train", data, "--user-dir", PLUGIN, "--task", "xlsr_finetuning", "--labels", "phn",
        "--arch", "xlsr_ctc", "--w2v-path", pretrained, "--criterion", "xlsr_ctc", "--zero-infinity",
        "--optimizer", "adam", "--lr", "0.0005", "--lr-scheduler", "fixed", "--required-batch-size-multiple", "1",
        "--num-workers", "0", "--no-epoch-checkpoints", "--log-format", "simple", "--log-interval", "1",
        "--apply-mask", "--mask-prob", "0.1", "--mask-length", "2", "--seed", "1", "--save-dir", save,
        *interval_args(save),
    ]


def test_finetuning_killed_resumes_with_the_same_batches(reference, tmp_path):
    """From the pre-training reference's model, on labelled data; the uninterrupted run
    goes on beside the interrupted one."""
    data = make_multilingual_data(tmp_path / "data")
    add_labels(data)
    pretrained = reference / "checkpoint_last.pt"
    ref, save = tmp_path / "reference", tmp_path / "save"
    run = Background(finetune_command(data, pretrained, ref), tmp_path / "reference.log")
    resumed_from, _ = run_interrupted(finetune_command(data, pretrained, save), save, tmp_path)
    run.wait()
    assert_resumed_like_reference(ref, save, resumed_from)


# -- checkpoint copies -----------------------------------------------------------------
def test_checkpoint_copy_interrupted_leaves_the_old_file(tmp_path, monkeypatch):
    """fairseq copies the checkpoint it wrote to checkpoint_last.pt; with the plugin that
    copy is atomic: a copy that fails halfway leaves the previous checkpoint_last.pt whole."""
    import xlsr_plugin
    from fairseq.file_io import PathManager

    xlsr_plugin.atomic_checkpoint_copies()  # what importing the plugin did

    new, last = tmp_path / "checkpoint_1_8.pt", tmp_path / "checkpoint_last.pt"
    new.write_bytes(b"new" * 1000)
    last.write_bytes(b"old")

    def half_copy(src, dst, *args, **kwargs):
        Path(dst).write_bytes(Path(src).read_bytes()[:100])
        raise KeyboardInterrupt  # as a kill would stop it

    monkeypatch.setattr(shutil, "copyfile", half_copy)
    with pytest.raises(KeyboardInterrupt):
        PathManager.copy(str(new), str(last), overwrite=True)
    assert last.read_bytes() == b"old" and not list(tmp_path.glob("*.tmp"))
    monkeypatch.undo()
    assert PathManager.copy(str(new), str(last), overwrite=True)
    assert last.read_bytes() == new.read_bytes()


# -- corpus conversion -----------------------------------------------------------------
CLIPS = 400


def make_mp3_corpus(root: Path) -> None:
    """A CommonVoice-like release: CLIPS MP3 clips (links to two files) of one language."""
    clips = root / "es" / "clips"
    clips.mkdir(parents=True)
    t = np.arange(int(0.6 * 48000)) / 48000
    for k, f in enumerate((220.0, 330.0)):
        sf.write(clips / f"src{k}.mp3", (0.2 * np.sin(2 * np.pi * f * t)).astype("float32"), 48000, format="MP3")
    rows = ["client_id\tpath\tsentence\tup_votes"]
    for i in range(CLIPS):
        (clips / f"cv_{i:04d}.mp3").symlink_to(clips / f"src{i % 2}.mp3")
        word = "".join("abcdefghij"[int(d)] for d in f"{i:03d}")
        rows.append(f"spk{i % 5}\tcv_{i:04d}.mp3\thola {word}\t2")
    (root / "es" / "train.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def outputs(out: Path) -> dict:
    """Every file under ``out`` (relative name -> bytes; FLAC as its samples), the
    manifest's root line made relative."""
    files = {}
    for p in sorted(out.rglob("*")):
        if not p.is_file():
            continue
        rel = str(p.relative_to(out))
        if p.suffix == ".flac":
            files[rel] = sf.read(p)[0].tobytes()
        elif p.suffix == ".verified":  # its checksum covers the manifest's absolute root line
            files[rel] = {k: v for k, v in json.loads(p.read_text()).items() if k != "sha256"}
        else:
            files[rel] = p.read_bytes().replace(str(out).encode(), b"<out>")
    return files


def test_conversion_killed_halfway_completes_on_rerun(tmp_path):
    make_mp3_corpus(tmp_path / "cv")
    args = ["xlsr-manifest", "commonvoice", tmp_path / "cv", None, "--splits", "train", "--num-jobs", "2"]
    ref, out = tmp_path / "ref", tmp_path / "out"
    run_cli(args[:3] + [ref] + args[4:], timeout=TIMEOUT)
    expected = outputs(ref)
    assert sum(name.endswith(".flac") for name in expected) == CLIPS

    proc = start(args[:3] + [out] + args[4:], tmp_path / "killed.log")
    kill_when(proc, lambda: len(list(out.rglob("*.flac"))) >= CLIPS // 4, "a quarter of the clips",
              tmp_path / "killed.log")
    assert len(list(out.rglob("*.flac"))) < CLIPS, "not killed halfway: make the corpus larger"
    run_cli(args[:3] + [out] + args[4:], timeout=TIMEOUT)

    got = outputs(out)
    assert not [name for name in got if name.endswith(".tmp")]
    assert got == expected
    manifest = next(name for name in got if name.endswith(".tsv") and name.startswith("train_"))
    lines = got[manifest].decode().splitlines()[1:]
    assert len(lines) == len(set(lines)) == CLIPS
