"""End-to-end CTC inference: ``fairseq-generate --user-dir xlsr_plugin`` (greedy, and beam
search with a word n-gram) against transformers' ``Wav2Vec2ForCTC`` + greedy decoding, on
the same audio with the same weights.

The model is ``xlsr_ctc`` over an ``xlsr_base``-size encoder with random weights (speed does
not depend on them): one pre-training update and one fine-tuning update of the plugin's
own CLIs on a few clips make a real fine-tuned checkpoint (letters + ``|``), and
``xlsr-checkpoint to-hf`` converts it, so both sides compute the same logits. The test set
is N clips of noise and tones with lengths drawn in ``--min-seconds``..``--max-seconds``
(16 kHz FLAC, as fairseq-generate reads them); the LM is ``xlsr-ngram`` over a text of
pseudo-words, with its lexicon.

Timing: each fairseq-generate is a fresh process (``OMP_NUM_THREADS`` = ``--threads``);
its start-up (imports, loading the checkpoint, building the decoder) is the same command
on a one-clip subset, subtracted, so the real-time factor is (wall(N) - wall(1)) / (audio(N)
- audio(1)). fairseq-generate's own "in X s" (generation only) is reported too.
transformers runs in this process after loading (its load time reported apart): for each
clip, the feature extractor, the forward pass, argmax and ``batch_decode``, one clip at a
time as its pipeline does. Runs alternate (fairseq, transformers, fairseq, ...) and the
medians are reported. The greedy transcripts of both sides are compared (equal weights,
equal decoding: they must match).

    .venv/bin/python benchmarks/bench_infer.py --utterances 40 --repeats 3
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

BIN = Path(sys.executable).parent
PLUGIN = REPO / "xlsr_plugin"
LANG = "en"
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def pseudo_words(rng, n=400):
    return sorted({"".join(rng.choice(list(LETTERS), rng.integers(2, 8))) for _ in range(n)})


def sentences(rng, words, n, mean_words=8):
    """Zipf-distributed words (an LM has something to learn)."""
    p = 1 / np.arange(1, len(words) + 1)
    p /= p.sum()
    return [" ".join(rng.choice(words, max(1, rng.poisson(mean_words)), p=p)) for _ in range(n)]


def write_split(data: Path, split: str, durations, texts, rng):
    import soundfile as sf

    audio = data / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    tsv, ltr, wrd = [str(audio)], [], []
    for i, (dur, text) in enumerate(zip(durations, texts)):
        n = int(16000 * dur)
        t = np.arange(n) / 16000
        x = 0.05 * rng.standard_normal(n) + 0.1 * np.sin(2 * np.pi * rng.uniform(100, 800) * t)
        name = f"{split}_{i}.flac"
        sf.write(audio / name, x.astype("float32"), 16000)
        tsv.append(f"{name}\t{n}")
        wrd.append(text)
        ltr.append(" ".join(" ".join(w) + " |" for w in text.split()))
    for suffix, lines in (("tsv", tsv), ("ltr", ltr), ("wrd", wrd)):
        (data / f"{split}_{LANG}.{suffix}").write_text("\n".join(lines) + "\n")
    return sum(int(line.split("\t")[1]) for line in tsv[1:]) / 16000


def make_corpus(root: Path, n: int, lo: float, hi: float, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    data = root / "data"
    words = pseudo_words(rng)
    durations = rng.uniform(lo, hi, n)
    seconds = {
        "train": write_split(data, "train", [2.0] * 4, sentences(rng, words, 4), rng),
        "dev": write_split(data, "dev", [1.5] * 2, sentences(rng, words, 2), rng),
        "test": write_split(data, "test", durations, sentences(rng, words, n), rng),
        "one": write_split(data, "one", durations[:1], sentences(rng, words, 1), rng),
    }
    (data / "dict.ltr.txt").write_text("".join(f"{c} 1\n" for c in ["|", *LETTERS]))
    text = root / "lm.wrd"
    text.write_text("\n".join(sentences(rng, words, 5000)) + "\n")
    subprocess.run([str(BIN / "xlsr-ngram"), str(text), "--order", "3", "-o", str(root / "lm.arpa"),
                    "--lexicon", str(root / "lm.lex")], check=True, stdout=subprocess.DEVNULL)
    return {"data": data, "seconds": seconds, "arpa": root / "lm.arpa", "lexicon": root / "lm.lex"}


def run(args, threads, check=True):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    start = time.perf_counter()
    out = subprocess.run([str(a) for a in args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - start
    if check and out.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{out.stdout[-4000:]}")
    return out.stdout, wall


def make_checkpoint(root: Path, data: Path, threads: int) -> Path:
    """An xlsr_ctc checkpoint over an xlsr_base encoder: 1 pre-training + 1 fine-tuning update."""
    common = ["--optimizer", "adam", "--lr", "1e-6", "--max-update", "1", "--max-tokens", "64000",
              "--required-batch-size-multiple", "1", "--num-workers", "0", "--no-epoch-checkpoints",
              "--valid-subset", "dev", "--disable-validation", "--log-format", "simple", "--seed", "1",
              "--user-dir", PLUGIN]
    run([BIN / "fairseq-train", data, "--task", "xlsr_pretraining", "--arch", "xlsr_base",
         "--criterion", "xlsr_wav2vec", "--save-dir", root / "pre", *common], threads)
    run([BIN / "fairseq-train", data, "--task", "xlsr_finetuning", "--labels", "ltr", "--arch", "xlsr_ctc",
         "--w2v-path", root / "pre" / "checkpoint_last.pt", "--criterion", "xlsr_ctc", "--zero-infinity",
         "--save-dir", root / "ft", *common], threads)
    # fairseq's <pad>, </s>, <unk> (1-3) out of reach of the argmax, as in a trained model
    # (never targets): transformers would print them, fairseq drops them
    import torch
    from omegaconf import OmegaConf

    from xlsr_plugin.checkpoint import load_checkpoint

    state = load_checkpoint(str(root / "ft" / "checkpoint_last.pt"))
    state["model"]["w2v_encoder.proj.bias"][1:4] -= 100.0
    torch.save(dict(state, cfg=OmegaConf.to_container(state["cfg"])), root / "ctc.pt")
    return root / "ctc.pt"


def generate_command(data, ckpt, subset, results, decoder, corpus, args):
    cmd = [BIN / "fairseq-generate", data, "--user-dir", PLUGIN, "--task", "xlsr_finetuning",
           "--path", ckpt, "--gen-subset", subset, "--labels", "ltr", "--scoring", "cer",
           "--num-workers", "0", "--results-path", results]
    if args.max_batch_seconds:  # batches of clips of similar length (BASE's group norm then sees padding)
        cmd += ["--max-tokens", str(int(args.max_batch_seconds * 16000))]
    else:  # one clip at a time, as transformers runs here: the same logits
        cmd += ["--batch-size", "1", "--max-tokens", str(int(args.max_seconds * 16000) + 1)]
    if decoder == "greedy":
        return cmd + ["--ctc-decoder", "greedy"]
    return cmd + ["--ctc-decoder", "beam", "--beam", str(args.beam), "--kenlm-model", corpus["arpa"],
                  "--lexicon", corpus["lexicon"], "--lm-weight", "2", "--word-score", "0"]


def fairseq_run(corpus, ckpt, decoder, args, work: Path):
    timing = {}
    for subset in (f"one_{LANG}", f"test_{LANG}"):
        out, wall = run(generate_command(corpus["data"], ckpt, subset, work / decoder, decoder, corpus, args),
                        args.threads)
        found = re.search(r"Translated ([\d,]+) sentences .* in ([\d.]+)s", out)
        if not found:
            raise SystemExit(f"no 'Translated' line in fairseq-generate's output:\n{out[-3000:]}")
        timing[subset] = {"wall_s": wall, "generate_s": float(found.group(2)),
                          "sentences": int(found.group(1).replace(",", ""))}
    hyps = {}
    for line in (work / decoder / f"generate-test_{LANG}.txt").read_text().splitlines():
        if line.startswith("H-"):
            key, _, text = line.split("\t")
            hyps[int(key[2:])] = text
    return timing, hyps


def load_hf(folder: Path, threads: int):
    import torch
    import transformers

    torch.set_num_threads(threads)
    start = time.perf_counter()
    model = transformers.Wav2Vec2ForCTC.from_pretrained(folder, local_files_only=True).eval()
    processor = transformers.Wav2Vec2Processor.from_pretrained(folder, local_files_only=True)
    return model, processor, time.perf_counter() - start


def hf_run(model, processor, audio):
    import torch

    texts = []
    start = time.perf_counter()
    with torch.inference_mode():
        for wav in audio:
            inputs = processor(wav, sampling_rate=16000, return_tensors="pt")
            ids = model(**inputs).logits.argmax(-1)
            texts.append(processor.batch_decode(ids)[0])
    return time.perf_counter() - start, texts


def load_fairseq(ckpt: Path, data: Path):
    import importlib

    from fairseq import checkpoint_utils

    importlib.import_module("xlsr_plugin")  # registers the task and the model

    models, _, task = checkpoint_utils.load_model_ensemble_and_task([str(ckpt)], arg_overrides={"data": str(data)})
    return models[0].eval(), task


def forward_only(fs_model, hf_model, audio):
    """Seconds of the bare model forward passes, one clip at a time: (fairseq, transformers)."""
    import torch

    times = [0.0, 0.0]
    with torch.inference_mode():
        for wav in audio:
            source = torch.from_numpy(wav)[None]
            for i, call in enumerate((lambda: fs_model(source=source, padding_mask=None), lambda: hf_model(source))):
                start = time.perf_counter()
                call()
                times[i] += time.perf_counter() - start
    return times


def read_audio(data: Path, split: str):
    import soundfile as sf

    root, *lines = (data / f"{split}.tsv").read_text().splitlines()
    return [sf.read(Path(root) / line.split("\t")[0], dtype="float32")[0] for line in lines]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--utterances", type=int, default=40, help="clips in the test set")
    p.add_argument("--min-seconds", type=float, default=3.0)
    p.add_argument("--max-seconds", type=float, default=12.0)
    p.add_argument("--repeats", type=int, default=3, help="alternating runs of each system")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--beam", type=int, default=50)
    p.add_argument("--max-batch-seconds", type=float, default=0,
                   help="fairseq-generate --max-tokens / 16000 (default: --batch-size 1, as transformers here)")
    p.add_argument("--decoders", nargs="+", default=["greedy", "beam-lm"], choices=["greedy", "beam-lm"])
    p.add_argument("--quick", action="store_true", help="12 clips, 1 repeat, greedy only")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--work", type=Path, help="keep corpus and models here (reused when there: same seed)")
    args = p.parse_args(argv)
    if args.quick:
        args.utterances, args.repeats, args.decoders = 12, 1, ["greedy"]
    from xlsr_tools import hf

    with tempfile.TemporaryDirectory() as tmp:
        root = args.work or Path(tmp)
        corpus = make_corpus(root, args.utterances, args.min_seconds, args.max_seconds)
        ckpt = root / "ctc.pt"
        if not ckpt.exists():
            ckpt = make_checkpoint(root, corpus["data"], args.threads)
            hf.to_hf(ckpt, root / "hf")
        model, processor, hf_load = load_hf(root / "hf", args.threads)
        fs_model, _ = load_fairseq(ckpt, corpus["data"])
        audio = read_audio(corpus["data"], f"test_{LANG}")
        seconds = corpus["seconds"]["test"] - corpus["seconds"]["one"]
        runs = {d: [] for d in args.decoders}
        hf_times, forward = [], []
        for rep in range(args.repeats):
            forward.append(forward_only(fs_model, model, audio))
            for decoder in args.decoders:
                timing, fs_hyps = fairseq_run(corpus, ckpt, decoder, args, root / f"gen{rep}")
                runs[decoder].append(timing)
                if decoder == "greedy":
                    greedy_hyps = fs_hyps
            hf_s, hf_texts = hf_run(model, processor, audio)
            hf_times.append(hf_s)
    audio_s = corpus["seconds"]["test"]
    rtf_hf = statistics.median(hf_times) / audio_s
    result = {"utterances": args.utterances, "audio_s": audio_s, "threads": args.threads, "beam": args.beam,
              "transformers": {"load_s": hf_load, "times_s": hf_times, "rtf": rtf_hf}}
    print(f"{args.utterances} clips, {audio_s:.0f} s of audio ({args.min_seconds:g}-{args.max_seconds:g} s), "
          f"xlsr_base-size CTC model, {args.threads} threads, median of {args.repeats} alternating runs")
    print(f"{'system':<34} {'start-up s':>10} {'decode s':>9} {'RTF':>7} {'RTF (gen only)':>14} {'vs HF':>6}")
    for decoder, timings in runs.items():
        startup = statistics.median(t[f"one_{LANG}"]["wall_s"] for t in timings)
        e2e = statistics.median(t[f"test_{LANG}"]["wall_s"] - t[f"one_{LANG}"]["wall_s"] for t in timings)
        gen = statistics.median(t[f"test_{LANG}"]["generate_s"] for t in timings)
        rtf = e2e / seconds
        result[f"fairseq-generate {decoder}"] = {"runs": timings, "startup_s": startup, "rtf": rtf,
                                                 "rtf_generate_only": gen / audio_s, "ratio_vs_hf": rtf / rtf_hf}
        print(f"{'fairseq-generate ' + decoder:<34} {startup:>10.1f} {e2e:>9.1f} {rtf:>7.3f} {gen / audio_s:>14.3f} "
              f"{rtf / rtf_hf:>6.2f}")
    print(f"{'transformers Wav2Vec2ForCTC greedy':<34} {hf_load:>10.1f} {statistics.median(hf_times):>9.1f} "
          f"{rtf_hf:>7.3f} {'':>14} {1:>6.2f}")
    fs_fwd, hf_fwd = (statistics.median(f[i] for f in forward) for i in (0, 1))
    result["forward_only"] = {"fairseq_rtf": fs_fwd / audio_s, "transformers_rtf": hf_fwd / audio_s,
                              "ratio": fs_fwd / hf_fwd, "times_s": forward}
    print(f"model forward only (in process, one clip at a time): fairseq RTF {fs_fwd / audio_s:.3f}, "
          f"transformers {hf_fwd / audio_s:.3f}, ratio {fs_fwd / hf_fwd:.2f}")
    if "greedy" in runs:
        same = sum(greedy_hyps.get(i, None) is not None and greedy_hyps[i].replace(" ", "").replace("|", " ").strip()
                   == hf_texts[i].strip() for i in range(len(hf_texts)))
        result["greedy_same_transcripts"] = same
        print(f"greedy transcripts equal to transformers': {same} of {len(hf_texts)}")
    if args.json:
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=1, default=str))
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
