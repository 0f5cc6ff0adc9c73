"""Manifest building speed: parallel header probes vs a serial decode-every-file scan.

The ``xlsr-manifest folder`` builder reads sample counts from file headers in a process
pool; the baseline is what a hand-written script does: open each file in turn and decode
it to count its samples. Both run on the same generated tree of 16 kHz FLAC files, each
in a fresh interpreter so that its peak memory (``ru_maxrss`` of the process and of its
pool workers) is its own; imports happen before the clock starts. (``tracemalloc`` is not
used: it slows every allocation, in forked workers too, and would distort the timing.)

    python benchmarks/bench_manifests.py --files 1000 4000 --seconds 10 --num-jobs 2
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from manifests.folder import prepare_folder


def make_tree(root: Path, n: int, seconds: float) -> None:
    rng = np.random.default_rng(0)
    base = (0.1 * rng.standard_normal(int(16_000 * seconds))).astype("float32")
    for i in range(n):
        p = root / f"spk{i % 50}" / f"utt{i:06d}.flac"
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, np.roll(base, i), 16_000)


def run_parallel(tree: Path, num_jobs: int) -> int:
    with tempfile.TemporaryDirectory() as out:
        res = prepare_folder(tree, out, language="xx", valid_percent=0.0, num_jobs=num_jobs)
        return res.subsets[0].utterances


def run_serial(tree: Path) -> int:
    """Baseline: one file at a time, decoded to count samples (as ad-hoc scripts do)."""
    lines = [str(tree)]
    for p in sorted(tree.rglob("*.flac")):
        wav, _ = sf.read(p, dtype="float32")
        lines.append(f"{p.relative_to(tree)}\t{len(wav)}")
    with tempfile.TemporaryDirectory() as out:
        Path(out, "train.tsv").write_text("\n".join(lines) + "\n")
    return len(lines) - 1


def measure(mode: str, tree: Path, num_jobs: int) -> dict:
    t0 = time.perf_counter()
    if mode == "serial":
        n = run_serial(tree)
    else:  # "headers-1": the builder with one process, to separate the two effects
        n = run_parallel(tree, 1 if mode == "headers-1" else num_jobs)
    secs = time.perf_counter() - t0
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kib_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return dict(mode=mode, files=n, seconds=secs, files_per_s=n / secs,
                rss_mib=kib / 1024, worker_rss_mib=kib_children / 1024)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, nargs="+", default=[1000, 4000], help="tree sizes")
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of each file (CV/MLS clips: 5-15 s)")
    ap.add_argument("--num-jobs", type=int, default=os.cpu_count(), help="pool size")
    ap.add_argument("--measure", nargs=2, metavar=("MODE", "TREE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], Path(args.measure[1]), args.num_jobs)))
        return
    print(f"{'files':>6} {'mode':<10} {'files/s':>9} {'seconds':>8} {'RSS MiB':>8} "
          f"{'workers':>8}")
    for n in args.files:
        with tempfile.TemporaryDirectory() as tmp:
            make_tree(Path(tmp), n, args.seconds)
            for p in Path(tmp).rglob("*.flac"):  # same page-cache state for every mode
                p.read_bytes()
            rows = {}
            for mode in ("serial", "headers-1", "parallel"):
                out = subprocess.run(
                    [sys.executable, __file__, "--measure", mode, tmp, "--num-jobs",
                     str(args.num_jobs)], capture_output=True, text=True, check=True).stdout
                r = rows[mode] = json.loads(out.strip().splitlines()[-1])
                print(f"{n:>6} {mode:<10} {r['files_per_s']:>9.0f} {r['seconds']:>8.2f} "
                      f"{r['rss_mib']:>8.0f} {r['worker_rss_mib']:>8.0f}")
            ratio = rows["parallel"]["files_per_s"] / rows["serial"]["files_per_s"]
            one = rows["headers-1"]["files_per_s"] / rows["serial"]["files_per_s"]
            print(f"{n:>6} speed-up parallel/serial: {ratio:.1f}x ({args.num_jobs} jobs; "
                  f"headers alone, 1 job: {one:.1f}x)")


if __name__ == "__main__":
    main()
