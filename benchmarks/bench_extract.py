"""xlsr-extract at scale: memory and time of reading and planning a manifest of a million
lines, and a real extraction whose memory must not grow with the number of utterances.

* ``plan``: synthetic manifests of N lines (MLS-style names, 2-15 s; the audio need not
  exist) go through what ``xlsr_tools.extract`` does before reading audio: the scan
  (every line parsed and checked, counted for the progress bar), then the windows
  (``--sort-window`` lines at a time), sorting and batching by ``--max-tokens``, for both
  feature-encoder variants (group norm: equal lengths only; layer norm: padded). Each N
  runs in a fresh interpreter; the growth of peak RSS (``ru_maxrss`` after minus before,
  imports done) is what must stay flat from 100 k to 1 M lines.
* ``run``: a real extraction (all layers, ``--num-workers 0``) of N utterances (symlinks
  to one 1 s FLAC) with a tiny model, pre-trained here for one update with
  ``recipes/pretraining/tiny.yaml`` unless ``--checkpoint`` is given, and the same
  measures.

    python benchmarks/bench_extract.py plan --lines 100000 1000000
    python benchmarks/bench_extract.py run --utterances 1000 10000
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

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def write_manifest(path: Path, n: int, seed: int = 0) -> Path:
    """``n`` lines like MLS's (speaker/book/utterance), 2-15 s at 16 kHz; no audio."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2 * 16000, 15 * 16000, size=n)
    with open(path, "w") as f:
        f.write("/nonexistent/audio\n")
        for i in range(0, n, 100_000):
            f.write("".join(f"{(j // 400) % 5000}/{j // 20}/{j // 400}_{j // 20}_{j:06d}.flac\t{s}\n"
                            for j, s in zip(range(i, i + 100_000), sizes[i: i + 100_000])))
    return path


def measure_plan(path: str, window: int, max_tokens: int) -> dict:
    from xlsr_tools import extract as ex

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    manifest = ex.scan_manifest(ex.open_manifest(path), 400)
    scan = time.perf_counter() - t0
    out = dict(lines=manifest.utterances, scan_s=scan, before_kib=before)
    for variant, equal in (("group_norm", True), ("layer_norm", False)):
        t0, batches, seen = time.perf_counter(), 0, 0
        for win, plan in ex.plan([manifest], window, max_tokens, equal):
            batches += len(plan)
            seen += sum(len(b) for b in plan)
        assert seen == manifest.utterances
        out[f"{variant}_s"], out[f"{variant}_batches"] = time.perf_counter() - t0, batches
    out["growth_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    return out


def measure_run(ckpt: str, manifest: str, out: str) -> dict:
    from xlsr_tools import extract as ex

    ex.load_encoder(ckpt)  # imports and first model build done before measuring
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    meta = ex.extract(ckpt, [manifest], out, num_workers=0, progress=False, device="cpu")
    secs = time.perf_counter() - t0
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    size = sum(f.stat().st_size for f in Path(out).rglob("*.npy"))
    return dict(utterances=meta["utterances"], shards=meta["shards"], seconds=secs, before_kib=before,
                growth_kib=growth, output_mib=size / 2**20)


def in_fresh_process(*args) -> dict:
    proc = subprocess.run([sys.executable, __file__, *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS="1"))
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def plan(sizes, window: int, max_tokens: int) -> None:
    print(f"window {window} lines, max_tokens {max_tokens}")
    print(f"{'lines':>9} {'scan s':>7} {'GN plan s':>10} {'GN batches':>11} {'LN plan s':>10} "
          f"{'LN batches':>11} {'RSS before MiB':>15} {'growth MiB':>11}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = write_manifest(Path(tmp) / f"train_{n}.tsv", n)
            r = in_fresh_process("_plan", path, window, max_tokens)
            rows.append(r)
            print(f"{r['lines']:>9} {r['scan_s']:>7.2f} {r['group_norm_s']:>10.2f} {r['group_norm_batches']:>11} "
                  f"{r['layer_norm_s']:>10.2f} {r['layer_norm_batches']:>11} {r['before_kib'] / 1024:>15.1f} "
                  f"{r['growth_kib'] / 1024:>11.1f}")
            path.unlink()
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        print(f"{b['lines'] / a['lines']:.0f}x the lines: peak RSS growth x{b['growth_kib'] / max(a['growth_kib'], 1):.2f}, "
              f"time x{(b['scan_s'] + b['layer_norm_s']) / (a['scan_s'] + a['layer_norm_s']):.1f}")


def tiny_checkpoint(folder: Path) -> Path:
    """One update of recipes/pretraining/tiny.yaml on a few clips."""
    data = folder / "pretrain"
    (data / "audio").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("dev", 2)):
        lines = [str(data / "audio")]
        for i in range(n):
            sf.write(data / "audio" / f"{split}{i}.flac", 0.1 * rng.standard_normal(16000).astype("float32"), 16000)
            lines.append(f"{split}{i}.flac\t16000")
        (data / f"{split}_xx.tsv").write_text("\n".join(lines) + "\n")
    subprocess.run([BIN / "fairseq-hydra-train", "--config-dir", REPO / "recipes" / "pretraining",
                    "--config-name", "tiny", f"task.data={data}", f"common.user_dir={REPO / 'xlsr_plugin'}",
                    "optimization.max_update=1", f"checkpoint.save_dir={folder / 'ckpt'}",
                    f"hydra.run.dir={folder / 'hydra'}"], check=True, capture_output=True,
                   env=dict(os.environ, OMP_NUM_THREADS="1"))
    return folder / "ckpt" / "checkpoint_last.pt"


def run(sizes, ckpt) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = ckpt or tiny_checkpoint(tmp)
        audio = tmp / "audio"
        audio.mkdir()
        sf.write(audio / "clip.flac", 0.1 * np.random.default_rng(1).standard_normal(16000).astype("float32"), 16000)
        print(f"checkpoint {ckpt}")
        print(f"{'utterances':>10} {'shards':>6} {'seconds':>8} {'utt/s':>7} {'output MiB':>10} "
              f"{'RSS before MiB':>15} {'growth MiB':>11}")
        for n in sizes:
            manifest = tmp / f"test_{n}.tsv"
            with open(manifest, "w") as f:
                f.write(f"{audio}\n")
                for i in range(n):
                    name = f"u{n}_{i:07d}.flac"
                    os.symlink(audio / "clip.flac", audio / name)
                    f.write(f"{name}\t16000\n")
            r = in_fresh_process("_run", ckpt, manifest, tmp / f"out_{n}")
            print(f"{r['utterances']:>10} {r['shards']:>6} {r['seconds']:>8.1f} {r['utterances'] / r['seconds']:>7.0f} "
                  f"{r['output_mib']:>10.1f} {r['before_kib'] / 1024:>15.1f} {r['growth_kib'] / 1024:>11.1f}")


def main() -> None:
    if sys.argv[1:2] == ["_plan"]:
        print(json.dumps(measure_plan(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
        return
    if sys.argv[1:2] == ["_run"]:
        print(json.dumps(measure_run(*sys.argv[2:5])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("plan", help="scan and plan synthetic manifests")
    p.add_argument("--lines", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--sort-window", type=int, default=20_000)
    p.add_argument("--max-tokens", type=int, default=1_600_000)
    r = sub.add_parser("run", help="real extractions with a tiny model")
    r.add_argument("--utterances", type=int, nargs="+", default=[1000, 10000])
    r.add_argument("--checkpoint", default=None, help="default: pre-train the tiny recipe for one update")
    args = parser.parse_args()
    if args.mode == "plan":
        plan(args.lines, args.sort_window, args.max_tokens)
    else:
        run(args.utterances, args.checkpoint)


if __name__ == "__main__":
    main()
