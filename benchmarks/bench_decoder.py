"""CTC beam search with a word n-gram: the plugin's decoder (flashlight-text, lexicon + KenLM,
what ``fairseq-generate --ctc-decoder beam --kenlm-model --lexicon`` runs) against
``pyctcdecode`` (+ the ``kenlm`` package) on the same log-probabilities, the same ARPA
file and the same beam width.

Emissions are synthetic but shaped like a CTC model's: each reference letter (and each
word's ``|``) holds 1-4 frames, blanks between; with probability ``--confusion`` a frame
prefers a wrong letter, so greedy decoding makes errors a word LM can fix. The words are
pseudo-words drawn with Zipf frequencies; the LM is ``xlsr-ngram`` (3-gram) over 5000
sentences of the same distribution, its lexicon written by ``xlsr-ngram --lexicon``
(pyctcdecode gets the same words as its unigram list). The LM weight of each decoder is
picked from ``--lm-weights`` by its own WER on the set (their scales differ: pyctcdecode
converts KenLM's log10 to ln, flashlight does not), then both are timed at their best
weight, alternating, one utterance at a time in one thread. Reported: WER / CER of both
(and of greedy decoding), utterances per second, and the speed ratio.

    .venv/bin/python benchmarks/bench_decoder.py --utterances 100 --beam 50 --repeats 3
"""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import editdistance  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench_infer import BIN, LETTERS, pseudo_words, sentences  # noqa: E402

# pyctcdecode: score added to an out-of-vocabulary word (its default -10 lets some through;
# the plugin decodes with a lexicon, which allows none)
UNK_OFFSET = -100.0
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]  # fairseq's dictionary; <s> is the CTC blank


def make_dictionary():
    from fairseq.data import Dictionary

    d = Dictionary()
    for s in ["|", *LETTERS]:
        d.add_symbol(s)
    assert d.symbols[:4] == SPECIALS
    return d


def emissions_for(text: str, d, rng, confusion: float) -> torch.Tensor:
    tokens = [d.index(c) for w in text.split() for c in [*w, "|"]]
    frames = []
    for tok in tokens:
        frames += [tok] * int(rng.integers(1, 5)) + [d.bos()] * int(rng.integers(0, 3))
    logits = rng.normal(0, 1, (len(frames), len(d))).astype("float32")
    logits[:, 1:4] = -20  # <pad> </s> <unk>: never emitted
    for t, tok in enumerate(frames):
        best = tok
        if tok != d.bos() and rng.random() < confusion:
            best = d.index(LETTERS[rng.integers(len(LETTERS))])
            logits[t, tok] += 4.0  # the right letter a close second
        logits[t, best] += 6.0
    return torch.from_numpy(logits).log_softmax(-1)


def error_rates(refs, hyps):
    w = sum(editdistance.eval(r.split(), h.split()) for r, h in zip(refs, hyps)) / sum(len(r.split()) for r in refs)
    c = sum(editdistance.eval(r, h) for r, h in zip(refs, hyps)) / sum(len(r) for r in refs)
    return 100 * w, 100 * c


class Flashlight:
    name = "flashlight (plugin)"

    def __init__(self, d, arpa, lexicon, beam, lm_weight):
        from xlsr_plugin.decoding.beam import BeamOptions, FlashlightDecoder

        self.decoder = FlashlightDecoder(d, BeamOptions(beam=beam, lm_weight=lm_weight), str(arpa), str(lexicon))

    def __call__(self, emissions):
        return " ".join(self.decoder.decode(emissions)[0]["words"])


class PyCtcDecode:
    name = "pyctcdecode"

    def __init__(self, d, arpa, words, beam, lm_weight):
        from pyctcdecode import build_ctcdecoder

        labels = ["", "<pad>", "</s>", "<unk>", " ", *LETTERS]
        assert len(labels) == len(d)
        self.decoder = build_ctcdecoder(labels, kenlm_model_path=str(arpa), unigrams=words, alpha=lm_weight, beta=0.0,
                                        unk_score_offset=UNK_OFFSET)
        self.beam = beam

    def __call__(self, emissions):
        return " ".join(self.decoder.decode(emissions.numpy(), beam_width=self.beam).split())


def greedy(d, emissions):
    from xlsr_plugin.decoding.ctc import GreedyDecoder

    tokens = GreedyDecoder(d.bos()).decode(emissions)[0]["tokens"]
    return " ".join(d.string(tokens).replace(" ", "").replace("|", " ").split())


def decode_all(decoder, emissions):
    start = time.perf_counter()
    hyps = [decoder(e) for e in emissions]
    return time.perf_counter() - start, hyps


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--utterances", type=int, default=100)
    p.add_argument("--beam", type=int, default=50)
    p.add_argument("--confusion", type=float, default=0.1, help="share of letter frames that prefer a wrong letter")
    p.add_argument("--lm-weights", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0, 4.0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="30 utterances, beam 20, 1 repeat")
    p.add_argument("--json", type=Path)
    p.add_argument("--skip-missing", action="store_true",
                   help="without pyctcdecode / kenlm: say so and exit 0 (make bench) instead of failing")
    args = p.parse_args(argv)
    if args.quick:
        args.utterances, args.beam, args.repeats = 30, 20, 1
    missing = [m for m in ("kenlm", "pyctcdecode") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"bench_decoder.py needs {' and '.join(missing)}: pip install 'xlsr-plugin[bench]' && "
              "pip install --no-deps pyctcdecode pygtrie", file=sys.stderr)
        if args.skip_missing:
            print("bench_decoder.py: SKIPPED (pyctcdecode / kenlm not installed)")
            return
        raise SystemExit(1)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    words = pseudo_words(rng)
    d = make_dictionary()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "lm.wrd").write_text("\n".join(sentences(rng, words, 5000)) + "\n")
        subprocess.run([str(BIN / "xlsr-ngram"), str(root / "lm.wrd"), "--order", "3", "-o", str(root / "lm.arpa"),
                        "--lexicon", str(root / "lm.lex")], check=True, stdout=subprocess.DEVNULL)
        refs = sentences(rng, words, args.utterances)
        emissions = [emissions_for(r, d, rng, args.confusion) for r in refs]
        frames = sum(len(e) for e in emissions)
        lm_words = sorted({w for line in (root / "lm.wrd").read_text().split("\n") for w in line.split()})
        builders = {"flashlight": lambda w: Flashlight(d, root / "lm.arpa", root / "lm.lex", args.beam, w),
                    "pyctcdecode": lambda w: PyCtcDecode(d, root / "lm.arpa", lm_words, args.beam, w)}
        result = {"utterances": args.utterances, "frames": frames, "beam": args.beam, "confusion": args.confusion,
                  "greedy": dict(zip(("wer", "cer"), error_rates(refs, [greedy(d, e) for e in emissions])))}
        chosen = {}
        for name, build in builders.items():
            tried = {}
            for w in args.lm_weights:
                tried[w] = error_rates(refs, decode_all(build(w), emissions)[1])
            best = min(tried, key=lambda w: tried[w])
            chosen[name] = build(best)
            result[name] = {"lm_weight": best, "wer": tried[best][0], "cer": tried[best][1],
                            "by_weight": {str(w): v for w, v in tried.items()}, "times_s": []}
        for rep in range(args.repeats):
            for name in (builders if rep % 2 == 0 else list(builders)[::-1]):
                result[name]["times_s"].append(decode_all(chosen[name], emissions)[0])
    print(f"{args.utterances} utterances, {frames} frames, beam {args.beam}, word 3-gram + lexicon, 1 thread; "
          f"greedy WER {result['greedy']['wer']:.1f} CER {result['greedy']['cer']:.1f}")
    print(f"{'decoder':<22} {'lm weight':>9} {'WER':>6} {'CER':>6} {'s':>7} {'utt/s':>7}")
    for name in builders:
        r = result[name]
        r["median_s"] = statistics.median(r["times_s"])
        print(f"{name:<22} {r['lm_weight']:>9g} {r['wer']:>6.1f} {r['cer']:>6.1f} {r['median_s']:>7.2f} "
              f"{args.utterances / r['median_s']:>7.1f}")
    speed = result["pyctcdecode"]["median_s"] / result["flashlight"]["median_s"]
    result["speed_ratio"] = speed
    print(f"flashlight speed / pyctcdecode speed: {speed:.1f}x (median of {args.repeats} alternating runs)")
    if args.json:
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
