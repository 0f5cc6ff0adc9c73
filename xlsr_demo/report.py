"""The paper's CommonVoice table (PER per language and model) from fairseq-generate output.

XLSR's Table 1 compares, per CommonVoice language, the phone error rate of a
cross-lingually pre-trained model (XLSR-10) with monolingual pre-training and no
pre-training, and summarises the relative PER reduction, largest on the low-resource
languages. This module

* reads PER per language from ``fairseq-generate`` output: the final line
  ``Generate test_es with beam=1: PER: 12.34`` (in the log, or in
  ``<results-path>/generate-test_es.txt``), or, when no such line exists, recomputes it
  from the ``T-``/``H-`` lines or from a hypothesis/reference file pair (PER exactly as
  the plugin's ``per`` scorer computes it: ``xlsr_core.errors``);
* writes ``table.md`` (rows = models, columns = languages + Avg, then the relative
  reduction lines: the multilingual model vs each other model) and ``per.png``, a
  grouped bar chart of the same numbers. A language decoded by several fine-tunings
  (one per seed) shows mean ± sd over them, and on the low-resource languages the
  table then states, with 95 % intervals, whether the paper's directions hold:
  multilingual pre-training beats monolingual, and α = 0.5 beats α = 1 (unbalanced);
* given the folder of an ``xlsr-analyze codes`` run (the paper's codebook analysis of
  the multilingual model), adds its findings and pictures to ``table.md``;
* given ``xlsr-analyze probe`` tables (``probe.tsv``: the linear phone probe of the frozen
  pre-trained models, per layer) and which pre-training runs make each model, adds the
  probe's frame phone error rates (mean ± sd over pre-training seeds, at the layer each run's
  dev speakers choose and at the last layer), the same two directions with 95 % intervals
  on that measure, and ``probe.png`` (error per layer and model).

Numbers are reported as given; nothing here chooses among them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from manifests.formats import atomic_write
from manifests.layout import split_subset
from xlsr_core.errors import ErrorCount, phones
from xlsr_demo import XLSR10

# model -> language -> PER (%), or the PERs of several fine-tunings (seeds) of that language
Results = Mapping[str, Mapping[str, Union[float, Sequence[float]]]]

_GENERATE_RE = re.compile(r"Generate\s+(\S+)\s+with\s+beam\s*=\s*\S+?\s*:\s*(.*)$")


@dataclass
class ReportPaths:
    table: Path
    chart: Path


# ---------------------------------------------------------------- reading PER


def parse_generate_output(text: str, metric: str = "PER") -> Dict[str, float]:
    """``{gen_subset: value}`` from the ``Generate <subset> with beam=..: <metric>: x``
    lines of fairseq-generate output (log prefixes, ANSI colours and ``=`` for ``:``
    are tolerated; the last line per subset wins)."""
    metric_re = re.compile(rf"\b{re.escape(metric)}\b\s*[:=]?\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)")
    found: Dict[str, float] = {}
    for line in text.splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", line).rstrip()
        m = _GENERATE_RE.search(line)
        if not m:
            continue
        value = metric_re.search(m.group(2))
        if value:
            found[m.group(1)] = float(value.group(1))
    return found


def compute_per(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """PER in percent over all utterances (word separators ``|`` are not phones)."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    count = ErrorCount()
    for ref, hyp in zip(references, hypotheses):
        count.add(phones(ref), phones(hyp))
    if count.total == 0:
        raise ValueError("references contain no phones: PER is undefined")
    return count.rate


def per_from_generate_file(path) -> float:
    """PER of a ``generate-<subset>.txt``: its ``Generate`` line, else from T-/H- lines."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    scores = parse_generate_output(text)
    if scores:
        return list(scores.values())[-1]
    refs: Dict[str, str] = {}
    hyps: Dict[str, str] = {}
    for line in text.splitlines():
        kind, _, rest = line.partition("-")
        ident, _, payload = rest.partition("\t")
        if kind == "T":
            refs[ident] = payload
        elif kind == "H" and ident not in hyps:  # first (best) hypothesis; "score\ttext"
            hyps[ident] = payload.partition("\t")[2]
    missing = sorted(set(refs) - set(hyps))
    if not refs or missing:
        raise ValueError(
            f"{path}: no 'Generate ... PER' line and "
            + ("no T-/H- lines" if not refs else f"no hypothesis for ids {missing[:5]}")
        )
    ids = sorted(refs)
    return compute_per([refs[i] for i in ids], [hyps[i] for i in ids])


_ID_SUFFIX = re.compile(r"\s*\(([^()]*)\)\s*$")


def _read_keyed_lines(path: Path) -> List[Tuple[Optional[str], str]]:
    """Lines of a hyp/ref file; a trailing ``(utt-id)`` (speech_recognition/infer.py
    style) is split off as the key."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _ID_SUFFIX.search(line)
        out.append((m.group(1), line[: m.start()]) if m else (None, line))
    return out


def per_from_pair(hyp_path, ref_path) -> float:
    """PER of a hypothesis file against a reference file: line by line, or by the
    ``(utt-id)`` suffixes when both files carry them."""
    hyp = _read_keyed_lines(Path(hyp_path))
    ref = _read_keyed_lines(Path(ref_path))
    if all(k is not None for k, _ in hyp + ref):
        hyp_by = dict(hyp)
        missing = [k for k, _ in ref if k not in hyp_by]
        if missing:
            raise ValueError(f"{hyp_path}: no hypothesis for {len(missing)} ids, e.g. {missing[:3]}")
        return compute_per([t for _, t in ref], [hyp_by[k] for k, _ in ref])
    if len(hyp) != len(ref):
        raise ValueError(f"{hyp_path} has {len(hyp)} lines but {ref_path} has {len(ref)}")
    return compute_per([t for _, t in ref], [t for _, t in hyp])


def collect_per(paths: Iterable, metric: str = "PER") -> Dict[str, float]:
    """``{lang: PER}`` from fairseq-generate logs and/or ``--results-path`` folders.

    A folder contributes each ``generate-<split>_<lang>.txt`` (its ``Generate`` line or
    recomputed from T-/H- lines); a file contributes its ``Generate`` lines. Subsets are
    mapped to languages with :func:`manifests.layout.split_subset`.
    """
    per: Dict[str, float] = {}
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(p.glob("generate-*.txt"))
            if not files:
                raise ValueError(f"{p}: no generate-<subset>.txt (fairseq-generate --results-path)")
            scores = {f.stem[len("generate-"):]: per_from_generate_file(f) for f in files}
        elif p.is_file():
            scores = parse_generate_output(p.read_text(encoding="utf-8"), metric)
            if not scores:
                raise ValueError(f"{p}: no 'Generate <subset> with beam=..: {metric}: x' line")
        else:
            raise ValueError(f"{p}: not found")
        for subset, value in scores.items():
            _, lang = split_subset(subset)
            per[lang or subset] = value
    return per


def collect_runs(paths: Iterable, metric: str = "PER") -> Dict[str, List[float]]:
    """``{lang: [PER, ...]}``: as :func:`collect_per`, but a language found in several
    paths (fine-tunings with different seeds) keeps every value, in the order given."""
    runs: Dict[str, List[float]] = {}
    for p in paths:
        for lang, value in collect_per([p], metric).items():
            runs.setdefault(lang, []).append(value)
    return runs


# ---------------------------------------------------------------- the table


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _runs(value: Union[float, Sequence[float]]) -> List[float]:
    return [float(v) for v in value] if isinstance(value, (list, tuple)) else [float(value)]


def _sd(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1); nan for one value."""
    if len(values) < 2:
        return math.nan
    m = _mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def means(results: Results) -> Dict[str, Dict[str, float]]:
    """``{model: {lang: mean PER over its runs}}``."""
    return {model: {lang: _mean(_runs(v)) for lang, v in per.items()} for model, per in results.items()}


def reduction_interval(model_runs: Sequence[float], baseline_runs: Sequence[float],
                       level: float = 0.95) -> Tuple[float, float, float]:
    """Relative PER reduction (%) of the model's mean over the baseline's mean, and a
    ``level`` interval of it: Welch's t interval of the difference of the means, divided
    by the baseline's mean (taken as fixed). Needs at least two runs on each side."""
    from scipy.stats import t  # only here: the rest of the report needs no scipy

    m, b = _mean(model_runs), _mean(baseline_runs)
    vm, vb = _sd(model_runs) ** 2 / len(model_runs), _sd(baseline_runs) ** 2 / len(baseline_runs)
    diff, se = b - m, math.sqrt(vm + vb)
    if se == 0:
        half = 0.0
    else:
        df = (vm + vb) ** 2 / (vm ** 2 / (len(model_runs) - 1) + vb ** 2 / (len(baseline_runs) - 1))
        half = float(t.ppf(0.5 + level / 2, df)) * se
    return 100.0 * diff / b, 100.0 * (diff - half) / b, 100.0 * (diff + half) / b


def verdict(low: float, high: float) -> str:
    """What an interval of a relative reduction says about "the model beats the baseline"."""
    if low > 0:
        return "holds"
    if high < 0:
        return "reversed"
    return "not resolved (the interval contains 0)"


def directions(results: Results, multilingual: str, others: Sequence[str],
               languages: Sequence[str]) -> List[str]:
    """One line per (other model, language) where both have >= 2 runs: mean ± sd of each,
    the relative reduction of ``multilingual`` with its 95 % interval, and the verdict."""
    lines = []
    for other in others:
        for lang in languages:
            if lang not in results.get(multilingual, {}) or lang not in results.get(other, {}):
                continue
            m, b = _runs(results[multilingual][lang]), _runs(results[other][lang])
            if len(m) < 2 or len(b) < 2:
                continue
            red, low, high = reduction_interval(m, b)
            lines.append(
                f"{multilingual} beats {other} on {lang}: PER {_mean(m):.1f} ± {_sd(m):.1f} vs "
                f"{_mean(b):.1f} ± {_sd(b):.1f} ({len(m)} and {len(b)} seeds), relative "
                f"reduction {red:+.1f}% (95% interval {low:+.1f}% to {high:+.1f}%): {verdict(low, high)}.")
    return lines


def relative_reduction(
    results: Results, model: str, baseline: str, languages: Sequence[str]
) -> Dict[str, float]:
    """Relative PER reduction (%) of ``model`` over ``baseline`` per language where both
    have a PER (the mean over its runs), plus ``"avg"``: the reduction of their mean PER
    over those languages."""
    results = means(results)
    both = [lang for lang in languages
            if lang in results.get(model, {}) and lang in results.get(baseline, {})]
    out = {}
    for lang in both:
        b = results[baseline][lang]
        out[lang] = 100.0 * (b - results[model][lang]) / b if b else math.nan
    if both:
        b = _mean([results[baseline][lang] for lang in both])
        m = _mean([results[model][lang] for lang in both])
        out["avg"] = 100.0 * (b - m) / b if b else math.nan
    return out


def _languages(results: Results, languages: Optional[Sequence[str]]) -> List[str]:
    """``languages`` if given, else every language found: the paper's order, then A-Z."""
    if languages:
        return list(languages)
    found = {lang for per in results.values() for lang in per}
    rank = {lang: i for i, lang in enumerate(XLSR10)}
    return sorted(found, key=lambda lang: (rank.get(lang, len(rank)), lang))


def format_table(
    results: Results,
    languages: Optional[Sequence[str]] = None,
    multilingual: str = "XLSR-10",
    baseline: str = "XLSR-Monolingual",
    low_resource: Sequence[str] = (),
    pretrain_minutes: Optional[Mapping[str, float]] = None,
) -> str:
    """The Markdown table: a row per model, a column per language and Avg (the mean
    over all columns; "–" when the model lacks a language), then the reduction lines.
    A cell of several runs reads "mean ± sd" (sample sd over the fine-tuning seeds)."""
    langs = _languages(results, languages)
    mean = means(results)
    lines = ["| Model | " + " | ".join(langs) + " | Avg |",
             "|---|" + "---:|" * (len(langs) + 1)]
    if pretrain_minutes:
        cells = [f"{pretrain_minutes[lang]:g}" if lang in pretrain_minutes else "–" for lang in langs]
        lines.append("| *pre-training minutes* | " + " | ".join(cells) + " | |")
    for model, per in mean.items():
        cells = [_cell(_runs(results[model][lang])) if lang in per else "–" for lang in langs]
        avg = f"{_mean([per[lang] for lang in langs]):.1f}" if all(lang in per for lang in langs) else "–"
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {avg} |")
    lines.append("")
    others = [baseline] + [m for m in results if m not in (multilingual, baseline)]
    for other in others:
        red = relative_reduction(results, multilingual, other, langs)
        if red:
            low = [f"{lang} {red[lang]:+.1f}%" for lang in low_resource if lang in red]
            shared = [lang for lang in langs if lang in red]
            lines.append(
                f"Relative PER reduction of {multilingual} vs {other} "
                "(positive = fewer errors): "
                + (f"low-resource: {', '.join(low)}; " if low else "")
                + f"average over {', '.join(shared)}: {red['avg']:+.1f}%."
            )
        elif other == baseline:
            lines.append(f"(No language has both {multilingual} and {baseline}: no reduction line.)")
        lines.append("")
    return "\n".join(lines) + "\n"


def _cell(runs: Sequence[float]) -> str:
    return f"{_mean(runs):.1f}" if len(runs) == 1 else f"{_mean(runs):.1f} ± {_sd(runs):.1f}"


def directions_section(results: Results, multilingual: str, baseline: str,
                       unbalanced: Optional[str], low_resource: Sequence[str]) -> str:
    """The Markdown that states whether the paper's directions hold on the low-resource
    languages (empty when no language there has several runs of both models)."""
    others = [baseline] + ([unbalanced] if unbalanced else [])
    lines = directions(results, multilingual, others, low_resource)
    if not lines:
        return ""
    return ("\n## The paper's directions on the low-resource languages\n\n"
            "Mean ± sd over seeds (as many runs of pre-training and fine-tuning); the interval is "
            "Welch's t interval of the difference of the mean PERs, relative to the other "
            "model's mean. \"Holds\" only where the whole interval favours "
            f"{multilingual}.\n\n" + "\n".join(f"* {line}" for line in lines) + "\n")


def plot_results(results: Results, path, languages: Optional[Sequence[str]] = None,
                 title: str = "Phone error rate per language") -> Path:
    """A grouped bar chart (languages + Avg on x, one bar per model) saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    langs = _languages(results, languages)
    groups = langs + ["Avg"]
    models = list(results)
    results = means(results)
    width = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.3 * len(groups) * max(1, len(models)) + 3), 4))
    x = np.arange(len(groups))
    for i, model in enumerate(models):
        per = results[model]
        vals = [per.get(lang, np.nan) for lang in langs]
        vals.append(_mean(vals) if not any(np.isnan(vals)) else np.nan)
        ax.bar(x - 0.4 + width * (i + 0.5), vals, width, label=model)
    ax.set_xticks(x, groups)
    ax.set_ylabel("PER (%)")
    ax.set_title(title)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)
    return path


def write_report(
    results: Results,
    out_dir,
    languages: Optional[Sequence[str]] = None,
    multilingual: str = "XLSR-10",
    baseline: str = "XLSR-Monolingual",
    low_resource: Sequence[str] = (),
    pretrain_minutes: Optional[Mapping[str, float]] = None,
    title: str = "Phone error rate (%) on the synthetic CommonVoice test sets",
    notes: str = "",
    codebook=None,
    unbalanced: Optional[str] = None,
    probe: Optional[ProbeResults] = None,
) -> ReportPaths:
    """Write ``<out_dir>/table.md`` and ``<out_dir>/per.png``; ``codebook``: an
    ``xlsr-analyze codes --out`` folder whose findings and pictures ``table.md`` shows;
    ``unbalanced``: the α = 1 model, whose comparison with ``multilingual`` the
    directions section states next to the one with ``baseline``; ``probe``: the probe of the
    frozen pre-trained models (:func:`read_probe`), shown in ``table.md`` and ``probe.png``."""
    if not results or not any(results.values()):
        raise ValueError("no PER results to report")
    for model, per in results.items():
        bad = {lang: v for lang, v in per.items()
               if not all(isinstance(x, (int, float)) and x >= 0 for x in _runs_or_none(v))}
        if bad:
            raise ValueError(f"model {model!r}: PER must be numbers >= 0, got {bad}")
    out_dir = Path(out_dir)
    table = format_table(results, languages, multilingual, baseline, low_resource, pretrain_minutes)
    section = codebook_section(codebook, out_dir, multilingual) if codebook else ""
    paths = ReportPaths(out_dir / "table.md", out_dir / "per.png")
    with atomic_write(paths.table) as f:
        f.write(f"# {title}\n\n{table}")
        f.write(directions_section(results, multilingual, baseline, unbalanced, low_resource))
        if notes:
            f.write(f"\n{notes.rstrip()}\n")
        f.write(f"\n![PER per language]({paths.chart.name})\n")
        if probe:
            f.write(probe_section(probe, multilingual, baseline, unbalanced, PROBE_CHART))
        f.write(section)
    plot_results(results, paths.chart, languages, title)
    if probe:
        plot_probe(probe, out_dir / PROBE_CHART)
    return paths


def _runs_or_none(value) -> list:
    """The values of a cell for validation: ``[None]`` (invalid) for anything but a number
    or a non-empty list of them."""
    if isinstance(value, (list, tuple)):
        return list(value) or [None]
    return [value] if isinstance(value, (int, float)) else [None]


def codebook_section(folder, out_dir, model: str) -> str:
    """The Markdown of ``xlsr-analyze codes``' findings (``<folder>/codes.json``) and
    pictures, linked relative to ``out_dir``."""
    from xlsr_tools.codebook import OUTPUTS  # its file names (scipy, no torch); imported only here

    folder = Path(folder)
    try:
        result = json.loads((folder / OUTPUTS["json"]).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{folder}: no {OUTPUTS['json']}; run xlsr-analyze codes --out {folder} first") from None
    rel = {key: Path(os.path.relpath(folder / name, out_dir)).as_posix() for key, name in OUTPUTS.items()}
    limit = result["max_utterances"]
    lines = [f"\n## Codebook usage of {model}\n",
             f"The quantizer's {result['groups']} x {result['entries_per_group']} entries over the "
             f"`{result['split']}` audio of each language (`xlsr-analyze codes`, "
             f"{f'up to {limit}' if limit else 'all'} utterances per language; distance: "
             f"{result['similarity']['measure']}):\n"]
    lines += [f"* {line}" for line in result["findings"]]
    lines += ["", f"![JS distance between the languages' code distributions, with the dendrogram]"
              f"({rel['similarity_png']})", "",
              f"![Entries used per language, and shared by k languages]({rel['usage_png']})", "",
              f"All numbers: [{rel['summary']}]({rel['summary']}), `{rel['json']}`, `{rel['usage']}`, "
              f"`{rel['shared']}`, `{rel['matrix']}`.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- the probe of frozen models

PROBE_CHART = "probe.png"
PROBE_LAST = "final"  # the encoder output: the last layer, what fine-tuning builds on


@dataclass
class ProbeRun:
    """One pre-training run probed on one language: per layer, the frame phone error (%)
    on the dev and the test speakers, and the majority phone's test error."""

    run: str
    layers: Dict[str, Tuple[float, float]]  # layer -> (dev error, test error)
    majority: float

    def best(self) -> Tuple[str, float]:
        """The layer with the lowest dev error (the earlier on ties) and its test error."""
        layer = min(self.layers, key=lambda name: self.layers[name][0])
        return layer, self.layers[layer][1]


# model -> language -> its runs
ProbeResults = Dict[str, Dict[str, List[ProbeRun]]]


def read_probe(paths: Iterable, model_runs: Mapping[str, Sequence[str]]) -> ProbeResults:
    """The runs of each model (``{model: [run name, ...]}``, the names in ``probe.tsv``) from
    ``xlsr-analyze probe`` tables; a run of no model is an error, a model without rows is left out."""
    from xlsr_tools.probe_table import read_probe_tsv  # its format (no torch); imported only here

    owner = {run: model for model, runs in model_runs.items() for run in runs}
    found: Dict[Tuple[str, str], Dict[str, Dict[str, float]]] = {}
    majority: Dict[Tuple[str, str], float] = {}
    for path in paths:
        for row in read_probe_tsv(path):
            if row["name"] not in owner:
                raise ValueError(f"{path}: run {row['name']!r} belongs to no --probe-model")
            if row["split"] not in ("dev", "test"):
                continue
            key = (row["name"], row["lang"])
            found.setdefault(key, {}).setdefault(row["layer"], {})[row["split"]] = row["error"]
            if row["split"] == "test":
                majority[key] = row["majority_error"]
    out: ProbeResults = {}
    for model, runs in model_runs.items():
        for (run, lang), layers in found.items():
            if run not in runs:
                continue
            missing = [layer for layer, v in layers.items() if set(v) != {"dev", "test"}]
            if missing:
                raise ValueError(f"probe run {run!r} on {lang}: layers {missing} lack a dev or test error")
            out.setdefault(model, {}).setdefault(lang, []).append(
                ProbeRun(run, {layer: (v["dev"], v["test"]) for layer, v in layers.items()}, majority[run, lang]))
    return out


def _probe_measures(probe: ProbeResults) -> Dict[str, Results]:
    """``{"best layer": results, "last layer": results}`` in the shape of PER results (lists of runs)."""
    best = {m: {lang: [r.best()[1] for r in runs] for lang, runs in per.items()} for m, per in probe.items()}
    last = {m: {lang: [r.layers[PROBE_LAST][1] for r in runs if PROBE_LAST in r.layers] for lang, runs in per.items()}
            for m, per in probe.items()}
    return {"best layer": best, "last layer": {m: {l: v for l, v in per.items() if v} for m, per in last.items()}}


def probe_section(probe: ProbeResults, multilingual: str, baseline: str, unbalanced: Optional[str],
                  chart: Optional[str] = None) -> str:
    """The Markdown of the probe: the table (best and last layer per language), the error per
    layer, and the directions with intervals."""
    langs = sorted({lang for per in probe.values() for lang in per})
    measures = _probe_measures(probe)
    lines = ["\n## Frozen representations: linear phone probe\n",
             "Frame phone error rate (%, lower is better) of a linear probe (multinomial logistic regression, "
             "`xlsr-analyze probe`) on each frozen pre-trained model's frames: trained on the train speakers, "
             "scored on the held-out test speaker; labels from espeak-ng's phone alignments, silence frames "
             "left out. *Best layer*: per run, the layer with the lowest error on the dev speaker (its test "
             "error shown; the layers chosen in brackets); *last layer*: the encoder output. Mean ± sd over "
             "pre-training seeds.\n",
             "| Model | " + " | ".join(f"{lang} best layer | {lang} last layer" for lang in langs) + " |",
             "|---|" + "---:|" * (2 * len(langs))]
    for model, per in probe.items():
        cells = []
        for lang in langs:
            runs = per.get(lang, [])
            chosen = ",".join(sorted({r.best()[0] for r in runs}))
            best, last = measures["best layer"][model].get(lang), measures["last layer"][model].get(lang)
            cells += [f"{_cell(best)} ({chosen})" if best else "–", _cell(last) if last else "–"]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    majority = [f"{lang} {_mean([r.majority for per in probe.values() for r in per.get(lang, [])]):.1f}"
                for lang in langs]
    lines += ["", f"Always answering the train frames' most frequent phone: {', '.join(majority)} % errors.", ""]
    layer_names = list(dict.fromkeys(name for per in probe.values() for runs in per.values()
                                     for r in runs for name in r.layers))
    lines += ["Test frame error per layer (mean over seeds):", "",
              "| Model | Language | " + " | ".join(layer_names) + " |", "|---|---|" + "---:|" * len(layer_names)]
    for model, per in probe.items():
        for lang in langs:
            runs = per.get(lang, [])
            if runs:
                cells = [f"{_mean([r.layers[n][1] for r in runs if n in r.layers]):.1f}"
                         if any(n in r.layers for r in runs) else "–" for n in layer_names]
                lines.append(f"| {model} | {lang} | " + " | ".join(cells) + " |")
    others = [baseline] + ([unbalanced] if unbalanced else [])
    found = [(name, line) for name, results in measures.items()
             for line in directions(results, multilingual, others, langs)]
    if found:
        lines += ["", "The paper's directions on the probe (Welch's 95% interval of the difference of the mean "
                  "errors, relative to the other model's mean; \"holds\" only where the whole interval favours "
                  f"{multilingual}):", ""]
        lines += [f"* {name}: " + line.replace("PER ", "frame error ") for name, line in found]
    if chart:
        lines += ["", f"![Probe frame error per layer]({chart})"]
    return "\n".join(lines) + "\n"


def plot_probe(probe: ProbeResults, path) -> Path:
    """Test frame error per layer, one line per model (mean over seeds), a panel per language."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = sorted({lang for per in probe.values() for lang in per})
    fig, axes = plt.subplots(1, len(langs), figsize=(4.5 * len(langs) + 2, 3.6), squeeze=False, sharey=True)
    for ax, lang in zip(axes[0], langs):
        for model, per in probe.items():
            runs = per.get(lang, [])
            if not runs:
                continue
            names = list(runs[0].layers)
            ax.plot(range(len(names)), [_mean([r.layers[n][1] for r in runs]) for n in names], marker="o", label=model)
            ax.set_xticks(range(len(names)), names, rotation=30, fontsize="small")
        chance = _mean([r.majority for per in probe.values() for r in per.get(lang, [])])
        ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label="majority phone")
        ax.set_title(lang)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test frame phone error (%)")
    axes[0][-1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    path = Path(path)
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- CLI


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m xlsr_demo.report",
        description="Write the paper-shaped PER table (table.md) and bar chart (per.png).",
    )
    p.add_argument("--model", action="append", default=[], metavar="NAME=PATH[,PATH]",
                   help="a model's fairseq-generate logs and/or --results-path folders "
                   "(repeat per model, in table order)")
    p.add_argument("--json", help="or a JSON file {model: {lang: PER}}")
    p.add_argument("--out", required=True, help="folder for table.md and per.png")
    p.add_argument("--languages", help="comma-separated column order (default: as found)")
    p.add_argument("--multilingual", default="XLSR-10", help="model compared in the reduction line")
    p.add_argument("--baseline", default="XLSR-Monolingual", help="its baseline in that line")
    p.add_argument("--low-resource", default="", help="comma-separated low-resource languages")
    p.add_argument("--unbalanced", help="the α = 1 model (a --model NAME): the directions section "
                   "compares it with --multilingual on the low-resource languages")
    p.add_argument("--codebook", help="an xlsr-analyze codes output folder: its findings and pictures "
                   "go into table.md")
    p.add_argument("--probe", action="append", default=[], metavar="PROBE_TSV",
                   help="an xlsr-analyze probe table (repeat per file): the probe section of table.md and probe.png")
    p.add_argument("--probe-model", action="append", default=[], metavar="NAME=RUN[,RUN]",
                   help="the runs (names in the probe tables) of a model row of the probe section (repeat per model)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    try:
        results: Dict[str, Dict[str, float]] = {}
        if args.json:
            results.update(json.loads(Path(args.json).read_text(encoding="utf-8")))
        for spec in args.model:
            name, sep, paths = spec.partition("=")
            if not sep:
                raise ValueError(f"--model {spec!r} is not NAME=PATH[,PATH]")
            results[name] = {lang: runs if len(runs) > 1 else runs[0]
                             for lang, runs in collect_runs(filter(None, paths.split(","))).items()}
        split = lambda s: [x for x in (s or "").split(",") if x]  # noqa: E731
        probe = None
        if args.probe:
            owners = {}
            for spec in args.probe_model:
                name, sep, runs = spec.partition("=")
                if not sep:
                    raise ValueError(f"--probe-model {spec!r} is not NAME=RUN[,RUN]")
                owners[name] = split(runs)
            if not owners:
                raise ValueError("--probe needs --probe-model NAME=RUN,... to know the rows")
            probe = read_probe(args.probe, owners)
        paths = write_report(results, args.out, split(args.languages) or None, args.multilingual,
                             args.baseline, split(args.low_resource), codebook=args.codebook,
                             unbalanced=args.unbalanced, probe=probe)
    except (ValueError, OSError) as e:
        print(f"report: error: {e}", file=sys.stderr)
        return 1
    print(paths.table.read_text(encoding="utf-8"))
    print(f"wrote {paths.table} and {paths.chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
