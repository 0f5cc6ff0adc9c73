"""Start-up under load: ``fairseq-train`` with 8 data-loader workers on a 100k-line manifest.

A pre-training start reads every manifest line (fairseq's ``FileAudioDataset``), checks
every audio header (``xlsr_plugin.data.validation``, no ``.verified`` stamp here: each
run deletes them, so every start is a full one), plans the language-balanced epoch, forks
the data-loader workers and trains. This script times a fresh ``fairseq-train`` process
from launch to exit after ``--updates`` updates (tiny model, ``--no-save``), and samples
the memory of the whole process tree (the trainer and its workers) every 0.1 s from
``/proc``: the peak of the summed RSS (which counts pages the forked workers share with
the trainer once per process) and of the summed PSS (shared pages divided among the
processes that share them: the memory the tree really holds). Linux only.

Configurations, run alternately so that machine noise hits all alike (``--repeats``):

* ``100k w8``: 100,000 lines (two languages, symlinks to a few short clips), 8 workers;
* ``100k w0``: the same manifest, no workers (the baseline for the workers' cost);
* ``10k w8``: 10,000 lines, 8 workers (the baseline for the manifest's size).

Reported: medians, and the ratios of ``100k w8`` to each baseline.

    .venv/bin/python benchmarks/bench_startup_load.py --lines 100000 --workers 8 --updates 5 --repeats 2
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import PLUGIN, TINY_MODEL_ARGS, TINY_TRAIN_ARGS, write_language  # noqa: E402

LANGS = ("aa", "bb")
CLIPS = [1.0, 1.5, 2.0, 1.2, 0.8]  # seconds; every manifest line links to one of them


def make_data(root: Path, lines: int) -> Path:
    """``train_<lang>.tsv`` of ``lines`` lines in all (half per language), each a symlink
    to one of a few clips; a tiny ``dev`` split."""
    data = root / f"data{lines}"
    for lang in LANGS:
        clips = write_language(data, "clips", lang, CLIPS)
        write_language(data, "dev", lang, [1.0])
        audio = data / "audio" / lang
        sizes = [line.split("\t") for line in clips.read_text().splitlines()[1:]]
        links = [str(audio)]
        for i in range(lines // len(LANGS)):
            name, n = sizes[i % len(sizes)]
            link = f"link_{i}.flac"
            os.symlink(audio / name, audio / link)
            links.append(f"{link}\t{n}")
        (data / f"train_{lang}.tsv").write_text("\n".join(links) + "\n")
        clips.unlink()
    return data


def tree(pid: int):
    """``pid`` and its descendants (``/proc/<pid>/task/*/children``)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def memory_kib(pids):
    """Summed (RSS, PSS) of ``pids``, KiB (a process that just ended counts 0)."""
    rss = pss = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


def run(data: Path, workers: int, updates: int, save: Path) -> dict:
    """One fresh fairseq-train process: wall seconds to exit, peak tree RSS/PSS, most processes."""
    for stamp in data.glob("*.verified"):
        stamp.unlink()  # a full start: every header read again
    args = [str(Path(sys.executable).parent / "fairseq-train"), str(data), "--user-dir", str(PLUGIN),
            "--task", "xlsr_pretraining", "--arch", "xlsr_base", "--criterion", "xlsr_wav2vec",
            *TINY_MODEL_ARGS, *TINY_TRAIN_ARGS, "--num-workers", str(workers), "--max-update", str(updates),
            "--save-dir", str(save), "--no-save", "--disable-validation", "--log-interval", "1000"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    start = time.monotonic()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak_rss = peak_pss = procs = 0
    while proc.poll() is None:
        pids = tree(proc.pid)
        rss, pss = memory_kib(pids)
        peak_rss, peak_pss, procs = max(peak_rss, rss), max(peak_pss, pss), max(procs, len(pids))
        time.sleep(0.1)
    seconds = time.monotonic() - start
    out = proc.stdout.read()
    if proc.returncode != 0:
        raise SystemExit(f"fairseq-train failed ({proc.returncode}):\n{out[-4000:]}")
    return {"seconds": seconds, "rss": peak_rss / 1024, "pss": peak_pss / 1024, "procs": procs}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000, help="manifest lines of the measured start")
    parser.add_argument("--baseline-lines", type=int, default=10_000, help="manifest lines of the small baseline")
    parser.add_argument("--workers", type=int, default=8, help="dataset.num_workers of the measured start")
    parser.add_argument("--updates", type=int, default=5, help="updates before the run ends")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.monotonic()
        big, small = make_data(tmp, args.lines), make_data(tmp, args.baseline_lines)
        print(f"data: {args.lines} + {args.baseline_lines} symlinked lines in {time.monotonic() - t0:.1f} s")
        configs = {
            f"{args.lines // 1000}k w{args.workers}": (big, args.workers),
            f"{args.lines // 1000}k w0": (big, 0),
            f"{args.baseline_lines // 1000}k w{args.workers}": (small, args.workers),
        }
        results = {name: [] for name in configs}
        for r in range(args.repeats):
            for name, (data, workers) in configs.items():
                results[name].append(run(data, workers, args.updates, tmp / "save"))
                m = results[name][-1]
                print(f"  run {r + 1} {name:<9} {m['seconds']:6.1f} s  RSS {m['rss']:6.0f} MiB  "
                      f"PSS {m['pss']:6.0f} MiB  processes {m['procs']}", flush=True)

    med = {name: {k: statistics.median(m[k] for m in runs) for k in ("seconds", "rss", "pss", "procs")}
           for name, runs in results.items()}
    print(f"\nmedians over {args.repeats} runs (launch to exit after {args.updates} updates; "
          "peak memory of trainer + workers):")
    print(f"  {'config':<10} {'seconds':>8} {'RSS MiB':>8} {'PSS MiB':>8} {'procs':>6}")
    for name, m in med.items():
        print(f"  {name:<10} {m['seconds']:8.1f} {m['rss']:8.0f} {m['pss']:8.0f} {m['procs']:6.0f}")
    measured, *baselines = list(med)
    for base in baselines:
        a, b = med[measured], med[base]
        print(f"  {measured} / {base}: time x{a['seconds'] / b['seconds']:.2f}, "
              f"RSS x{a['rss'] / b['rss']:.2f}, PSS x{a['pss'] / b['pss']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
