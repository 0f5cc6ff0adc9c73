"""Language-balanced sampling of XLSR (Conneau et al. 2020, section 3.2).

Batches are drawn from language ``l`` with probability

    p_l ∝ (n_l / N) ** alpha

where ``n_l`` is the hours of unlabeled speech of language ``l`` and ``N`` their sum.
``alpha = 1`` keeps the natural distribution, ``alpha = 0`` samples languages
uniformly; the paper uses 0.5 (0.3 and 0.7 in its ablation). Low-resource languages
are up-sampled, high-resource ones down-sampled.

Used by the ``xlsr_pretraining`` / ``xlsr_finetuning`` tasks and by
``xlsr-manifest balance``, so the table a user sees is the one training applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Mapping, Sequence


def check_alpha(alpha: float) -> float:
    if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
        raise ValueError(
            f"sampling alpha must be in [0, 1] (1 = natural distribution, "
            f"0 = uniform over languages, the paper uses 0.5); got {alpha!r}"
        )
    return float(alpha)


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


def sampling_table(
    hours: Mapping[str, float], utterances: Mapping[str, int], alpha: float
) -> List[LanguageShare]:
    probs = sampling_probabilities(hours, alpha)
    total = math.fsum(hours.values())
    return [
        LanguageShare(lang, hours[lang], int(utterances[lang]), hours[lang] / total, probs[lang])
        for lang in hours
    ]


def format_table(rows: Sequence[LanguageShare], alpha: float) -> str:
    lines = [
        f"language sampling, alpha={alpha:g}: p_l ∝ (n_l/N)^alpha",
        f"{'lang':<8} {'hours':>9} {'utts':>8} {'natural':>8} {'sampled':>8} {'ratio':>7}",
    ]
    for r in rows:
        lines.append(
            f"{r.lang:<8} {r.hours:>9.3f} {r.utterances:>8d} {r.natural:>8.2%} "
            f"{r.sampled:>8.2%} {r.ratio:>6.2f}x"
        )
    return "\n".join(lines)


def utterance_weights(
    probs: Mapping[str, float], hours: Mapping[str, float], utterances: Mapping[str, int]
) -> Dict[str, float]:
    """Per-utterance corpus weights whose *audio* shares equal ``probs``.

    fairseq's ``MultiCorpusDataset`` draws a share of utterances per corpus, while
    batches are filled up to ``max_tokens`` samples of audio; weighting each language
    by ``p_l / mean utterance duration`` makes the share of sampled audio (and so of
    batches) equal ``p_l`` even when languages differ in utterance length.
    """
    raw = {lang: probs[lang] * utterances[lang] / hours[lang] for lang in probs}
    return exact_distribution(raw)
