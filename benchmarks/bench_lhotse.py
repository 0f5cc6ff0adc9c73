"""``xlsr-manifest lhotse`` at corpus scale: time and peak memory, 100 k against 1 M cuts.

A synthetic lhotse cut manifest (``<corpus>_cuts_train.jsonl.gz``, as a recipe names it)
of N whole-recording 16 kHz mono FLAC cuts, each with one supervision (five languages as
lhotse recipes spell them: "English", "es", "fr_fr", "german", "nl"; Latin-letter text;
997 speakers). The audio does not exist: the builder runs with ``audio_check=False``
(``--no-audio-check``), so what is measured is the manifest path itself: lazy reading,
per-supervision language and text handling, streaming the outputs, the common-root pass,
dictionaries. Each size runs in a fresh interpreter; lhotse is imported before the clock
starts. ``growth`` is peak RSS (``ru_maxrss``) after the build minus before it, the number
that must not scale with N. ``--input recordings`` writes the same corpus as a recipe's
recordings + supervisions pair instead (``--recordings R --supervisions S``, joined as
they stream).

    python benchmarks/bench_lhotse.py --cuts 100000 1000000 [--input recordings]
"""

import argparse
import gzip
import importlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LANGS = ["English", "es", "fr_fr", "german", "nl"]
WORDS = ["casa", "perro", "mundo", "sol", "mar", "luna", "tren", "pan", "gato", "flor", "rio"]


def items(n: int):
    """``(recording, supervision)`` dicts as lhotse serialises them."""
    for i in range(n):
        lang = LANGS[i % len(LANGS)]
        samples = 32000 + (i * 7919) % 160000
        dur = samples / 16000
        text = " ".join(WORDS[(i + k * 3) % len(WORDS)] for k in range(3 + i % 8))
        src = f"/data/corpus/{lang}/{i % 1000:03d}/r{i:07d}.flac"
        yield ({"id": f"r{i:07d}", "sources": [{"type": "file", "channels": [0], "source": src}],
                "sampling_rate": 16000, "num_samples": samples, "duration": dur, "channel_ids": [0]},
               {"id": f"s{i:07d}", "recording_id": f"r{i:07d}", "start": 0.0, "duration": dur,
                "channel": 0, "text": text, "language": lang, "speaker": f"spk{i % 997}"})


def make_cuts(path: Path, n: int) -> None:
    """One JSON line per cut, in the layout ``CutSet.to_file`` writes (a template, for speed)."""
    with gzip.open(path, "wt", compresslevel=1, encoding="utf-8") as f:
        for rec, sup in items(n):
            f.write(json.dumps({"id": f"{rec['id']}-0", "start": 0.0, "duration": rec["duration"],
                                "channel": 0, "supervisions": [sup], "recording": rec,
                                "type": "MonoCut"}) + "\n")


def make_recordings(rec_path: Path, sup_path: Path, n: int) -> None:
    with gzip.open(rec_path, "wt", compresslevel=1, encoding="utf-8") as r, \
            gzip.open(sup_path, "wt", compresslevel=1, encoding="utf-8") as s:
        for rec, sup in items(n):
            r.write(json.dumps(rec) + "\n")
            s.write(json.dumps(sup) + "\n")


def measure(inputs: Path, out: Path) -> dict:
    importlib.import_module("lhotse")  # imports outside the clock
    from manifests.from_lhotse import prepare_lhotse

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if inputs.is_dir():  # recordings + supervisions
        res = prepare_lhotse(None, out, recordings=inputs / "synthetic_recordings_train.jsonl.gz",
                             supervisions=inputs / "synthetic_supervisions_train.jsonl.gz",
                             audio_check=False, num_jobs=1)
    else:
        res = prepare_lhotse(inputs, out, audio_check=False, num_jobs=1)
    secs = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(seconds=secs, before_kib=before, peak_kib=after, growth_kib=after - before,
                cuts=res.cuts, utterances=sum(s.utterances for s in res.subsets),
                rejected=res.rejected, subsets=len(res.subsets))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cuts", type=int, nargs="+", default=[100_000, 1_000_000], help="manifest sizes")
    ap.add_argument("--input", choices=["cuts", "recordings"], default="cuts",
                    help="a cut manifest, or a recordings + supervisions pair")
    ap.add_argument("--measure", nargs=2, metavar=("INPUTS", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), Path(args.measure[1]))))
        return
    print(f"input: {args.input}")
    print(f"{'cuts':>9} {'make s':>7} {'build s':>8} {'cuts/s':>7} {'RSS before MiB':>15} "
          f"{'peak MiB':>9} {'growth MiB':>11}")
    rows = {}
    for n in args.cuts:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            if args.input == "cuts":
                inputs = Path(tmp) / "synthetic_cuts_train.jsonl.gz"
                make_cuts(inputs, n)
            else:
                inputs = Path(tmp)
                make_recordings(inputs / "synthetic_recordings_train.jsonl.gz",
                                inputs / "synthetic_supervisions_train.jsonl.gz", n)
            made = time.perf_counter() - t0
            out = subprocess.run([sys.executable, __file__, "--measure", str(inputs), str(Path(tmp) / "out")],
                                 capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            assert r["cuts"] == r["utterances"] == n and r["rejected"] == 0 and r["subsets"] == 5, r
            rows[n] = r
            print(f"{n:>9} {made:>7.1f} {r['seconds']:>8.1f} {n / r['seconds']:>7.0f} "
                  f"{r['before_kib'] / 1024:>15.0f} {r['peak_kib'] / 1024:>9.0f} "
                  f"{r['growth_kib'] / 1024:>11.1f}")
    lo, hi = min(rows), max(rows)
    if lo != hi:
        a, b = rows[lo], rows[hi]
        print(f"{hi} / {lo} cuts ({hi / lo:g}x): time {b['seconds'] / a['seconds']:.2f}x, "
              f"peak RSS {b['peak_kib'] / a['peak_kib']:.2f}x, "
              f"RSS growth {b['growth_kib'] / max(a['growth_kib'], 1):.2f}x "
              f"({(b['growth_kib'] - a['growth_kib']) * 1024 / (hi - lo):.1f} bytes per added cut)")


if __name__ == "__main__":
    main()
