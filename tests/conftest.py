"""Shared fixtures: small multilingual corpora made on the spot, and the fairseq CLIs.

Audio here is synthetic (noise bursts and tones, 16 kHz FLAC): enough to exercise
manifests, sampling, training loops and checkpoints in seconds. Tests that need
speech synthesize it with espeak-ng themselves.
"""

import importlib.util
import os
import socket
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PLUGIN = REPO / "xlsr_plugin"

# A model small enough to train a few updates on CPU in seconds.
TINY_MODEL_ARGS = [
    "--encoder-layers", "2", "--encoder-embed-dim", "64", "--encoder-ffn-embed-dim", "128",
    "--encoder-attention-heads", "2", "--final-dim", "32", "--latent-vars", "16",
    "--conv-feature-layers", "[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2",
    "--conv-pos", "16", "--conv-pos-groups", "4", "--num-negatives", "10",
]
TINY_TRAIN_ARGS = [
    "--optimizer", "adam", "--lr", "0.0005", "--lr-scheduler", "polynomial_decay",
    "--warmup-updates", "2", "--total-num-update", "20", "--max-tokens", "64000",
    "--required-batch-size-multiple", "1", "--num-workers", "0", "--no-epoch-checkpoints",
    "--valid-subset", "dev",
    "--log-format", "simple", "--log-interval", "1", "--max-sample-size", "32000", "--seed", "1",
]


def write_language(data: Path, split: str, lang: str, durations, seed: int = 0) -> Path:
    """Write ``len(durations)`` noisy clips and the manifest ``<split>_<lang>.tsv``."""
    rng = np.random.default_rng(zlib.crc32(f"{split}/{lang}/{seed}".encode()))
    audio = data / "audio" / lang
    audio.mkdir(parents=True, exist_ok=True)
    lines = [str(audio)]
    for i, dur in enumerate(durations):
        n = int(16000 * dur)
        t = np.arange(n) / 16000
        x = 0.05 * rng.standard_normal(n) + 0.1 * np.sin(2 * np.pi * rng.uniform(100, 800) * t)
        name = f"{split}_{i}.flac"
        sf.write(audio / name, x.astype("float32"), 16000)
        lines.append(f"{name}\t{n}")
    path = data / f"{split}_{lang}.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def make_multilingual_data(data: Path) -> Path:
    """Three languages with unequal amounts of audio (aa >> bb > cc), train + dev."""
    for lang, n, dur in [("aa", 12, 1.5), ("bb", 6, 1.0), ("cc", 3, 1.2)]:
        write_language(data, "train", lang, [dur] * n)
        write_language(data, "dev", lang, [1.0, 1.2])
    return data


@pytest.fixture
def multilingual_data(tmp_path) -> Path:
    """A fresh corpus per test (tests may break it on purpose)."""
    return make_multilingual_data(tmp_path / "data")


@pytest.fixture(scope="session")
def shared_multilingual_data(tmp_path_factory) -> Path:
    """One corpus for the session: read it, never modify it."""
    return make_multilingual_data(tmp_path_factory.mktemp("shared") / "data")


def run_cli(args, cwd=None, env_extra=None, check=True, timeout=300) -> subprocess.CompletedProcess:
    """Run a console script of this venv (``fairseq-train``, ``xlsr-manifest``, ...)."""
    exe = str(BIN / args[0])
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", **(env_extra or {}))
    proc = subprocess.run(
        [exe, *map(str, args[1:])], cwd=cwd or REPO, env=env, timeout=timeout,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{args[0]} failed ({proc.returncode}):\n{proc.stdout[-6000:]}")
    return proc


def run_clis(commands, check=True) -> list:
    """Several :func:`run_cli` commands at once, one per CPU core: independent runs whose
    time is mostly start-up (imports) finish in a fraction of the time one after another."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return list(pool.map(lambda args: run_cli(args, check=check), commands))


def pretrain_command(data: Path, save_dir: Path, *extra) -> list:
    """``fairseq-train --user-dir xlsr_plugin --task xlsr_pretraining`` with a tiny model."""
    return ["fairseq-train", data, "--user-dir", PLUGIN, "--task", "xlsr_pretraining",
            "--arch", "xlsr_base", "--criterion", "xlsr_wav2vec", *TINY_MODEL_ARGS,
            *TINY_TRAIN_ARGS, "--save-dir", save_dir, *extra]


def pretrain_cli(data: Path, save_dir: Path, *extra, check=True) -> subprocess.CompletedProcess:
    """Run :func:`pretrain_command`."""
    return run_cli(pretrain_command(data, save_dir, *extra), check=check)


def readme_command(program: str, replace: dict) -> list:
    """The README's first ``program ...`` command (continuation lines joined, up to a
    ``...``), split like a shell would, with its placeholder paths replaced."""
    import shlex

    text = (REPO / "README.md").read_text(encoding="utf-8").replace("\\\n", " ")
    line = next(l.strip() for l in text.splitlines() if l.strip().startswith(program + " "))
    words = shlex.split(line.split("...")[0])
    return [str(replace.get(w, w)) for w in words]


def free_port() -> int:
    """A free TCP port on the loopback, for a gloo rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_benchmark(name: str):
    """``benchmarks/<name>.py`` imported as a module (the benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
