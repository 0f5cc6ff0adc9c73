"""What planning an epoch costs at scale: ``xlsr_pretraining`` against stock
``audio_pretraining`` on a synthetic corpus of many utterances, audio never opened.

Every epoch, on every rank, fairseq-train asks the task for a batch iterator
(``task.get_batch_iterator``) and starts it (``next_epoch_itr``): the epoch's draw,
its ordering by size, the size filter against ``max_positions`` (as the trainer
resolves it: ``(max_tokens, max_tokens)``), the batching and the shard. This script
writes one manifest per language (Zipf-shaped sizes: language ``k`` has utterances
∝ 1/k; durations uniform in 2-15 s) and, in a folder of its own, the same lines as one
combined manifest for stock fairseq; it then times, in this process, loading the
training split (``task.skip_manifest_check=true`` for the plugin) and planning epochs
1 and 2 of shard 0 of ``--shards``. Imports and manifest writing are outside the clock.
Every epoch gets a fresh iterator (``disable_iterator_cache``): stock fairseq would
otherwise hand back epoch 1's cached iterator, whose epoch-2 batches are built only
when it is run through.

    .venv/bin/python benchmarks/bench_epoch_plan.py --utterances 1000000 --languages 50

``--configs`` picks what to run: ``stock``, ``one`` and ``mixed`` (the plugin with
``task.language_batches``; ``plugin`` runs the plugin with its defaults, for versions
without that option).
"""

import argparse
import gc
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000


def write_corpus(root: Path, utterances: int, languages: int, seed: int = 0):
    """Per-language manifests in ``root/data``, one combined manifest in ``root/stock``."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, languages + 1)
    counts = np.floor(weights / weights.sum() * utterances).astype(np.int64)
    counts[0] += utterances - counts.sum()
    data, stock = root / "data", root / "stock"
    data.mkdir(parents=True)
    stock.mkdir(parents=True)
    combined = ["/audio"]
    for k, n in enumerate(counts):
        lang = f"l{k:02d}"
        sizes = rng.integers(2 * SAMPLE_RATE, 15 * SAMPLE_RATE + 1, size=n)
        names = [f"{lang}/{i}.flac\t{s}" for i, s in enumerate(sizes.tolist())]
        (data / f"train_{lang}.tsv").write_text("/audio\n" + "\n".join(names) + "\n")
        combined += names
    (stock / "train.tsv").write_text("\n".join(combined) + "\n")
    return data, stock


def setup(config: str, data: Path, stock: Path):
    from fairseq import tasks
    from omegaconf import OmegaConf, open_dict

    if config == "stock":
        from fairseq.tasks.audio_pretraining import AudioPretrainingConfig as Config
        cfg = OmegaConf.structured(Config(data=str(stock)))
        name = "audio_pretraining"
    else:
        import xlsr_plugin  # noqa: F401  (registers the task)
        from xlsr_plugin.tasks.xlsr_pretraining import XlsrPretrainingConfig as Config
        cfg = OmegaConf.structured(Config(data=str(data), skip_manifest_check=True))
        name = "xlsr_pretraining"
        with open_dict(cfg):
            cfg.train_subset = "train"
            if config in ("one", "mixed"):
                cfg.language_batches = config
    with open_dict(cfg):
        cfg._name, cfg.seed, cfg.tpu = name, 1, False
        cfg.max_sample_size, cfg.min_sample_size = 250000, 32000
    return tasks.setup_task(cfg)


def measure(config: str, data: Path, stock: Path, shards: int, max_tokens: int, epochs: int):
    task = setup(config, data, stock)
    gc.collect()
    start = time.perf_counter()
    task.load_dataset("train")
    times = {"load": time.perf_counter() - start}
    dataset = task.dataset("train")
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        itr = task.get_batch_iterator(
            dataset, max_tokens=max_tokens, max_positions=(max_tokens, max_tokens),
            ignore_invalid_inputs=True, required_batch_size_multiple=8, seed=1,
            num_shards=shards, shard_id=0, epoch=epoch, disable_iterator_cache=True,
        ).next_epoch_itr(shuffle=True)
        times[f"epoch {epoch}"] = time.perf_counter() - start
        times[f"batches {epoch}"] = len(itr)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=1_000_000)
    parser.add_argument("--languages", type=int, default=50)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=1_400_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--configs", nargs="+", default=["stock", "one", "mixed"],
                        choices=["stock", "plugin", "one", "mixed"])
    args = parser.parse_args(argv)
    import logging
    logging.disable(logging.WARNING)  # the plugin logs its 50-row table per load

    with tempfile.TemporaryDirectory() as tmp:
        data, stock = write_corpus(Path(tmp), args.utterances, args.languages)
        rows = [(c, measure(c, data, stock, args.shards, args.max_tokens, args.epochs))
                for c in args.configs]
    epochs = range(1, args.epochs + 1)
    print(f"{args.utterances} utterances, {args.languages} languages, shard 0 of "
          f"{args.shards}, max_tokens {args.max_tokens} (seconds)")
    print(f"{'config':<8} {'load':>7} " + " ".join(f"{'epoch ' + str(e):>8}" for e in epochs)
          + f" {'batches':>8}")
    for config, t in rows:
        print(f"{config:<8} {t['load']:>7.2f} " + " ".join(f"{t[f'epoch {e}']:>8.2f}" for e in epochs)
              + f" {t['batches 1']:>8d}")
    if any(c != "stock" for c in args.configs):
        import xlsr_plugin
        print(f"plugin: {Path(xlsr_plugin.__file__).parent}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    sys.exit(main())
