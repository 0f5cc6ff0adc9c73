"""Language-balanced sampling of XLSR (Conneau et al. 2020, section 3.2).

Batches are drawn from language ``l`` with probability

    p_l ∝ (n_l / N) ** alpha

where ``n_l`` is the hours of unlabeled speech of language ``l`` and ``N`` their sum.
``alpha = 1`` keeps the natural distribution, ``alpha = 0`` samples languages
uniformly; the paper uses 0.5 (0.3 and 0.7 in its ablation). Low-resource languages
are up-sampled, high-resource ones down-sampled.

``n_l`` is the audio training can draw: :func:`language_hours` of the language's
utterance sizes (samples, as in a manifest) left after the ``min_sample_size`` filter of
fairseq's ``FileAudioDataset``, which never loads a shorter utterance
(:func:`kept_utterances`). :class:`SamplingTable` holds, for one set of languages, the
rows (hours, utterances, natural and sampled shares), the per-utterance weights that
give each language its share of the audio, and the table as printed.

The ``xlsr_pretraining`` / ``xlsr_finetuning`` tasks build it from their datasets'
sizes and log it; ``xlsr-manifest balance`` builds it from the manifests with the same
``--min-sample-size``: the table a user sees is the one training applies.

XLS-R (Babu et al. 2021) mixed several corpora (VoxPopuli, MLS, CommonVoice,
VoxLingua107, BABEL) by sampling at two levels, each with its own alpha: first a corpus,
p_d ∝ (n_d/N)^alpha_corpus, then a language inside it, p_{l|d} ∝ (n_{d,l}/n_d)^alpha.
:class:`TwoLevelSamplingTable` holds both levels; a (corpus, language) pair, a *unit*
named ``corpus/lang``, gets p_d · p_{l|d}.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

Sizes = Union[np.ndarray, Sequence[int]]


def check_alpha(alpha: float) -> float:
    if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
        raise ValueError(
            f"sampling alpha must be in [0, 1] (1 = natural distribution, "
            f"0 = uniform over languages, the paper uses 0.5); got {alpha!r}"
        )
    return float(alpha)


def kept_utterances(sizes: Sizes, min_sample_size: Optional[int] = None) -> np.ndarray:
    """Boolean mask of the utterances training loads: fairseq's ``FileAudioDataset``
    skips those of fewer than ``min_sample_size`` samples (``None``: keeps all)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if min_sample_size is None:
        return np.ones(len(sizes), dtype=bool)
    return sizes >= min_sample_size


def language_hours(sizes: Sizes, sample_rate: int, min_sample_size: Optional[int] = None) -> float:
    """A language's ``n_l``: hours of the utterances (sizes in samples) training keeps."""
    sizes = np.asarray(sizes, dtype=np.int64)
    kept = sizes[kept_utterances(sizes, min_sample_size)]
    return int(kept.sum(dtype=np.int64)) / sample_rate / 3600.0


def sampling_probabilities(hours: Mapping[str, float], alpha: float) -> Dict[str, float]:
    """p_l ∝ (n_l/N)^alpha for every language of ``hours`` (keys kept in order)."""
    check_alpha(alpha)
    if not hours:
        raise ValueError("no languages to sample from")
    empty = [lang for lang, h in hours.items() if not h > 0]
    if empty:
        raise ValueError(
            f"language(s) {', '.join(empty)} have no audio; remove them from the "
            "language list or add data"
        )
    total = math.fsum(hours.values())
    unnorm = {lang: (h / total) ** alpha for lang, h in hours.items()}
    z = math.fsum(unnorm.values())
    return exact_distribution({lang: w / z for lang, w in unnorm.items()})


def exact_distribution(weights: Mapping[str, float]) -> Dict[str, float]:
    """Normalise ``weights`` so that ``sum(values)`` is exactly 1.0.

    fairseq's ``MultiCorpusDataset`` asserts ``sum(distribution) == 1`` with plain
    float addition; one weight is moved by a few ulps to absorb the rounding error.
    """
    keys = list(weights)
    total = math.fsum(weights.values())
    if not total > 0:
        raise ValueError("weights must have a positive sum")
    values = [weights[k] / total for k in keys]
    for i in sorted(range(len(values)), key=lambda j: -values[j]):
        base = values[i]
        for direction in (math.inf, -math.inf):
            x = base
            for _ in range(256):
                if sum(values) == 1.0:
                    return dict(zip(keys, values))
                x = math.nextafter(x, direction)
                values[i] = x
            values[i] = base
    raise ArithmeticError(f"cannot make {values} sum to exactly 1.0")


@dataclass(frozen=True)
class LanguageShare:
    """One row of the sampling table."""

    lang: str
    hours: float
    utterances: int
    natural: float  # n_l / N
    sampled: float  # p_l

    @property
    def ratio(self) -> float:
        """> 1: up-sampled; < 1: down-sampled."""
        return self.sampled / self.natural


@dataclass(frozen=True)
class SamplingTable:
    """XLSR's language sampling for one set of languages, in language order.

    ``utterance_weights`` are the per-utterance corpus weights whose *audio* shares
    equal p_l: fairseq's ``MultiCorpusDataset`` draws a share of utterances per corpus,
    while batches are filled up to ``max_tokens`` samples of audio; weighting each
    language by ``p_l / mean utterance duration`` makes the share of sampled audio (and
    so of batches) p_l even when languages differ in utterance length. They sum to
    exactly 1.0, as ``MultiCorpusDataset`` asserts.
    """

    alpha: float
    rows: Tuple[LanguageShare, ...]
    utterance_weights: Dict[str, float]

    @classmethod
    def from_hours(
        cls, hours: Mapping[str, float], utterances: Mapping[str, int], alpha: float
    ) -> "SamplingTable":
        """The table for ``n_l = hours[l]`` over ``utterances[l]`` utterances."""
        probs = sampling_probabilities(hours, alpha)
        total = math.fsum(hours.values())
        rows = tuple(
            LanguageShare(lang, hours[lang], int(utterances[lang]), hours[lang] / total, probs[lang])
            for lang in hours
        )
        weights = exact_distribution(
            {lang: probs[lang] * utterances[lang] / hours[lang] for lang in probs}
        )
        return cls(check_alpha(alpha), rows, weights)

    @classmethod
    def from_sizes(
        cls,
        sizes: Mapping[str, Sizes],
        alpha: float,
        sample_rate: int,
        min_sample_size: Optional[int] = None,
    ) -> "SamplingTable":
        """The table for per-language utterance sizes (samples), counting only what
        training keeps with ``min_sample_size`` (:func:`language_hours`)."""
        kept = {lang: int(kept_utterances(s, min_sample_size).sum()) for lang, s in sizes.items()}
        empty = [lang for lang, n in kept.items() if n == 0]
        if empty:
            shorter = f" of at least {min_sample_size} samples (min_sample_size)" if min_sample_size else ""
            raise ValueError(
                f"language(s) {', '.join(empty)} have no utterances{shorter}; remove them "
                "from the language list or add data"
            )
        hours = {lang: language_hours(s, sample_rate, min_sample_size) for lang, s in sizes.items()}
        return cls.from_hours(hours, kept, alpha)

    @property
    def languages(self) -> List[str]:
        return [r.lang for r in self.rows]

    @property
    def hours(self) -> Dict[str, float]:
        return {r.lang: r.hours for r in self.rows}

    @property
    def probabilities(self) -> Dict[str, float]:
        """p_l per language; sums to exactly 1.0."""
        return {r.lang: r.sampled for r in self.rows}

    def format(self, of: str = "language", column: str = "lang") -> str:
        """The table the task logs and ``xlsr-manifest balance`` prints (``of="corpus"``:
        the corpus level of two-level sampling)."""
        lines = [
            f"{of} sampling, alpha={self.alpha:g}: p_{of[0]} ∝ (n_{of[0]}/N)^alpha",
            f"{column:<8} {'hours':>9} {'utts':>8} {'natural':>8} {'sampled':>8} {'ratio':>7}",
        ]
        for r in self.rows:
            lines.append(
                f"{r.lang:<8} {r.hours:>9.3f} {r.utterances:>8d} {r.natural:>8.2%} "
                f"{r.sampled:>8.2%} {r.ratio:>6.2f}x"
            )
        return "\n".join(lines)

    __str__ = format


UNIT_SEPARATOR = "/"


def unit_name(corpus: str, lang: str) -> str:
    """The name of a (corpus, language) pair in two-level sampling: ``cv/es``."""
    return f"{corpus}{UNIT_SEPARATOR}{lang}"


@dataclass(frozen=True)
class TwoLevelSamplingTable:
    """Corpora first, then languages inside each corpus (XLS-R's two-level sampling).

    ``corpora`` is the corpus-level table (a corpus' hours are its languages' hours),
    ``languages`` the language table of each corpus, and ``utterance_weights`` the
    per-utterance weights of every unit (``corpus/lang``) whose audio shares are
    p_d · p_{l|d}, summing to exactly 1.0 like :attr:`SamplingTable.utterance_weights`.
    """

    corpora: SamplingTable
    languages: Dict[str, SamplingTable]
    utterance_weights: Dict[str, float]

    @classmethod
    def from_sizes(
        cls,
        sizes: Mapping[str, Mapping[str, Sizes]],
        corpus_alpha: float,
        language_alpha: float,
        sample_rate: int,
        min_sample_size: Optional[int] = None,
    ) -> "TwoLevelSamplingTable":
        """``sizes[corpus][lang]``: utterance sizes (samples) of each unit."""
        languages = {
            corpus: SamplingTable.from_sizes(by_lang, language_alpha, sample_rate, min_sample_size)
            for corpus, by_lang in sizes.items()
        }
        corpora = SamplingTable.from_hours(
            {c: math.fsum(t.hours.values()) for c, t in languages.items()},
            {c: sum(r.utterances for r in t.rows) for c, t in languages.items()},
            corpus_alpha,
        )
        p_corpus = corpora.probabilities
        raw = {
            unit_name(c, r.lang): p_corpus[c] * r.sampled * r.utterances / r.hours
            for c, t in languages.items() for r in t.rows
        }
        return cls(corpora, languages, exact_distribution(raw))

    @property
    def probabilities(self) -> Dict[str, float]:
        """p_d · p_{l|d} per unit (``corpus/lang``)."""
        p_corpus = self.corpora.probabilities
        return {
            unit_name(c, lang): p_corpus[c] * p
            for c, t in self.languages.items() for lang, p in t.probabilities.items()
        }

    def format(self) -> str:
        """Both levels, as the task logs them: the corpus table, then each corpus' languages."""
        parts = [self.corpora.format(of="corpus", column="corpus")]
        for corpus, table in self.languages.items():
            parts.append(f"[{corpus}] " + table.format())
        return "\n".join(parts)

    __str__ = format


__all__ = [
    "LanguageShare",
    "SamplingTable",
    "TwoLevelSamplingTable",
    "unit_name",
    "check_alpha",
    "exact_distribution",
    "kept_utterances",
    "language_hours",
    "sampling_probabilities",
]
