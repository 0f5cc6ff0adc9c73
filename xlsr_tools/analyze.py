"""``xlsr-analyze``: analyses of a pre-trained model over the languages of a manifest folder.

    xlsr-analyze codes CKPT MANIFEST_DIR --out DIR [--split train] [--languages es,fr,...]
                       [--max-utterances N] [--seed 0] [--families ky=Turkic,...]
    xlsr-analyze probe [NAME=]CKPT ... --data MANIFEST_DIR --alignments RELEASE
                       --languages ky,tt --out DIR [--layers all] [--steps 100]

``codes`` is the codebook analysis of the XLSR paper (Conneau et al. 2020): the shared
quantizer's entries each language uses, how many entries k languages share, and a
language-by-language distance from the code distributions, clustered into a dendrogram
(the statistics: :mod:`xlsr_tools.codebook`). For every ``MANIFEST_DIR/<split>_<lang>.tsv``
(all languages found, or ``--languages``) it runs the model exactly as ``xlsr-extract``
does (:func:`xlsr_tools.extract.window_features`: fairseq's audio reading, batches by
length, :func:`xlsr_tools.representations.forward`) and counts the ``codes`` output, one
quantizer index per group and frame (fairseq's ``model.quantize``). It writes to ``DIR``:

    codes.json        every number below, the settings and the findings (written last)
    usage.tsv         one row per (group, entry): frames per language, number of languages using it
    shared_by_k.tsv   k, number of entries used by exactly k languages
    similarity.tsv    the Jensen-Shannon distance matrix
    similarity.png    that matrix as a heatmap, with the average-linkage dendrogram
    usage.png         per-language use of every entry; the shared-by-k histogram
    summary.md        the findings in sentences, the tables, the pictures

``probe`` is a linear frame-level phone probe per layer of frozen checkpoints, trained on
the train speakers' frames and scored on the held-out dev and test speakers, with labels
from phone alignments (:mod:`xlsr_tools.probe`; the synthetic corpus' alignments come
from espeak-ng, :mod:`xlsr_demo.alignments`). It writes ``probe.tsv`` and ``probe.json``.

``--max-utterances N`` analyses a seeded sample of N utterances per language (drawn
without replacement from the whole manifest, by ``--seed`` and the language code, read in
manifest order), so the same command gives the same files.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch
from tqdm import tqdm

from manifests.layout import discover_languages, manifest_path
from xlsr_tools import codebook, probe
from xlsr_tools.extract import Manifest, Window, open_manifest, plan_batches, read_windows, scan_manifest, window_features
from xlsr_tools.representations import ExtractError, load_encoder

logger = logging.getLogger("xlsr_tools.analyze")


class AnalyzeError(ValueError):
    """Bad input for an analysis: the message names the file and what to do."""


# ---------------------------------------------------------------------------------------
# which utterances


def find_manifests(manifest_dir, split: str, languages: Optional[Sequence[str]] = None) -> Dict[str, Path]:
    """``{lang: MANIFEST_DIR/<split>_<lang>.tsv}`` for ``languages`` (all found if None)."""
    if not os.path.isdir(manifest_dir):
        raise AnalyzeError(f"{manifest_dir}: no such manifest folder")
    if not languages:
        languages = discover_languages(manifest_dir, split)
        if not languages:
            raise AnalyzeError(
                f"{manifest_dir}: no {split}_<lang>.tsv manifests for --split {split} (found: "
                f"{', '.join(sorted(p.name for p in Path(manifest_dir).glob('*.tsv'))) or 'no .tsv'}); "
                "build them with xlsr-manifest, or name another --split")
    try:
        paths = {lang: manifest_path(manifest_dir, split, lang) for lang in languages}
    except ValueError as e:  # a split or language code that cannot be part of a manifest name
        raise AnalyzeError(str(e)) from None
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise AnalyzeError(f"no such manifest: {', '.join(missing)}; build it with xlsr-manifest, "
                           "or leave the language out of --languages")
    if len(paths) < 2:
        raise AnalyzeError(f"{', '.join(map(str, paths.values()))}: a comparison of languages needs at "
                           f"least two {split}_<lang>.tsv manifests")
    return paths


def sample(count: int, max_utterances: Optional[int], seed: int, lang: str) -> Optional[np.ndarray]:
    """Sorted indices of ``max_utterances`` of ``count`` utterances, drawn without
    replacement by ``seed`` and ``lang`` (another language's sample does not change it);
    None: all of them."""
    if max_utterances is None or max_utterances >= count:
        return None
    rng = np.random.default_rng([seed, zlib.crc32(lang.encode("utf-8"))])
    return np.sort(rng.choice(count, size=max_utterances, replace=False))


@dataclass
class _Picked(Manifest):
    """A window's chosen utterances: position ``i`` is utterance ``indices[i]`` of the
    manifest, so that errors still name its line."""

    indices: np.ndarray = None

    def line(self, index: int) -> int:
        return int(self.indices[index]) + 2


def picked_windows(manifest: Manifest, keep: Optional[np.ndarray], window: int) -> Iterator[Window]:
    """The manifest ``window`` lines at a time (``xlsr_tools.extract.read_windows``), only
    the utterances in ``keep`` (sorted indices; None: all)."""
    for win in read_windows(manifest, window):
        if keep is None:
            yield win
            continue
        lo, hi = np.searchsorted(keep, [win.first, win.first + len(win.names)])
        pos = keep[lo:hi] - win.first
        if len(pos):
            picked = _Picked(path=manifest.path, split=manifest.split, root=manifest.root, indices=keep[lo:hi])
            yield Window(picked, 0, [win.names[p] for p in pos], win.sizes[pos])


# ---------------------------------------------------------------------------------------
# the codebook analysis


def count_usage(checkpoint: str, manifests: Dict[str, Path], max_utterances: Optional[int] = None, seed: int = 0,
                max_tokens: int = 1_600_000, sort_window: int = 20_000, num_workers: int = 2,
                device: Optional[str] = None, progress: bool = True) -> codebook.CodeUsage:
    """The quantizer's choices over each language's (sampled) utterances, counted."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    encoder = load_encoder(checkpoint, device)
    if not encoder.has_quantizer:
        raise AnalyzeError(
            f"{checkpoint}: this checkpoint has no quantizer ({encoder.source}; fine-tuning removes it). "
            "Run the codebook analysis on the pre-trained checkpoint it was fine-tuned from")
    quantizer = encoder.model.quantizer
    groups, entries = quantizer.groups, quantizer.num_vars
    opened = {lang: scan_manifest(open_manifest(str(path)), encoder.receptive_field) for lang, path in manifests.items()}
    for lang, m in opened.items():
        if m.utterances == 0:
            raise AnalyzeError(f"{m.path}: no utterances, so zero frames for language {lang!r}: "
                               "leave it out (--languages) or rebuild the manifest")
    equal_lengths = encoder.model.cfg.extractor_mode == "default"  # group norm over time, as xlsr-extract
    langs = list(opened)
    # by the parity of the manifest index, for the split-half distance (sampling noise)
    halves = np.zeros((len(langs), 2, groups, entries), dtype=np.int64)
    utterances, frames, info = [0] * len(langs), [0] * len(langs), {}
    keeps = {lang: sample(m.utterances, max_utterances, seed, lang) for lang, m in opened.items()}
    total = sum(m.utterances if keeps[lang] is None else len(keeps[lang]) for lang, m in opened.items())
    bar = tqdm(total=total, unit="utt", desc="xlsr-analyze codes", disable=not progress, dynamic_ncols=True)
    for i, lang in enumerate(langs):
        m = opened[lang]
        for win in picked_windows(m, keeps[lang], sort_window):
            batches = [b.tolist() for b in plan_batches(win.sizes, max_tokens, equal_lengths)]
            for ids, arrays, lengths in window_features(encoder, win, batches, {"codes": np.int64}, device, num_workers):
                codes = arrays["codes"]
                for b, pos in enumerate(ids):
                    index = win.manifest.line(win.first + int(pos)) - 2
                    halves[i, index % 2] += codebook.count_codes(codes[b, : lengths[b]], entries)
                utterances[i] += len(ids)
                frames[i] += int(lengths.sum())
                bar.update(len(ids))
        if frames[i] == 0:
            raise AnalyzeError(f"{m.path}: zero frames for language {lang!r}: leave it out (--languages)")
        info[lang] = {"manifest": os.path.abspath(m.path), "utterances_in_manifest": m.utterances}
    bar.close()
    return codebook.CodeUsage(langs, halves.sum(axis=1), utterances, frames, info, halves)


def parse_families(spec: Optional[str]) -> Dict[str, str]:
    """``lang=family,...`` on top of :data:`xlsr_tools.codebook.FAMILIES`."""
    families = dict(codebook.FAMILIES)
    for item in filter(None, (s.strip() for s in (spec or "").split(","))):
        lang, sep, fam = item.partition("=")
        if not sep or not lang or not fam:
            raise AnalyzeError(f"--families: {item!r} is not LANG=FAMILY")
        families[lang] = fam
    return families


def analyze_codes(checkpoint: str, manifest_dir: str, out: str, split: str = "train",
                  languages: Optional[Sequence[str]] = None, max_utterances: Optional[int] = None,
                  seed: int = 0, families: Optional[str] = None, max_tokens: int = 1_600_000,
                  sort_window: int = 20_000, num_workers: int = 2, device: Optional[str] = None,
                  progress: bool = True) -> dict:
    """Write the codebook analysis to ``out`` (see the module docstring); returns the
    ``codes.json`` content. Mirrors ``xlsr-analyze codes``' options."""
    if max_utterances is not None and max_utterances < 1:
        raise AnalyzeError(f"--max-utterances {max_utterances}: give at least 1 (or leave it out: all)")
    family_table = parse_families(families)
    manifests = find_manifests(manifest_dir, split, languages)
    usage = count_usage(checkpoint, manifests, max_utterances, seed, max_tokens, sort_window, num_workers,
                        device, progress)
    result = codebook.analyse(usage, family_table, seed=seed)
    result.update(checkpoint=os.path.abspath(checkpoint), manifest_dir=os.path.abspath(manifest_dir),
                  split=split, max_utterances=max_utterances, seed=seed)
    codebook.write_outputs(out, usage, result)
    for line in result["findings"]:
        logger.info(line)
    logger.info(f"{out}: {', '.join(codebook.OUTPUTS.values())}")
    return result


# ---------------------------------------------------------------------------------------
# command line


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xlsr-analyze", description="Analyses of a pre-trained XLSR / "
                                     "wav2vec 2.0 model over the languages of a manifest folder.")
    sub = parser.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")
    codes = sub.add_parser(
        "codes", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        help="which quantizer entries each language uses, shared-by-k, JS distances and dendrogram",
        description="The paper's codebook analysis: per-language usage of the G x V quantizer entries, "
        "entries shared by k languages, Jensen-Shannon distances between the languages' code "
        "distributions with a heatmap and dendrogram (PNG), as json/tsv/markdown.")
    codes.add_argument("checkpoint", help="a pre-trained checkpoint (fine-tuned ones have no quantizer)")
    codes.add_argument("manifest_dir", help="folder of fairseq manifests <split>_<lang>.tsv")
    codes.add_argument("--out", required=True, help="output folder (files in it are replaced)")
    codes.add_argument("--split", default="train", help="the split whose <split>_<lang>.tsv are analysed")
    codes.add_argument("--languages", help="comma-separated languages; none given: every <split>_<lang>.tsv found")
    codes.add_argument("--max-utterances", type=int, default=None,
                       help="a seeded sample of this many utterances per language; none given: all")
    codes.add_argument("--seed", type=int, default=0, help="seed of the samples and of the permutation test")
    codes.add_argument("--families", help="LANG=FAMILY,... added to or replacing the built-in table of "
                       "language families (the same-family vs other-pairs comparison)")
    codes.add_argument("--max-tokens", type=int, default=1_600_000, help="padded audio samples per batch")
    codes.add_argument("--sort-window", type=int, default=20_000,
                       help="manifest lines read, sorted by length and batched at a time")
    codes.add_argument("--num-workers", type=int, default=2, help="audio-reading processes (0: in this one)")
    codes.add_argument("--device", default=None, help="torch device; none given: cuda if available, else cpu")
    codes.add_argument("--no-progress", action="store_true", help="no progress bar")
    pr = sub.add_parser(
        "probe", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        help="linear frame-level phone probe per layer of frozen checkpoints (frame phone error rate)",
        description="Per layer of each frozen checkpoint, a multinomial logistic regression from a frame's "
        "features to its phone (from phone alignments), trained on the train split's speakers and scored on "
        "the held-out speakers of the evaluation splits: frame phone error rate (%%), silence left out.")
    pr.add_argument("checkpoints", nargs="+", metavar="[NAME=]CKPT",
                    help="checkpoints (pre-trained or fine-tuned: the encoder is probed), each optionally named")
    pr.add_argument("--data", required=True, help="folder of fairseq manifests <split>_<lang>.tsv")
    pr.add_argument("--alignments", required=True,
                    help="release folder with <lang>/alignments/<split>.tsv (what xlsr-synth writes)")
    pr.add_argument("--languages", required=True, help="comma-separated languages")
    pr.add_argument("--out", required=True, help="output folder for probe.tsv and probe.json (replaced)")
    pr.add_argument("--train-split", default="train", help="the split whose frames train the probe")
    pr.add_argument("--eval-splits", default="dev,test", help="comma-separated splits it is scored on")
    pr.add_argument("--layers", default="all", help="'all' or comma-separated representations (cnn, layer_0, "
                    "..., layer_-1, final, quantized)")
    pr.add_argument("--steps", type=int, default=100, help="L-BFGS iterations per probe")
    pr.add_argument("--l2", type=float, default=1e-3, help="weight of the squared-weights penalty")
    pr.add_argument("--max-tokens", type=int, default=1_600_000, help="padded audio samples per batch")
    pr.add_argument("--num-workers", type=int, default=0, help="audio-reading processes (0: in this one)")
    pr.add_argument("--device", default=None, help="torch device; none given: cuda if available, else cpu")
    pr.add_argument("--no-progress", action="store_true", help="no progress lines")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(format="%(asctime)s | %(levelname)s | %(name)s | %(message)s", level=logging.INFO,
                        force=True)  # an import configured the root logger already (at DEBUG)
    try:
        if args.analysis == "codes":
            analyze_codes(args.checkpoint, args.manifest_dir, args.out, split=args.split,
                          languages=[s for s in (args.languages or "").split(",") if s] or None,
                          max_utterances=args.max_utterances, seed=args.seed, families=args.families,
                          max_tokens=args.max_tokens, sort_window=args.sort_window,
                          num_workers=args.num_workers, device=args.device, progress=not args.no_progress)
        elif args.analysis == "probe":
            split = lambda s: [x.strip() for x in s.split(",") if x.strip()]  # noqa: E731
            probe.run_probe(probe.parse_checkpoints(args.checkpoints), args.data, args.alignments,
                            split(args.languages), args.out, args.train_split, split(args.eval_splits),
                            args.layers, args.steps, args.l2, args.max_tokens, args.num_workers, args.device,
                            progress=not args.no_progress)
    except (AnalyzeError, ExtractError, probe.ProbeError) as e:
        print(f"xlsr-analyze: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
