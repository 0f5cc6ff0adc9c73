"""The shared builder behind every corpus: one call turns a list of utterances into a subset.

A corpus module (``commonvoice``, ``mls``, ``babel``, ``folder``) only *lists* what a
release contains as :class:`Utterance` records (plus rejects it found while parsing, such
as a non-UTF-8 transcript line) and calls :func:`build_subset`, which

1. normalises transcripts per language (:mod:`manifests.text`),
2. probes or converts the audio in a process pool (:mod:`manifests.audio`),
3. writes ``<split>_<lang>.tsv`` and its parallel ``.wrd`` / ``.ltr`` / ``.spk`` files
   atomically, and every reject with its reason to ``<split>_<lang>.rejects.tsv``;
   the manifest's verification stamp (``<split>_<lang>.tsv.verified``) records that
   every file it lists was read at the target sample rate, so training's start-up check
   need not read them again.

:func:`rebuild_dicts` then writes ``dict.<labels>.<lang>.txt`` and the joint
``dict.<labels>.txt`` from all label files present, so languages prepared in separate
runs still share one joint dictionary; counts come from training splits, and a re-run
only appends to an existing dictionary (fine-tuned models are indexed by its order).
"""

from __future__ import annotations

import os
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

from . import formats, layout
from .audio import AudioJob, AudioSettings, Done, Reject, Segment, run_jobs
from .text import Normalizer, format_oov


@dataclass
class Utterance:
    """One utterance as listed by a corpus (before any audio is touched)."""

    key: str
    source: str  # audio file to read
    rel: str  # path below the manifest root (of ``source``, or of the converted file)
    text: Optional[str] = None  # raw transcript; None: the corpus has none
    speaker: Optional[str] = None
    start: Optional[float] = None
    end: Optional[float] = None


@dataclass
class SubsetResult:
    split: str
    lang: str
    manifest: Path
    utterances: int = 0
    samples: int = 0
    rejects: Counter = field(default_factory=Counter)
    converted: int = 0
    reused: int = 0
    oov: Counter = field(default_factory=Counter)

    def hours(self, sample_rate: int = 16_000) -> float:
        return self.samples / sample_rate / 3600

    def summary(self) -> str:
        name = layout.subset_name(self.split, self.lang)
        line = f"{name}: {self.utterances} utterances, {self.hours():.3f} h"
        if self.converted or self.reused:
            line += f"; {self.converted} converted, {self.reused} reused from an earlier run"
        n_rej = sum(self.rejects.values())
        if n_rej:
            reasons = ", ".join(f"{r} {n}" for r, n in self.rejects.most_common())
            line += f"; {n_rej} rejected ({reasons}) -> {self.manifest.name[:-4]}.rejects.tsv"
        if self.oov:
            line += f"\n  {format_oov(self.oov)}"
        return line


@dataclass
class PrepareResult:
    """What a ``prepare_<corpus>`` call wrote."""

    output_dir: Path
    subsets: List[SubsetResult] = field(default_factory=list)
    dicts: List[Path] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return sum(sum(s.rejects.values()) for s in self.subsets)

    def subset(self, split: str, lang: str) -> SubsetResult:
        for s in self.subsets:
            if (s.split, s.lang) == (split, lang):
                return s
        raise KeyError(f"no subset {split}_{lang}")

    def summary(self) -> str:
        lines = [s.summary() for s in self.subsets]
        lines.append(
            f"{len(self.subsets)} subset(s), {self.rejected} rejected utterance(s) in total; "
            f"written to {self.output_dir}"
        )
        return "\n".join(lines)


def write_rejects(path: Path, rejects: Sequence[Reject]) -> None:
    """``key<TAB>source<TAB>reason<TAB>detail`` per reject (header line first)."""
    if not rejects:
        if path.exists():
            path.unlink()
        return
    with formats.atomic_write(path) as f:
        print("key\tsource\treason\tdetail", file=f)
        for r in rejects:
            detail = r.detail.replace("\t", " ").replace("\n", " ")
            print(f"{r.key}\t{r.source}\t{r.reason}\t{detail}", file=f)


def _jobs(utts: Sequence[Utterance], convert: bool, out_root: Optional[str]) -> List[AudioJob]:
    by_source: "OrderedDict[str, List[Segment]]" = OrderedDict()
    for u in utts:
        by_source.setdefault(u.source, []).append(Segment(u.key, u.rel, u.start, u.end))
    return [AudioJob(src, tuple(segs), convert, out_root) for src, segs in by_source.items()]


def build_subset(
    output_dir: Path,
    split: str,
    lang: str,
    utterances: Sequence[Utterance],
    root: str,
    *,
    pre_rejects: Iterable[Reject] = (),
    convert: bool = False,
    settings: AudioSettings = AudioSettings(),
    num_jobs: int = 1,
    oov: str = "reject",
) -> SubsetResult:
    """Write one ``<split>_<lang>`` subset (manifest, labels, rejects); see module doc.

    ``root`` is the manifest's first line; converted audio is written below it.
    """
    output_dir = Path(output_dir)
    result = SubsetResult(split, lang, layout.manifest_path(output_dir, split, lang))
    rejects: List[Reject] = list(pre_rejects)
    has_text = any(u.text is not None for u in utterances)
    norm = Normalizer(lang, oov)
    words: Dict[str, str] = {}
    kept: List[Utterance] = []
    for u in utterances:
        if has_text:
            w, why = norm(u.text or "")
            if why:
                rejects.append(Reject(u.key, u.source, "bad transcript", why))
                continue
            words[u.key] = w
        kept.append(u)
    result.oov = norm.oov_counts

    done: Dict[str, Done] = {}
    jobs = _jobs(kept, convert, root if convert else None)
    desc = layout.subset_name(split, lang)
    for _, outcomes in run_jobs(jobs, settings, num_jobs, desc=desc):
        for o in outcomes:
            if isinstance(o, Done):
                done[o.key] = o
            else:
                rejects.append(o)

    entries, wrd, spk = [], [], []
    probed_in_place = True  # every listed file is the one that was read (or written)
    for u in kept:
        d = done.get(u.key)
        if d is None:
            continue
        if not convert:
            probed_in_place &= os.path.normpath(os.path.join(root, d.rel)) == os.path.normpath(u.source)
        entries.append((d.rel, d.num_samples))
        result.reused += d.reused
        result.converted += convert and not d.reused
        wrd.append(words.get(u.key, ""))
        spk.append(u.speaker or "-")
    result.utterances = len(entries)
    result.samples = sum(n for _, n in entries)
    result.rejects = Counter(r.reason for r in rejects)

    write_rejects(layout.rejects_path(output_dir, split, lang), rejects)
    # labels first, manifest last: a manifest on disk always has its labels beside it
    if has_text:
        formats.write_lines(layout.label_path(output_dir, split, lang, "wrd"), wrd)
        ltr = [formats.letters(w) for w in wrd]
        formats.write_lines(layout.label_path(output_dir, split, lang, "ltr"), ltr)
    formats.write_lines(layout.label_path(output_dir, split, lang, layout.SPEAKER_LABELS), spk)
    formats.write_manifest(result.manifest, formats.Manifest(root, entries),
                           verified_rate=settings.sample_rate if probed_in_place else None)
    return result


def rebuild_dicts(output_dir: Path, labels: str) -> List[Path]:
    """Write or update ``dict.<labels>.<lang>.txt`` per language and the joint
    ``dict.<labels>.txt`` from the ``<split>_<lang>.<labels>`` files present.

    * **Counts come from training splits** (``layout.is_training_split``: ``train``,
      ``train-1h``, ...). A symbol seen only in ``dev``/``test`` is listed with count 0,
      so that evaluation labels stay inside the dictionary.
    * **An existing dictionary is never reordered**: a fine-tuned CTC model's output
      layer is indexed by it (``xlsr_ctc`` refuses another order). Its symbols keep their
      lines, with updated counts (0 when no label uses them any more); new symbols are
      appended, most frequent first. Delete the file to start a fresh, frequency-sorted
      one (models fine-tuned with the old one will then refuse it).
    """
    output_dir = Path(output_dir)
    train: Dict[str, Counter] = {}
    seen: Dict[str, Counter] = {}  # every split: which symbols exist at all
    for path in sorted(output_dir.glob(f"*.{labels}")):
        split, lang = layout.split_subset(path.name[: -len(labels) - 1])
        if lang is None:
            continue  # a combined (balanced) subset: its symbols are counted per language
        with open(path, encoding="utf-8") as f:  # streamed: label files of millions of lines
            counts = formats.count_symbols(f)
        seen.setdefault(lang, Counter()).update(counts)
        train.setdefault(lang, Counter())
        if layout.is_training_split(split):
            train[lang].update(counts)
    written = []
    joint_train: Counter = Counter()
    joint_seen: Counter = Counter()
    for lang in sorted(seen):
        written.append(_update_dict(layout.dict_path(output_dir, labels, lang), train[lang], seen[lang]))
        joint_train.update(train[lang])
        joint_seen.update(seen[lang])
    if seen:
        written.append(_update_dict(layout.dict_path(output_dir, labels), joint_train, joint_seen))
    return written


def _update_dict(path: Path, train: Counter, seen: Counter) -> Path:
    """``path`` with its existing symbols first, in their order, then new training symbols
    by frequency, then symbols of evaluation splits only (count 0); counts from ``train``."""
    order = list(formats.read_dict_symbols(path)) if path.is_file() else []
    known = set(order)
    order += [s for s in formats.by_frequency(train) if s not in known]
    known.update(order)
    order += sorted(s for s in seen if s not in known)
    formats.write_dict(path, train, order)
    return path


def finish(result: PrepareResult, labels: Sequence[str] = ("ltr",)) -> PrepareResult:
    """Rebuild the dictionaries of ``labels`` after all subsets of a run are written."""
    for kind in labels:
        result.dicts += rebuild_dicts(result.output_dir, kind)
    return result
