"""What XLSR's multilingual machinery costs: ``xlsr_pretraining`` against stock
``audio_pretraining`` on the same audio, the same tiny model and the same updates.

The baseline reads one combined ``train.tsv`` (stock fairseq: no language sampling, no
per-language metrics, no manifest check); the plugin reads the per-language manifests
(α re-sampling through ``LanguageBalancedDataset``, mixed-language batches, per-language
loss/accuracy/code-perplexity, every audio header checked before training). Runs
alternate (baseline, plugin, baseline, plugin, ...) so machine noise hits both alike;
the report is the ratio of medians. A third configuration, ``xlsr_pretraining`` with
alpha = 1 (natural distribution), separates the cost of the machinery from the effect
of the different mix of utterances that alpha = 0.5 draws. Each run is a fresh ``fairseq-train`` process and
reports its own training time (fairseq's "done training in X seconds", excluding start-up)
and peak RSS.

    .venv/bin/python benchmarks/bench_pretraining.py --updates 60 --repeats 3
"""

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import TINY_MODEL_ARGS, TINY_TRAIN_ARGS, write_language  # noqa: E402

LANGS = {"aa": (60, 2.0), "bb": (20, 1.5), "cc": (8, 2.5)}  # utterances, seconds

RUNNER = (
    "import resource, sys; from fairseq_cli.train import cli_main; sys.argv = sys.argv[1:]; "
    "cli_main(); print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
)


def make_data(root: Path):
    """Per-language manifests for the plugin, and in another folder (so that the plugin
    never sees it) one combined manifest per split for stock fairseq."""
    data, stock = root / "data", root / "stock"
    stock.mkdir(parents=True)
    for lang, (n, dur) in LANGS.items():
        write_language(data, "train", lang, [dur] * n)
        write_language(data, "dev", lang, [1.0, 1.5])
    for split in ("train", "dev"):
        lines = ["/"]
        for lang in LANGS:
            root_dir, *entries = (data / f"{split}_{lang}.tsv").read_text().splitlines()
            lines += [f"{root_dir.lstrip('/')}/{e}" for e in entries]
        (stock / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return data, stock


def run(kind: str, data: Path, save: Path, updates: int) -> dict:
    """One fresh fairseq-train process; ``data`` is the folder of that kind's manifests."""
    common = [str(data), *TINY_MODEL_ARGS, *TINY_TRAIN_ARGS, "--max-update", str(updates),
              "--save-dir", str(save), "--no-save", "--disable-validation", "--log-interval", "1000"]
    if kind == "audio_pretraining":
        args = ["--task", "audio_pretraining", "--arch", "wav2vec2", "--criterion", "wav2vec",
                "--infonce", "--loss-weights", "[0.1, 10]", "--quantize-targets",
                "--encoder-layerdrop", "0.05", "--dropout-input", "0.1", "--dropout-features", "0.1",
                "--feature-grad-mult", "0.1", "--log-keys", '["prob_perplexity","code_perplexity","temp"]']
    else:
        alpha = "1.0" if kind.endswith("alpha=1") else "0.5"
        args = ["--user-dir", str(REPO / "xlsr_plugin"), "--task", "xlsr_pretraining",
                "--arch", "xlsr_base", "--criterion", "xlsr_wav2vec", "--sampling-alpha", alpha]
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", RUNNER, "fairseq-train", *common, *args],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{out.stdout[-4000:]}")
    if kind != "audio_pretraining" and "language sampling, alpha=" not in out.stdout:
        raise SystemExit(f"{kind} did not sample languages: not measuring the plugin")
    train_s = float(re.search(r"done training in ([\d.]+) seconds", out.stdout).group(1))
    rss = int(re.search(r"MAXRSS_KB (\d+)", out.stdout).group(1)) / 1024
    stats = re.findall(r"\| train \| epoch .*\| wps ([\d.]+) .*\| bsz ([\d.]+)", out.stdout)[-1]
    return {"train_s": train_s, "wps": float(stats[0]), "bsz": float(stats[1]),
            "wall_s": wall, "rss_mib": rss}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--updates", type=int, default=60)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    kinds = ("audio_pretraining", "xlsr_pretraining alpha=1", "xlsr_pretraining")
    results = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        data, stock = make_data(Path(tmp))
        for i in range(args.repeats):
            for kind in kinds:
                folder = stock if kind == "audio_pretraining" else data
                save = Path(tmp) / f"run{i}_{kind[:6]}{len(kind)}"
                results[kind].append(run(kind, folder, save, args.updates))
    print(f"{'task':<26} {'train s':>8} {'frames/s':>9} {'utts/batch':>10} {'process s':>10} "
          f"{'peak RSS MiB':>13}   (medians)")
    med = {}
    for kind in kinds:
        med[kind] = {m: statistics.median(r[m] for r in results[kind]) for m in results[kind][0]}
        m = med[kind]
        print(f"{kind:<26} {m['train_s']:>8.2f} {m['wps']:>9.0f} {m['bsz']:>10.1f} "
              f"{m['wall_s']:>10.2f} {m['rss_mib']:>13.0f}")
    base, ours = med["audio_pretraining"], med["xlsr_pretraining"]
    natural = med["xlsr_pretraining alpha=1"]
    print(f"ratio xlsr(alpha=1)/stock: throughput {natural['wps'] / base['wps']:.2f}x, "
          f"training time {natural['train_s'] / base['train_s']:.2f}x")
    print(f"ratio xlsr/stock: throughput (masked frames/s) {ours['wps'] / base['wps']:.2f}x, "
          f"training time {ours['train_s'] / base['train_s']:.2f}x, "
          f"process time {ours['wall_s'] / base['wall_s']:.2f}x, "
          f"peak RSS {ours['rss_mib'] / base['rss_mib']:.2f}x "
          f"({args.updates} updates, {args.repeats} alternating runs each)")


if __name__ == "__main__":
    main()
