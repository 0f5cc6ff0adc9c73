"""Data-path cost at corpus scale: ``xlsr_pretraining`` against stock ``audio_pretraining``
on the same synthetic manifests of millions of utterances.

XLSR-53 pre-trains on 56k hours (~10 M clips) over 53 languages of very unequal size.
What the data path costs there is independent of the model: loading the manifests,
planning every epoch (the language draw, ordering, size filter and batching that
``fairseq-train`` redoes at the start of every epoch on every rank) and the memory of the
training process and of each of its data-loader workers.

Corpus: ``--languages`` languages with Zipf-shaped sizes (utterances of the language of
rank r ∝ 1/r^s), durations drawn uniformly in 2-15 s per utterance (16 kHz sample counts),
CommonVoice-like relative paths. No audio exists: the plugin runs with
``task.skip_manifest_check=true``. The plugin reads one manifest per language
(``train_<lang>.tsv``); stock fairseq reads one ``train.tsv`` with the same lines (same
root, same relative paths), in a folder of its own. Both use the task settings of
``recipes/pretraining/xlsr_base.yaml`` (max/min_sample_size) and the same batching
arguments, which are fairseq's own defaults (``FairseqConfig``) except max_tokens
(1.4 M, the recipe's) and the ranks (``num_shards=8, shard_id=0``).

Each system runs in a fresh interpreter (imports before the clock), so that its peak RSS
(``ru_maxrss``) is its own, and measures:

- ``load``: ``task.load_dataset("train")``;
- ``plan e1`` / ``plan e2``: what ``fairseq-train`` does at the start of epochs 1 and 2
  (``Trainer.get_train_iterator`` -> ``task.get_batch_iterator`` with the arguments the
  trainer passes, then ``train()``'s ``epoch_itr.next_epoch_itr``). Between the two the
  epoch iterator is marked as consumed (its count set to its length), which stands for
  the epoch's training steps. Not included: ``Trainer.reset_dummy_batch(first_batch)``,
  which reads the first batch's audio;
- ``peak RSS``: ``ru_maxrss`` of the process after all of the above; ``data`` is that
  minus the RSS after the imports (what the data path itself holds at its peak);
- ``worker``: a data-loader worker. A torch ``DataLoader`` worker is, on Linux, a fork of
  the training process; its extra memory is the pages it writes (copy-on-write): every
  Python object whose reference count it changes (each ``fnames`` entry that
  ``__getitem__`` reads) and every container the garbage collector walks. After epoch
  2's plan this process forks; the child (1) collates one real batch of this rank's
  shard through the dataset's own ``__getitem__``/``collater`` (``soundfile.read`` and ``os.path.isfile`` stubbed
  to return 2 s of silence: there is no audio), (2) reads every utterance's file name in
  every ``FileAudioDataset`` (what a long-lived worker ends up doing: over epochs it
  serves every utterance; a random 1/48 of them already dirties most pages of the name
  list), (3) runs ``gc.collect()`` (workers collect too), then reports its private memory
  (``Private_Clean + Private_Dirty`` of ``/proc/self/smaps_rollup``: what each extra
  worker costs; ``worker RSS`` is its ``VmRSS``, which also counts the pages it still
  shares with the parent).

Timings on a shared machine are noisy: only ratios within one run are meaningful.

    .venv/bin/python benchmarks/bench_scale.py --sizes 1000000,4000000 --json benchmarks/bench_scale.json
    .venv/bin/python benchmarks/bench_scale.py --quick          # 100k utterances, ~15 s
"""

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SYSTEMS = ("audio_pretraining", "xlsr_pretraining")
SAMPLE_RATE = 16_000
MIN_SECONDS, MAX_SECONDS = 2.0, 15.0
# recipes/pretraining/xlsr_base.yaml
TASK_ARGS = dict(max_sample_size=250_000, min_sample_size=32_000, normalize=False)
MAX_TOKENS = 1_400_000
NUM_SHARDS, SHARD_ID = 8, 0
NUM_WORKERS = 6  # the recipe's; workers start at an epoch's first batch, outside the plan
MANIFEST_CHUNK = 200_000
GOALS = {  # xlsr/stock ratios the scaling issue asks for
    "load_s": 1.2, "plan1_s": 1.0, "plan2_s": 1.0, "peak_rss_mib": 1.1,
}
MOONSHOT_PLAN = 0.25


# -- corpus ------------------------------------------------------------------------------

def language_counts(total: int, languages: int, zipf_s: float) -> np.ndarray:
    """Utterances per language, ∝ 1/rank^s, summing to ``total``, at least 1 each."""
    weights = 1.0 / np.arange(1, languages + 1) ** zipf_s
    counts = np.maximum(np.floor(total * weights / weights.sum()).astype(np.int64), 1)
    counts[0] += total - counts.sum()  # rounding goes to the largest language
    return counts


def language_code(rank: int) -> str:
    return f"l{rank:02d}"


def write_manifests(folder: Path, total: int, languages: int, zipf_s: float, seed: int = 0) -> dict:
    """``folder/xlsr/train_<lang>.tsv`` (one per language) and ``folder/stock/train.tsv``
    (the same lines, languages one after another), written in chunks; returns a summary.
    An existing folder written with the same parameters is reused."""
    from manifests import layout

    params = dict(total=total, languages=languages, zipf_s=zipf_s, seed=seed)
    done = folder / "corpus.json"
    if done.is_file() and json.loads(done.read_text())["params"] == params:
        return json.loads(done.read_text())
    xlsr, stock = folder / "xlsr", folder / "stock"
    for d in (xlsr, stock):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    root = str(folder / "audio")  # never created: no audio is read
    rng = np.random.default_rng(seed)
    counts = language_counts(total, languages, zipf_s)
    hours = {}
    with open(layout.manifest_path(stock, "train"), "w") as combined:
        combined.write(root + "\n")
        for rank, n in enumerate(counts.tolist(), start=1):
            lang = language_code(rank)
            samples_total = 0
            with open(layout.manifest_path(xlsr, "train", lang), "w") as own:
                own.write(root + "\n")
                for start in range(0, n, MANIFEST_CHUNK):
                    k = min(MANIFEST_CHUNK, n - start)
                    samples = rng.integers(int(MIN_SECONDS * SAMPLE_RATE), int(MAX_SECONDS * SAMPLE_RATE) + 1, k)
                    samples_total += int(samples.sum())
                    text = "".join(
                        f"{lang}/clips/common_voice_{lang}_{i:08d}.flac\t{s}\n"
                        for i, s in zip(range(start, start + k), samples.tolist())
                    )
                    own.write(text)
                    combined.write(text)
            hours[lang] = samples_total / SAMPLE_RATE / 3600
    summary = dict(params=params, utterances=int(counts.sum()), hours=round(sum(hours.values()), 1),
                   largest=[language_code(1), int(counts[0])], smallest=[language_code(languages), int(counts[-1])])
    done.write_text(json.dumps(summary))
    return summary


# -- one system, in its own process --------------------------------------------------------

def _vm_kib(field: str, pid="self") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _smaps_kib(pid="self") -> dict:
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def build_task(system: str, data: Path):
    from fairseq import tasks
    from fairseq.tasks.audio_pretraining import AudioPretrainingConfig
    from omegaconf import OmegaConf, open_dict

    import xlsr_plugin  # noqa: F401  (registers xlsr_pretraining)
    from xlsr_plugin.tasks.xlsr_pretraining import XlsrPretrainingConfig

    if system == "xlsr_pretraining":
        cfg = XlsrPretrainingConfig(data=str(data), sampling_alpha=0.5, skip_manifest_check=True, **TASK_ARGS)
    else:
        cfg = AudioPretrainingConfig(data=str(data), **TASK_ARGS)
    cfg = OmegaConf.structured(cfg)
    with open_dict(cfg):
        cfg._name, cfg.seed, cfg.tpu = system, 1, False
        if system == "xlsr_pretraining":
            cfg.train_subset = "train"
    return tasks.setup_task(cfg)


def trainer_iterator_args(task) -> dict:
    """The arguments ``Trainer.get_train_iterator`` passes to ``task.get_batch_iterator``
    (``fairseq/trainer.py``), from fairseq's default config; ``epoch`` and ``seed`` aside."""
    from fairseq import utils
    from fairseq.dataclass.configs import FairseqConfig
    from omegaconf import OmegaConf

    cfg = OmegaConf.structured(FairseqConfig)
    ds = cfg.dataset
    sharded = task.has_sharded_data("train")  # fairseq_cli/train.py: disable_iterator_cache
    return dict(
        max_tokens=MAX_TOKENS,
        max_sentences=ds.batch_size,
        # wav2vec2 models return None (BaseFairseqModel.max_positions)
        max_positions=utils.resolve_max_positions(task.max_positions(), None, MAX_TOKENS),
        ignore_invalid_inputs=True,
        required_batch_size_multiple=ds.required_batch_size_multiple,
        num_shards=NUM_SHARDS,
        shard_id=SHARD_ID,
        num_workers=NUM_WORKERS,
        data_buffer_size=ds.data_buffer_size,
        disable_iterator_cache=sharded,
        skip_remainder_batch=cfg.optimization.skip_remainder_batch,
        grouped_shuffling=ds.grouped_shuffling,
        update_epoch_batch_itr=ds.update_epoch_batch_itr,
        _seed=cfg.common.seed,
        _update_seed=ds.update_ordered_indices_seed,
        _fix_batches_to_gpus=cfg.distributed_training.fix_batches_to_gpus,
        _curriculum=ds.curriculum,
    )


def plan_epoch(task, epoch: int, args: dict):
    """``Trainer.get_train_iterator(epoch, load_dataset=False)`` (less ``first_batch``)
    followed by ``train()``'s ``next_epoch_itr``: the per-epoch work of fairseq-train."""
    kwargs = {k: v for k, v in args.items() if not k.startswith("_")}
    seed = args["_seed"] + epoch if args["_update_seed"] else args["_seed"]
    epoch_itr = task.get_batch_iterator(task.dataset("train"), seed=seed, epoch=epoch, **kwargs)
    itr = epoch_itr.next_epoch_itr(
        fix_batches_to_gpus=args["_fix_batches_to_gpus"],
        shuffle=epoch_itr.next_epoch_idx > args["_curriculum"],
    )
    return epoch_itr, itr


def audio_leaves(dataset) -> list:
    """The ``FileAudioDataset``s a dataset reads through (one, or one per language)."""
    from fairseq.data import FileAudioDataset

    if isinstance(dataset, FileAudioDataset):
        return [dataset]
    children = getattr(dataset, "datasets", None)
    if isinstance(children, dict):
        children = list(children.values())
    return [leaf for child in children or () for leaf in audio_leaves(child)]


def _worker(dataset, batches) -> dict:
    """Run in a forked child: what a data-loader worker does, then its memory."""
    import gc

    import soundfile

    t0 = time.perf_counter()
    soundfile.read = lambda *a, **k: (np.zeros(2 * SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    os.path.isfile = lambda path: True  # nor files: the plugin's dataset looks before it reads
    batch = dataset.collater([dataset[int(i)] for i in batches[0]])
    assert batch and batch["net_input"]["source"].shape[0] > 0
    touched = 0
    for leaf in audio_leaves(dataset):
        if isinstance(leaf.fnames, list):  # pyarrow arrays are read-only buffers: nothing to copy
            for _ in leaf.fnames:
                touched += 1
    gc.collect()
    smaps = _smaps_kib()
    return dict(
        worker_private_mib=(smaps.get("Private_Clean", 0) + smaps.get("Private_Dirty", 0)) / 1024,
        worker_pss_mib=smaps.get("Pss", 0) / 1024,
        worker_rss_mib=_vm_kib("VmRSS") / 1024,
        worker_rss_anon_mib=_vm_kib("RssAnon") / 1024,
        worker_names_touched=touched,
        worker_s=time.perf_counter() - t0,
    )


def fork_worker(dataset, batches) -> dict:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        try:
            out = json.dumps(_worker(dataset, batches))
        except BaseException as e:  # report, never return into the parent's code
            out = json.dumps({"worker_error": repr(e)})
        with os.fdopen(write, "w") as f:
            f.write(out)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        out = f.read()
    os.waitpid(pid, 0)
    result = json.loads(out)
    if "worker_error" in result:
        raise RuntimeError(f"worker failed: {result['worker_error']}")
    return result


def measure(system: str, data: Path, profile: bool = False) -> dict:
    """One system, in this (fresh) process."""
    task = build_task(system, data)
    args = trainer_iterator_args(task)
    rss_imports = _vm_kib("VmRSS") / 1024

    t0 = time.perf_counter()
    task.load_dataset("train")
    load_s = time.perf_counter() - t0
    rss_loaded = _vm_kib("VmRSS") / 1024

    t0 = time.perf_counter()
    epoch_itr, itr = plan_epoch(task, 1, args)
    plan1_s = time.perf_counter() - t0
    batches1 = len(itr)
    itr.n = len(itr)  # stands for training through epoch 1: end_of_epoch() is now true
    assert epoch_itr.end_of_epoch() and epoch_itr.next_epoch_idx == 2

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0 = time.perf_counter()
    epoch_itr, itr = plan_epoch(task, epoch_itr.next_epoch_idx, args)
    plan2_s = time.perf_counter() - t0
    if profiler:
        profiler.disable()
    assert epoch_itr.epoch == 2
    shard = list(epoch_itr.epoch_batch_sampler)  # this rank's batches of epoch 2
    result = dict(
        system=system,
        utterances=len(task.dataset("train")),
        load_s=load_s,
        plan1_s=plan1_s,
        plan2_s=plan2_s,
        batches_e1=batches1,
        batches_e2=len(shard),
        utterances_e2=int(sum(len(b) for b in shard)),
        rss_imports_mib=rss_imports,
        rss_loaded_mib=rss_loaded,
        rss_end_mib=_vm_kib("VmRSS") / 1024,
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        fnames=type(audio_leaves(task.dataset("train"))[0].fnames).__name__,
    )
    result["data_mib"] = result["peak_rss_mib"] - rss_imports
    result.update(fork_worker(task.dataset("train"), shard))
    if profiler:
        import io
        import pstats

        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(14)
        result["profile"] = text.getvalue()
    return result


def run_system(system: str, data: Path, profile: bool) -> dict:
    cmd = [sys.executable, __file__, "--measure", system, str(data)] + (["--profile"] if profile else [])
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{system} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- report ------------------------------------------------------------------------------

COLUMNS = [  # key, header, format
    ("load_s", "load s", "{:.1f}"),
    ("plan1_s", "plan e1 s", "{:.2f}"),
    ("plan2_s", "plan e2 s", "{:.2f}"),
    ("peak_rss_mib", "peak RSS MiB", "{:.0f}"),
    ("data_mib", "data MiB", "{:.0f}"),
    ("worker_private_mib", "worker private MiB", "{:.0f}"),
    ("worker_rss_mib", "worker RSS MiB", "{:.0f}"),
]


def ratios(rows: dict) -> dict:
    stock, xlsr = rows["audio_pretraining"], rows["xlsr_pretraining"]
    return {k: xlsr[k] / stock[k] if stock[k] else float("inf") for k, _, _ in COLUMNS}


def goal_mark(key: str, ratio: float) -> str:
    if key not in GOALS:
        return ""
    mark = "met" if ratio <= GOALS[key] else "missed"
    if key.startswith("plan") and ratio <= MOONSHOT_PLAN:
        mark = "moonshot met"
    return f" ({mark}, goal ≤ {GOALS[key]}x)"


def markdown(results: list) -> str:
    head = "| utterances | system | " + " | ".join(h for _, h, _ in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 2)]
    for res in results:
        n = f"{res['corpus']['utterances']:,}"
        for system in SYSTEMS:
            r = res["rows"][system]
            lines.append(f"| {n} | {system} | " + " | ".join(f.format(r[k]) for k, _, f in COLUMNS) + " |")
        rat = res["ratios"]
        lines.append(f"| {n} | **xlsr/stock** | " + " | ".join(f"**{rat[k]:.2f}x**" for k, _, _ in COLUMNS) + " |")
    return "\n".join(lines)


def goals_text(results: list) -> str:
    out = []
    for res in results:
        rat = res["ratios"]
        parts = [f"{k} {rat[k]:.2f}x{goal_mark(k, rat[k])}" for k in GOALS]
        out.append(f"{res['corpus']['utterances']:,} utterances: " + "; ".join(parts))
    return "\n".join(out)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000000,4000000",
                   help="comma-separated corpus sizes in utterances (default: 1 M and 4 M)")
    p.add_argument("--quick", action="store_true", help="one corpus of 100k utterances (overrides --sizes)")
    p.add_argument("--languages", type=int, default=53, help="languages (XLSR-53 has 53)")
    p.add_argument("--zipf-s", type=float, default=1.0, help="Zipf exponent of the language sizes")
    p.add_argument("--workdir", type=Path, default=None,
                   help="keep manifests here and reuse them (default: a temporary folder, removed)")
    p.add_argument("--json", type=Path, default=None, help="also write all results to this JSON file")
    p.add_argument("--profile", action="store_true",
                   help="print a cProfile of each system's epoch-2 plan (top functions by own time)")
    p.add_argument("--measure", nargs=2, metavar=("SYSTEM", "DATA"), help=argparse.SUPPRESS)
    return p


def run_benchmark(sizes, languages: int = 53, zipf_s: float = 1.0, workdir=None, profile: bool = False,
                  log=print) -> list:
    """Write each corpus, measure both systems on it (stock first), return the results."""
    results = []
    with (contextlib.nullcontext(workdir) if workdir else tempfile.TemporaryDirectory()) as base:
        base = Path(base)
        for n in sizes:
            folder = base / f"corpus_{n}"
            t0 = time.perf_counter()
            corpus = write_manifests(folder, n, languages, zipf_s)
            log(f"corpus {n:,}: {corpus['hours']:,} h, {languages} languages, largest "
                f"{corpus['largest'][1]:,}, smallest {corpus['smallest'][1]:,} "
                f"(written in {time.perf_counter() - t0:.0f} s)")
            rows = {}
            for system in SYSTEMS:
                data = folder / ("xlsr" if system == "xlsr_pretraining" else "stock")
                rows[system] = run_system(system, data, profile)
                r = rows[system]
                log(f"  {system}: load {r['load_s']:.1f} s, plan {r['plan1_s']:.1f} / {r['plan2_s']:.1f} s, "
                    f"peak {r['peak_rss_mib']:.0f} MiB, worker {r['worker_private_mib']:.0f} MiB private "
                    f"({r['batches_e2']} batches of rank 0, fnames: {r['fnames']})")
            results.append(dict(corpus=corpus, rows=rows, ratios=ratios(rows)))
    return results


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    if args.measure:
        import logging

        logging.disable(logging.INFO)  # fairseq logs every epoch at INFO; keep warnings
        print(json.dumps(measure(args.measure[0], Path(args.measure[1]), args.profile)))
        return
    sizes = [100_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    start = time.perf_counter()
    results = run_benchmark(sizes, args.languages, args.zipf_s, args.workdir, args.profile,
                            log=lambda s: print(s, file=sys.stderr, flush=True))
    print(markdown(results))
    print()
    print(goals_text(results))
    if args.profile:
        for res in results:
            for system in SYSTEMS:
                print(f"\n## cProfile, epoch-2 plan, {system}, {res['corpus']['utterances']:,} utterances")
                print(res["rows"][system]["profile"])
    wall = time.perf_counter() - start
    print(f"\ncommit {git_commit()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, {wall:.0f} s in all")
    if args.json:
        meta = dict(commit=git_commit(), argv=sys.argv[1:], date=time.strftime("%Y-%m-%d"),
                    cpus=os.cpu_count(), wall_s=wall, max_tokens=MAX_TOKENS, num_shards=NUM_SHARDS,
                    task=TASK_ARGS)
        for res in results:
            for r in res["rows"].values():
                r.pop("profile", None)
        args.json.write_text(json.dumps(dict(meta=meta, results=results), indent=1) + "\n")


if __name__ == "__main__":
    main()
