"""The codebook analysis of XLSR (Conneau et al. 2020): which quantizer entries each language uses.

XLSR's quantizer is shared by all languages: G groups (codebooks) of V entries each
(XLSR-53: 2 x 320). Each frame picks one entry per group. The paper reports that the
learnt discrete units are shared across languages, more so between related languages.
This module holds the statistics and the outputs of ``xlsr-analyze codes``; it only sees
arrays of code indices (frames x G), so it is tested on hand-made codes.

* **Usage**: ``counts[l, g, v]``, how many frames of language ``l`` chose entry ``v`` of
  group ``g``. An entry is *used* by a language when that count is > 0.
* **Shared by k**: how many of the G x V entries are used by exactly k languages.
* **Distribution** of a language: its counts over the G x V (group, entry) pairs divided
  by their sum (G x its frames), so every language weighs the same whatever its amount
  of audio. Groups are not combined into codewords.
* **Distance**: the Jensen-Shannon distance between two languages' distributions
  (``scipy.spatial.distance.jensenshannon``, base 2): the square root of the JS
  divergence, 0 for identical distributions, 1 for distributions on disjoint entries. It
  is a metric, so average-linkage clustering (``scipy.cluster.hierarchy.linkage``) of the
  matrix gives the dendrogram.
* **Split-half distance** of a language: the same distance between the distributions of
  two halves of its utterances (even and odd manifest lines): what sampling alone gives,
  to hold the distances between languages against.
* **Related languages**: when the languages' families are known (:data:`FAMILIES`, or
  given), the mean distance of same-family pairs is compared with that of other pairs,
  and a permutation test (the family labels shuffled over the languages) says how often
  chance gives a gap as large.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
from scipy.cluster.hierarchy import dendrogram, linkage
from scipy.spatial.distance import jensenshannon, squareform

from manifests.formats import atomic_write

FORMAT = "xlsr-analyze-codes/1"
DISTRIBUTION = ("per language: frames' counts of each (group, entry) pair over all G x V pairs, "
                "divided by their sum (G x frames)")
MEASURE = "Jensen-Shannon distance, base 2 (sqrt of the JS divergence): 0 identical, 1 disjoint"
LINKAGE = "average"
PERMUTATIONS = 10_000

# Genealogical groups, for "do related languages share more units?": Indo-European by
# branch (its branches are as old as other families), other families whole. Keys are
# ISO 639 codes; a regional code (sv-SE, zh-CN) falls back to its language. Extend or
# override with --families.
_GROUPS = {
    "Romance": "es fr it pt ro ca gl oc",
    "Germanic": "en de nl sv da no nb nn is fy af lb",
    "Slavic": "ru uk be pl cs sk sl hr sr bs bg mk",
    "Baltic": "lt lv",
    "Celtic": "cy ga gd br",
    "Greek": "el",
    "Indo-Iranian": "fa hi ur bn pa mr gu as ne or ps",
    "Armenian": "hy",
    "Turkic": "tr tt ky kk uz az ba cv tk ug",
    "Uralic": "fi et hu",
    "Sinitic": "zh yue",
    "Semitic": "ar he mt am",
    "Dravidian": "ta te ml kn",
    "Austronesian": "id ms tl jv",
    "Austroasiatic": "vi km",
    "Kra-Dai": "th lo",
    "Bantu": "sw zu rw lg",
    "Kartvelian": "ka",
    "Japonic": "ja",
    "Koreanic": "ko",
    "Mongolic": "mn",
}
FAMILIES: Dict[str, str] = {lang: group for group, langs in _GROUPS.items() for lang in langs.split()}


def family_of(lang: str, families: Mapping[str, str] = FAMILIES) -> Optional[str]:
    return families.get(lang) or families.get(lang.split("-")[0])


# ---------------------------------------------------------------------------------------
# statistics


def count_codes(codes: np.ndarray, entries: int) -> np.ndarray:
    """``G x V`` counts of the entries chosen in ``codes`` (frames x G integers in 0..V-1)."""
    codes = np.asarray(codes, dtype=np.int64)
    frames, groups = codes.shape
    if frames and (codes.min() < 0 or codes.max() >= entries):
        raise ValueError(f"code indices must lie in 0..{entries - 1}, got {codes.min()}..{codes.max()}")
    flat = codes + np.arange(groups) * entries
    return np.bincount(flat.ravel(), minlength=groups * entries).reshape(groups, entries)


def shared_by_k(counts: np.ndarray) -> np.ndarray:
    """``L + 1`` numbers: index k is how many of the G x V entries exactly k languages use
    (``counts``: L x G x V); index 0 counts the entries no language uses."""
    users = (counts > 0).sum(axis=0).ravel()
    return np.bincount(users, minlength=counts.shape[0] + 1)


def distributions(counts: np.ndarray) -> np.ndarray:
    """L x (G*V): each language's counts normalised to sum 1 (see the module docstring)."""
    flat = counts.reshape(counts.shape[0], -1).astype(np.float64)
    totals = flat.sum(axis=1, keepdims=True)
    if (totals == 0).any():
        raise ValueError("a language has no frames: its distribution is undefined")
    return flat / totals


def js_distances(dist: np.ndarray) -> np.ndarray:
    """L x L Jensen-Shannon distances (base 2) between the rows of ``dist``: symmetric,
    zero diagonal, in [0, 1]."""
    n = len(dist)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            d = float(jensenshannon(dist[i], dist[j], base=2))
            # nan: the divergence of (nearly) equal rows rounded below 0 before its square root
            out[i, j] = out[j, i] = min(1.0, d) if np.isfinite(d) else 0.0
    return out


def cluster(distances: np.ndarray) -> np.ndarray:
    """scipy's linkage matrix (average linkage, optimal leaf order) of a distance matrix."""
    return linkage(squareform(distances, checks=False), method=LINKAGE, optimal_ordering=True)


def relatedness(languages: Sequence[str], distances: np.ndarray, families: Mapping[str, str],
                permutations: int = PERMUTATIONS, seed: int = 0) -> dict:
    """Mean distance of same-family pairs vs other pairs (languages without a known
    family left out), and the share of ``permutations`` random relabellings (family
    sizes kept; seeded) whose gap ``other - same`` is at least the observed one."""
    known = [(i, family_of(lang, families)) for i, lang in enumerate(languages)]
    known = [(i, fam) for i, fam in known if fam]
    out = {"families": {}, "unknown": [lang for lang in languages if not family_of(lang, families)]}
    for i, fam in known:
        out["families"].setdefault(fam, []).append(languages[i])
    idx = np.array([i for i, _ in known], dtype=np.int64)
    labels = np.unique([fam for _, fam in known], return_inverse=True)[1] if known else np.zeros(0, np.int64)
    iu = np.triu_indices(len(idx), k=1)
    pair_d = distances[idx[:, None], idx[None, :]][iu]
    same = labels[iu[0]] == labels[iu[1]]
    out.update(same_family_pairs=int(same.sum()), other_pairs=int((~same).sum()))
    if not same.any() or same.all():
        out.update(same_family_mean=None, other_mean=None, gap=None, p_value=None)
        return out
    gap = pair_d[~same].mean() - pair_d[same].mean()
    rng = np.random.default_rng(seed)
    gaps = []
    for start in range(0, permutations, 1000):  # in chunks: bounded memory for many languages
        perms = np.stack([rng.permutation(labels) for _ in range(min(1000, permutations - start))])
        psame = perms[:, iu[0]] == perms[:, iu[1]]
        # a permutation keeps the family sizes, hence the number of same-family pairs
        gaps.append((pair_d * ~psame).sum(1) / (~psame).sum(1) - (pair_d * psame).sum(1) / psame.sum(1))
    gaps = np.concatenate(gaps)
    out.update(same_family_mean=float(pair_d[same].mean()), other_mean=float(pair_d[~same].mean()),
               gap=float(gap), p_value=float((1 + (gaps >= gap - 1e-12).sum()) / (1 + permutations)),
               permutations=permutations, seed=seed)
    return out


@dataclass
class CodeUsage:
    """What the quantizer chose per language: the input of every statistic here."""

    languages: List[str]
    counts: np.ndarray  # L x G x V int64
    utterances: List[int]  # analysed, per language
    frames: List[int]
    info: Dict[str, dict] = field(default_factory=dict)  # per language: manifest, utterances in it
    halves: Optional[np.ndarray] = None  # L x 2 x G x V: counts split in two halves of the utterances

    @property
    def groups(self) -> int:
        return self.counts.shape[1]

    @property
    def entries(self) -> int:
        return self.counts.shape[2]


def analyse(usage: CodeUsage, families: Mapping[str, str] = FAMILIES, seed: int = 0) -> dict:
    """Every statistic of ``usage``, as the JSON-ready dict written to ``codes.json``."""
    langs, counts = usage.languages, usage.counts
    for lang, frames in zip(langs, usage.frames):
        if frames == 0:
            raise ValueError(f"language {lang!r}: zero frames analysed")
    dist = distributions(counts)
    dmat = js_distances(dist)
    link = cluster(dmat)
    leaves = [langs[i] for i in dendrogram(link, no_plot=True)["leaves"]]
    shared = shared_by_k(counts)
    used = counts > 0
    split_half = [None] * len(langs)
    if usage.halves is not None:
        for i, (a, b) in enumerate(usage.halves):
            if a.any() and b.any():  # one utterance: no second half
                split_half[i] = float(js_distances(distributions(np.stack([a, b])))[0, 1])
    per_lang = {}
    for i, lang in enumerate(langs):
        p = dist[i][dist[i] > 0]
        others = [j for j in range(len(langs)) if j != i]
        near = min(others, key=lambda j: (dmat[i, j], j))
        per_lang[lang] = {
            **usage.info.get(lang, {}),
            "utterances": usage.utterances[i], "frames": usage.frames[i],
            "entries_used": int(used[i].sum()),
            "entries_used_per_group": used[i].sum(axis=1).tolist(),
            "perplexity": float(np.exp(-(p * np.log(p)).sum())),  # effective number of entries
            "split_half_distance": split_half[i],
            "nearest": langs[near], "nearest_distance": float(dmat[i, near]),
        }
    result = {
        "format": FORMAT,
        "groups": usage.groups, "entries_per_group": usage.entries, "entries": usage.groups * usage.entries,
        "distribution": DISTRIBUTION,
        "languages": per_lang,
        "entries_used": int(used.any(axis=0).sum()),
        "entries_unused": int(shared[0]),
        "shared_by_k": {str(k): int(shared[k]) for k in range(1, len(langs) + 1)},
        "similarity": {"measure": MEASURE, "languages": langs, "matrix": dmat.round(6).tolist()},
        "clustering": {"method": f"{LINKAGE} linkage (scipy.cluster.hierarchy.linkage, optimal_ordering)",
                       "leaves": leaves, "linkage": link.round(6).tolist()},
        "relatedness": relatedness(langs, dmat, families, seed=seed),
    }
    result["findings"] = findings(result)
    return result


def findings(result: dict) -> List[str]:
    """What the numbers say, in sentences, whichever way they go."""
    langs = result["similarity"]["languages"]
    dmat = np.array(result["similarity"]["matrix"])
    n, total = len(langs), result["entries"]
    shared = result["shared_by_k"]
    out = [f"{result['entries_used']} of the {result['groups']} x {result['entries_per_group']} = {total} "
           f"entries are used by at least one language; {shared[str(n)]} by all {n}, "
           f"{shared['1']} by exactly one ({result['entries_unused']} by none)."]
    iu = np.triu_indices(n, k=1)
    order = np.argsort(dmat[iu], kind="stable")
    lo, hi = order[0], order[-1]
    out.append(f"Closest pair: {langs[iu[0][lo]]}-{langs[iu[1][lo]]} (JS distance {dmat[iu][lo]:.3f}); "
               f"farthest: {langs[iu[0][hi]]}-{langs[iu[1][hi]]} ({dmat[iu][hi]:.3f}); "
               f"median over pairs {float(np.median(dmat[iu])):.3f}.")
    halves = [info["split_half_distance"] for info in result["languages"].values()]
    if any(h is not None for h in halves):
        known = [h for h in halves if h is not None]
        out.append(f"Sampling noise: two halves of one language's utterances are at JS distance "
                   f"{min(known):.3f}-{max(known):.3f} (median {float(np.median(known)):.3f}); "
                   f"{int((dmat[iu] > max(known)).sum())} of the {len(iu[0])} language pairs are farther apart "
                   "than the largest of these.")
    out.append("Nearest language: " + ", ".join(
        f"{lang} -> {info['nearest']} ({info['nearest_distance']:.3f})" for lang, info in result["languages"].items()) + ".")
    rel = result["relatedness"]
    groups = "; ".join(f"{fam}: {' '.join(ls)}" for fam, ls in sorted(rel["families"].items()) if len(ls) > 1)
    if rel["gap"] is None:
        out.append("Related languages: no comparison (needs same-family pairs and other pairs among "
                   "the languages whose family is known).")
    else:
        verdict = ("closer: related languages share more units here" if rel["gap"] > 0
                   else "not closer: related languages do not share more units here")
        out.append(
            f"Related languages ({groups}): same-family pairs have mean JS distance "
            f"{rel['same_family_mean']:.3f} ({_pairs(rel['same_family_pairs'])}), other pairs "
            f"{rel['other_mean']:.3f} ({_pairs(rel['other_pairs'])}), so same-family pairs are {verdict}. "
            f"Shuffling the family labels {rel['permutations']} times gives a gap at least as large in "
            f"{100 * rel['p_value']:.1f}% of draws (one-sided p = {rel['p_value']:.3g}): "
            + ("unlikely to be chance (p <= 0.05)." if rel["p_value"] <= 0.05 else "within what chance gives (p > 0.05).")
            + (f" Family unknown, left out: {' '.join(rel['unknown'])}." if rel["unknown"] else ""))
    return out


def _pairs(n: int) -> str:
    return f"{n} pair" + ("" if n == 1 else "s")


# ---------------------------------------------------------------------------------------
# outputs

OUTPUTS = {
    "json": "codes.json", "usage": "usage.tsv", "shared": "shared_by_k.tsv", "matrix": "similarity.tsv",
    "similarity_png": "similarity.png", "usage_png": "usage.png", "summary": "summary.md",
}


def write_outputs(out, usage: CodeUsage, result: dict) -> Dict[str, Path]:
    """Write every output (each through a temporary file, renamed) into ``out``."""
    out = Path(out)
    paths = {key: out / name for key, name in OUTPUTS.items()}
    langs = usage.languages
    with atomic_write(paths["usage"]) as f:
        f.write("\t".join(["group", "entry", *langs, "languages"]) + "\n")
        flat = usage.counts.reshape(len(langs), -1)
        users = (flat > 0).sum(axis=0)
        for pos in range(flat.shape[1]):
            g, v = divmod(pos, usage.entries)
            f.write("\t".join(map(str, [g, v, *flat[:, pos].tolist(), int(users[pos])])) + "\n")
    with atomic_write(paths["shared"]) as f:
        f.write("k\tentries\n")
        f.write("".join(f"{k}\t{n}\n" for k, n in result["shared_by_k"].items()))
    with atomic_write(paths["matrix"]) as f:
        f.write("\t".join(["language", *langs]) + "\n")
        for lang, row in zip(langs, result["similarity"]["matrix"]):
            f.write("\t".join([lang, *(f"{d:.6f}" for d in row)]) + "\n")
    plot_similarity(result, paths["similarity_png"])
    plot_usage(usage, result, paths["usage_png"])
    with atomic_write(paths["summary"]) as f:
        f.write(summary_markdown(result, {k: p.name for k, p in paths.items()}))
    with atomic_write(paths["json"]) as f:  # last: its presence means the analysis is complete
        f.write(json.dumps(result, indent=1) + "\n")
    return paths


def summary_markdown(result: dict, names: Mapping[str, str]) -> str:
    langs = list(result["languages"])
    lines = [f"# Codebook usage per language ({result['groups']} groups x {result['entries_per_group']} entries)", ""]
    lines += [f"Checkpoint `{result.get('checkpoint', '?')}`, split `{result.get('split', '?')}`. "
              f"Distribution: {DISTRIBUTION}. Distance: {MEASURE}.", ""]
    lines += [f"* {s}" for s in result["findings"]] + [""]
    lines += ["| language | utterances | frames | entries used | perplexity | split-half distance | nearest |",
              "|---|---:|---:|---:|---:|---:|---|"]
    for lang in langs:
        i = result["languages"][lang]
        half = "–" if i["split_half_distance"] is None else f"{i['split_half_distance']:.3f}"
        lines.append(f"| {lang} | {i['utterances']} | {i['frames']} | {i['entries_used']} | "
                     f"{i['perplexity']:.1f} | {half} | {i['nearest']} ({i['nearest_distance']:.3f}) |")
    lines += ["", "| shared by k languages | " + " | ".join(result["shared_by_k"]) + " |",
              "|---|" + "---:|" * len(result["shared_by_k"]),
              "| entries | " + " | ".join(map(str, result["shared_by_k"].values())) + " |", ""]
    lines += [f"![JS distance between languages, with the average-linkage dendrogram]({names['similarity_png']})",
              "", f"![Entries used per language, and shared by k languages]({names['usage_png']})", ""]
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120, bbox_inches="tight", metadata={"Software": None})  # no version stamp: same bytes


def plot_similarity(result: dict, path) -> Path:
    """The distance matrix as a heatmap, rows and columns in dendrogram order, under the
    average-linkage dendrogram (its leaves line up with the columns)."""
    plt = _pyplot()
    langs = result["similarity"]["languages"]
    dmat = np.array(result["similarity"]["matrix"])
    link = np.array(result["clustering"]["linkage"])
    n = len(langs)
    size = max(4.0, 0.45 * n + 2.5)
    fig = plt.figure(figsize=(size + 1.2, size + 1.2))
    grid = fig.add_gridspec(2, 2, height_ratios=[1, 4], width_ratios=[20, 1], hspace=0.02, wspace=0.05)
    ax_d, ax_h, ax_c = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    tree = dendrogram(link, orientation="top", no_labels=True, ax=ax_d, color_threshold=0,
                      above_threshold_color="k")
    ax_d.set_xlim(0, 10 * n)  # leaf i of the dendrogram sits at x = 10 i + 5
    ax_d.set_axis_off()
    order = tree["leaves"]
    top = max(1e-9, float(dmat.max()))
    im = ax_h.imshow(dmat[np.ix_(order, order)], cmap="viridis_r", vmin=0.0, vmax=top, aspect="auto")
    names = [langs[i] for i in order]
    ax_h.set_xticks(range(n), names, rotation=90)
    ax_h.set_yticks(range(n), names)
    if n <= 14:
        for r in range(n):
            for c in range(n):
                val = dmat[order[r], order[c]]
                ax_h.text(c, r, f"{val:.2f}", ha="center", va="center", fontsize=7,
                          color="white" if val > 0.6 * top else "black")
    fig.colorbar(im, cax=ax_c, label="Jensen-Shannon distance (base 2)")
    ax_d.set_title(f"Codebook usage ({result['groups']} x {result['entries_per_group']} entries):\n"
                   "Jensen-Shannon distance between languages, average linkage", fontsize=10)
    _save(fig, Path(path))
    plt.close(fig)
    return Path(path)


def plot_usage(usage: CodeUsage, result: dict, path) -> Path:
    """Left: the share of each language's frames per entry (entries sorted by how many
    languages use them, then by total use). Right: entries shared by k languages."""
    plt = _pyplot()
    langs = usage.languages
    dist = distributions(usage.counts)
    users = (usage.counts > 0).sum(axis=0).ravel()
    order = np.lexsort((-dist.sum(axis=0), -users))
    fig, (ax_u, ax_k) = plt.subplots(1, 2, figsize=(12, max(3.0, 0.3 * len(langs) + 1.5)),
                                     gridspec_kw={"width_ratios": [3, 1]})
    shown = dist[:, order]
    im = ax_u.imshow(np.log10(np.where(shown > 0, shown, np.nan)), aspect="auto", cmap="magma_r",
                     interpolation="nearest")
    ax_u.set_yticks(range(len(langs)), langs)
    ax_u.set_xlabel(f"the {shown.shape[1]} (group, entry) pairs, most shared first")
    ax_u.set_title("share of a language's code choices (log10; blank: unused)", fontsize=10)
    fig.colorbar(im, ax=ax_u, fraction=0.03)
    ks = [int(k) for k in result["shared_by_k"]]
    ax_k.bar(ks, list(result["shared_by_k"].values()), color="tab:blue")
    ax_k.set_xticks(ks)
    ax_k.yaxis.get_major_locator().set_params(integer=True)
    ax_k.set_xlabel("used by exactly k languages")
    ax_k.set_ylabel("entries")
    ax_k.set_title(f"{result['entries_used']} of {result['entries']} entries used", fontsize=10)
    fig.tight_layout()
    _save(fig, Path(path))
    plt.close(fig)
    return Path(path)
