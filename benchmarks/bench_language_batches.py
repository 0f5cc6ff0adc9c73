"""``task.language_batches``: what one language per batch costs against mixed batches.

On the synthetic corpus of ``bench_epoch_plan.py`` (Zipf-shaped languages, 2-15 s
utterances, the recipes' ``max_sample_size``/``min_sample_size``/``max_tokens``), one
epoch's batches of ``xlsr_pretraining`` are built in both modes from the same draw and
measured without opening audio: batches and utterances per batch; the audio cropped
away (pre-training crops every batch to its shortest utterance, ``pad=False``); the
batches under half the median size (each language's last partial batch); and how many
updates see a single language at ``update_freq=1`` on 1 and on 8 GPUs.

    .venv/bin/python benchmarks/bench_language_batches.py --utterances 200000
"""

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_epoch_plan import setup, write_corpus  # noqa: E402


def batch_stats(mode: str, data: Path, max_tokens: int, epoch: int = 1) -> dict:
    task = setup(mode, data, data)
    task.load_dataset("train")
    ds = task.dataset("train")
    ds.set_epoch(epoch)
    indices, _ = ds.filter_indices_by_size(ds.ordered_indices(), (max_tokens, max_tokens))
    batches = ds.batch_by_size(indices, max_tokens=max_tokens, required_batch_size_multiple=8)
    tokens = [ds.num_tokens_vec(b) for b in batches]
    kept = sum(len(t) * int(t.min()) for t in tokens)
    total = sum(int(t.sum()) for t in tokens)
    lens = np.array([len(b) for b in batches])
    langs = [np.unique(ds.language_of(b)) for b in batches]
    rng = np.random.default_rng(0)  # fairseq shuffles batches, then each GPU takes one
    order = rng.permutation(len(batches))
    one_gpu = np.mean([len(langs[i]) == 1 for i in order])
    eight = order[: len(order) // 8 * 8].reshape(-1, 8)
    eight_gpu = np.mean([len(np.unique(np.concatenate([langs[i] for i in u]))) == 1 for u in eight])
    return {
        "batches": float(len(batches)), "utts/batch": lens.mean(), "cropped %": 100 * (1 - kept / total),
        "small batches": float((lens < np.median(lens) / 2).sum()),
        "langs/batch": np.mean([len(l) for l in langs]),
        "1-lang updates, 1 GPU %": 100 * one_gpu, "1-lang updates, 8 GPUs %": 100 * eight_gpu,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=200_000)
    parser.add_argument("--languages", type=int, default=50)
    parser.add_argument("--max-tokens", type=int, default=1_400_000)
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        data, _ = write_corpus(Path(tmp), args.utterances, args.languages)
        rows = {mode: batch_stats(mode, data, args.max_tokens) for mode in ("one", "mixed")}
    print(f"{args.utterances} utterances, {args.languages} languages, max_tokens {args.max_tokens}, epoch 1")
    print(f"{'':<26}" + "".join(f"{m:>10}" for m in rows))
    for key in rows["one"]:
        print(f"{key:<26}" + "".join(f"{rows[m][key]:>10.3f}" for m in rows))


if __name__ == "__main__":
    sys.exit(main())
