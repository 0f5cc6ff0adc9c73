"""A small back-off n-gram language model in ARPA format, in pure Python.

The plugin's beam-search decoder (``xlsr_plugin.decoding.beam``) reads ARPA files with
KenLM. Building one is offline data preparation, like the dictionaries, so it lives
with the corpus tools and the plugin never imports it.

KenLM's ``lmplz`` needs a C++ build; for the token (phone/letter) or word LMs of small
test sets and the demo this module writes an equivalent ARPA file directly:
absolute discounting with Katz-style back-off, one ``<s>`` ... ``</s>`` per line,
``<unk>`` given the mass the discount frees at the unigram level. Use ``lmplz``
(modified Kneser-Ney) for corpora of millions of words.

``xlsr-ngram`` is the command line (``python -m manifests.ngram``)::

    xlsr-ngram data/train_es.phn --order 4 -o lm/es.phn.4gram.arpa
    xlsr-ngram data/train_es.wrd --order 3 -o lm/es.3gram.arpa --lexicon lm/es.lex
"""

import argparse
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple

from manifests.formats import atomic_write
from xlsr_core.labels import SEPARATOR

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
Gram = Tuple[str, ...]


def count_ngrams(lines: Iterable[str], order: int) -> List[Counter]:
    """``counts[k]`` holds the (k+1)-grams of the ``<s>``/``</s>``-padded lines."""
    counts = [Counter() for _ in range(order)]
    for line in lines:
        toks = [BOS] + line.split() + [EOS]
        for k in range(order):
            for i in range(len(toks) - k):
                counts[k][tuple(toks[i : i + k + 1])] += 1
    return counts


class BackoffLM:
    """Probabilities and back-off weights of an absolute-discounting back-off model."""

    def __init__(self, counts: List[Counter], discount: float = 0.5):
        if not 0 < discount < 1:
            raise ValueError(f"discount must be in (0, 1), got {discount}")
        if not counts or not counts[0]:
            raise ValueError("no text to build a language model from")
        self.order = len(counts)
        self.prob: List[Dict[Gram, float]] = [dict() for _ in counts]
        self.bow: Dict[Gram, float] = {}
        self._unigrams(counts[0], discount)
        for k in range(1, self.order):
            self._higher(counts[k], discount)

    def _unigrams(self, counts: Counter, d: float) -> None:
        seen = {g: c for g, c in counts.items() if g != (BOS,)}
        total = sum(seen.values())
        freed = d * len(seen) / total  # spread evenly over the seen words and <unk>
        for g, c in seen.items():
            self.prob[0][g] = (c - d) / total + freed / (len(seen) + 1)
        self.prob[0][(UNK,)] = self.prob[0].get((UNK,), 0.0) + freed / (len(seen) + 1)
        self.prob[0][(BOS,)] = 0.0  # never predicted; ARPA convention -99

    def _higher(self, counts: Counter, d: float) -> None:
        k = len(next(iter(counts)))
        by_context: Dict[Gram, List[Tuple[str, int]]] = defaultdict(list)
        for g, c in counts.items():
            by_context[g[:-1]].append((g[-1], c))
        for h, followers in by_context.items():
            total = sum(c for _, c in followers)
            for w, c in followers:
                self.prob[k - 1][h + (w,)] = (c - d) / total
            lower = sum(self.p(h[1:], w) for w, _ in followers)
            self.bow[h] = (d * len(followers) / total) / (1.0 - lower)

    def p(self, history: Gram, word: str) -> float:
        """P(word | history), backing off as far as needed."""
        history = tuple(history[-(self.order - 1):]) if self.order > 1 else ()
        while True:
            g = history + (word,)
            if g in self.prob[len(history)]:
                return self.prob[len(history)][g]
            if not history:
                return self.prob[0][(UNK,)]
            weight = self.bow.get(history, 1.0)
            history = history[1:]
            return weight * self.p(history, word)

    def arpa_lines(self) -> Iterable[str]:
        yield "\\data\\"
        for k, probs in enumerate(self.prob):
            yield f"ngram {k + 1}={len(probs)}"
        for k, probs in enumerate(self.prob):
            yield ""
            yield f"\\{k + 1}-grams:"
            for g in sorted(probs):
                lp = -99.0 if probs[g] <= 0 else math.log10(probs[g])
                line = f"{lp:.6f}\t{' '.join(g)}"
                if k + 1 < self.order:
                    line += f"\t{math.log10(self.bow.get(g, 1.0)):.6f}"
                yield line
        yield ""
        yield "\\end\\"


def write_arpa(lines: Iterable[str], path, order: int = 3, discount: float = 0.5) -> BackoffLM:
    """Build an ``order``-gram model of ``lines`` (whitespace-separated tokens) into ``path``."""
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    lm = BackoffLM(count_ngrams(lines, order), discount)
    with atomic_write(path) as f:
        for line in lm.arpa_lines():
            print(line, file=f)
    return lm


def write_lexicon(words: Iterable[str], path, separator: str = SEPARATOR) -> int:
    """``word<TAB>w o r d |`` per word: spellings in ``.ltr`` letters for lexicon decoding."""
    vocab = sorted(set(words) - {BOS, EOS, UNK})
    with atomic_write(path) as f:
        for w in vocab:
            print(f"{w}\t{' '.join(w)} {separator}", file=f)
    return len(vocab)


def read_text(paths: Sequence) -> List[str]:
    lines: List[str] = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            lines += [line.strip() for line in f if line.strip()]
    return lines


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xlsr-ngram", description="Write a back-off n-gram LM (ARPA) for CTC beam search."
    )
    p.add_argument("text", nargs="+", help="text files, one utterance a line (.phn, .ltr or .wrd labels)")
    p.add_argument("-o", "--output", required=True, help="ARPA file to write")
    p.add_argument("--order", type=int, default=3, help="n-gram order (default 3)")
    p.add_argument("--discount", type=float, default=0.5, help="absolute discount in (0, 1) (default 0.5)")
    p.add_argument("--lexicon", help="also write a lexicon of the words spelled in .ltr letters")
    return p


def build_ngram(text: Sequence, output, order: int = 3, discount: float = 0.5, lexicon=None) -> BackoffLM:
    lines = read_text(text)
    lm = write_arpa(lines, output, order, discount)
    if lexicon:
        write_lexicon((w for line in lines for w in line.split()), lexicon)
    return lm


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    lm = build_ngram(args.text, args.output, args.order, args.discount, args.lexicon)
    sizes = ", ".join(f"{k + 1}-grams {len(p)}" for k, p in enumerate(lm.prob))
    print(f"wrote {Path(args.output)} ({sizes})" + (f" and {args.lexicon}" if args.lexicon else ""))


if __name__ == "__main__":
    main()
