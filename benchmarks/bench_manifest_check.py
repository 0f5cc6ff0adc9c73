"""The start-up audio check at scale: peak memory against manifest size, and the cost of a
start whose manifest carries a valid verification stamp.

* ``memory``: manifests of N lines (symlinks to one small 16 kHz FLAC, so every header
  read succeeds) are checked by ``check_manifest`` in a fresh interpreter each; the
  growth of peak RSS (``ru_maxrss`` after the check minus before it, imports done) per
  line is the number that must stay flat. ``--legacy`` also runs the previous
  implementation (the whole manifest parsed into a list, every line submitted to the
  thread pool at once) for comparison.
* ``hash``: a synthetic manifest of ``--hash-lines`` MLS-style lines (no audio): the time
  of ``manifest_digest`` (what a stamped start costs) and of a stamped ``check_manifest``.

    python benchmarks/bench_manifest_check.py --lines 50000 200000 --legacy --hash-lines 10000000
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from manifests import formats, layout
from xlsr_plugin.data import validation


def make_manifest(folder: Path, n: int) -> Path:
    audio = folder / "audio"
    audio.mkdir(parents=True)
    sf.write(audio / "clip.flac", np.zeros(1600, dtype="float32"), 16000)
    with open(folder / "train_xx.tsv", "w") as f:
        print(audio, file=f)
        for i in range(n):
            rel = f"{i % 1000:03d}/u{i:08d}.flac"
            if i < 1000:
                (audio / rel).parent.mkdir()
            os.symlink(audio / "clip.flac", audio / rel)
            print(f"{rel}\t1600", file=f)
    return folder / "train_xx.tsv"


def legacy_check(path: Path, sample_rate: int) -> int:
    """The check before streaming: every line submitted at once (``pool.map``)."""
    manifest = formats.read_manifest(path)
    with ThreadPoolExecutor(8) as pool:
        results = pool.map(lambda e: validation._check_file(manifest.root, e[0], e[1], sample_rate),
                           manifest.entries)
        return sum(1 for r in results if r[0])


def measure(mode: str, path: Path) -> dict:
    """Peak RSS growth of one check, in this (fresh) process."""
    layout.verified_path(path).unlink(missing_ok=True)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if mode == "legacy":
        bad = legacy_check(path, 16000)
    else:
        bad = 0
        validation.check_manifest(path, "xx", 16000, progress=False)
    secs = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(bad=bad, seconds=secs, before_kib=before, growth_kib=after - before)


def memory(sizes, legacy: bool) -> None:
    modes = ["streaming"] + (["legacy"] if legacy else [])
    print(f"{'lines':>9} {'mode':<10} {'seconds':>8} {'lines/s':>8} {'RSS before MiB':>15} "
          f"{'growth MiB':>11} {'bytes/line':>11}")
    growth = {m: {} for m in modes}
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            path = make_manifest(Path(tmp), n)
            for mode in modes:
                out = subprocess.run([sys.executable, __file__, "--measure", mode, str(path)],
                                     capture_output=True, text=True, check=True).stdout
                r = json.loads(out.strip().splitlines()[-1])
                assert r["bad"] == 0
                growth[mode][n] = r["growth_kib"] * 1024
                print(f"{n:>9} {mode:<10} {r['seconds']:>8.1f} {n / r['seconds']:>8.0f} "
                      f"{r['before_kib'] / 1024:>15.0f} {r['growth_kib'] / 1024:>11.1f} "
                      f"{r['growth_kib'] * 1024 / n:>11.0f}")
    lo, hi = min(sizes), max(sizes)
    for mode in modes:
        per_line = (growth[mode][hi] - growth[mode][lo]) / (hi - lo)
        print(f"{mode}: peak RSS growth {growth[mode][lo] / 2**20:.1f} -> {growth[mode][hi] / 2**20:.1f} MiB "
              f"for {lo} -> {hi} lines: {per_line:.0f} bytes per added line")


def hashing(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train_xx.tsv"
        (Path(tmp) / "audio").mkdir()  # the root must exist (the check names line 1 otherwise)
        with open(path, "w") as f:  # MLS English style: 10.8 M lines like these
            print(Path(tmp) / "audio", file=f)
            f.writelines(f"{i % 5000}/{i % 997}/{i % 5000}_{i % 997}_{i:06d}.flac\t{160000 + i % 99999}\n"
                         for i in range(n))
        size = path.stat().st_size
        t0 = time.perf_counter()
        digest = formats.manifest_digest(path)
        secs = time.perf_counter() - t0
        print(f"manifest_digest: {n} lines, {size / 2**20:.0f} MiB: {secs:.2f} s "
              f"({size / 2**20 / secs:.0f} MiB/s, page cache warm)")
        formats.write_stamp(path, digest, 16000, n, "benchmark")
        t0 = time.perf_counter()
        m = validation.check_manifest(path, "xx", 16000, progress=False)
        assert m.headers_read == 0 and m.utterances == n
        print(f"check_manifest with a valid stamp: {time.perf_counter() - t0:.2f} s, 0 headers read")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, nargs="+", default=[50_000, 200_000], help="manifest sizes")
    ap.add_argument("--legacy", action="store_true", help="also run the pre-streaming check")
    ap.add_argument("--hash-lines", type=int, default=0, help="lines of the hashing test (0: skip)")
    ap.add_argument("--measure", nargs=2, metavar=("MODE", "MANIFEST"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], Path(args.measure[1]))))
        return
    memory(args.lines, args.legacy)
    if args.hash_lines:
        hashing(args.hash_lines)


if __name__ == "__main__":
    main()
