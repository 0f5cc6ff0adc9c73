"""A linear phone probe of frozen wav2vec 2.0 / XLSR representations, layer by layer.

How much phone identity a frozen pre-trained model's frames carry, read off by the
simplest classifier: per layer (``cnn``, ``layer_0`` .. ``layer_N``, ``final``; the names
of :mod:`xlsr_tools.representations`), a multinomial logistic regression from one frame's
features to the phone at that frame, trained on the frames of the train speakers and
scored on held-out speakers (the synthetic corpus' splits have disjoint speakers). It is
the frame-level probe that representation studies of wav2vec 2.0 use next to ZeroSpeech's
ABX; cheap and of low variance, so it separates pre-trainings that fine-tuning PERs at
toy scale cannot.

* Frames and labels: the model's frames (stride 320 samples, receptive field 400 at
  16 kHz) of every utterance of ``<split>_<lang>.tsv`` (``xlsr_tools.extract.window_features``,
  the audio read as ``xlsr-extract`` reads it); a frame's label is the phone whose segment
  contains the centre of the frame's receptive field, from the utterance's phone
  alignment (``xlsr_demo.alignments``: ``<release>/<lang>/alignments/<split>.tsv``, keyed
  by the audio file's name without extension). Silence frames are left out (counted);
  every manifest line must have an alignment.
* The probe: features standardised with the train frames' mean and sd, weights from zero,
  cross-entropy plus ``l2`` times the squared weights, minimised by full-batch L-BFGS
  (``steps`` iterations, strong Wolfe line search): deterministic, no seed involved.
* Scores: frame phone error rate (%) on the ``dev`` and ``test`` speakers, with the error
  of always answering the train frames' most frequent phone (``majority_error``) next to
  it. A dev/test phone no train frame has counts as an error (``unseen``).

Written to ``--out``: ``probe.tsv`` (one row per checkpoint, language, layer and
evaluation split) and ``probe.json`` (the same rows, the settings, and per language the
frames kept and the silence frames left out), each atomically.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch

from manifests.layout import manifest_path
from xlsr_demo.alignments import SILENCE, Segment, alignment_path, clip_key, read_alignments
from xlsr_tools.probe_table import write_outputs
from xlsr_tools.extract import open_manifest, plan_batches, read_windows, scan_manifest, window_features
from xlsr_tools.representations import Encoder, load_encoder

logger = logging.getLogger("xlsr_tools.probe")

NOT_FEATURES = ("codes",)  # codebook indices, not vectors


class ProbeError(ValueError):
    """Bad input for the probe: the message names the file (and line) and what to do."""


@dataclass
class Split:
    """The labelled frames of one manifest: features per layer, phone per frame."""

    features: Dict[str, np.ndarray]  # layer -> frames x dims (float32)
    labels: np.ndarray  # frames (str)
    utterances: int
    silence: int  # frames left out


def parse_checkpoints(specs: Sequence[str]) -> Dict[str, str]:
    """``NAME=PATH`` or ``PATH`` (named by itself) -> ``{name: path}``; every file must exist."""
    out: Dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = spec, spec
        if not name or not path:
            raise ProbeError(f"checkpoint {spec!r}: give PATH or NAME=PATH")
        if name in out:
            raise ProbeError(f"checkpoint name {name!r} given twice")
        if not os.path.isfile(path):
            raise ProbeError(f"{path}: no such checkpoint")
        out[name] = path
    if not out:
        raise ProbeError("no checkpoint given")
    return out


def frame_labels(segments: Sequence[Segment], num_frames: int, stride: int, field: int,
                 sample_rate: int) -> np.ndarray:
    """The phone at the centre of each frame's receptive field (:data:`SILENCE` where no
    segment covers it)."""
    centres = (np.arange(num_frames) * stride + field / 2) / sample_rate
    starts = np.array([s for s, _, _ in segments], dtype=np.float64)
    ends = np.array([e for _, e, _ in segments], dtype=np.float64)
    phones = np.array([p for _, _, p in segments] + [SILENCE], dtype=object)
    index = np.searchsorted(starts, centres, side="right") - 1
    inside = (index >= 0) & (centres < ends[np.maximum(index, 0)])
    return phones[np.where(inside, index, len(segments))]


def _alignment_table(release, lang: str, split: str, manifest: str) -> Dict[str, List[Segment]]:
    """The split's alignments; every line of ``manifest`` must have one (checked before any
    model work)."""
    path = alignment_path(release, lang, split)
    try:
        table = read_alignments(path)
    except FileNotFoundError:
        raise ProbeError(f"{path}: no such alignment file (xlsr-synth writes <release>/<lang>/alignments/"
                         "<split>.tsv; re-run it on the release, or give the right --alignments)") from None
    except ValueError as e:
        raise ProbeError(str(e)) from None
    m = open_manifest(manifest)
    for win in read_windows(m, 100_000):
        for i, name in enumerate(win.names):
            if clip_key(name) not in table:
                raise ProbeError(f"{m.where(win.first + i)}: {name} has no phone alignment in {path} "
                                 f"(no clip {clip_key(name)!r}); the manifest and the alignments must come "
                                 "from the same release")
    return table


def collect(encoder: Encoder, manifest: str, table: Mapping[str, List[Segment]], layers: Sequence[str],
            device: str, max_tokens: int = 1_600_000, num_workers: int = 0) -> Split:
    """Every non-silence frame of ``manifest``: its features at ``layers`` and its phone."""
    m = scan_manifest(open_manifest(manifest), encoder.receptive_field)
    equal_lengths = encoder.model.cfg.extractor_mode == "default"  # group norm over time, as xlsr-extract
    feats: Dict[str, List[np.ndarray]] = {name: [] for name in layers}
    labels: List[np.ndarray] = []
    silence = 0
    for win in read_windows(m, max(1, m.utterances)):
        batches = [b.tolist() for b in plan_batches(win.sizes, max_tokens, equal_lengths)]
        order = []
        for ids, arrays, lengths in window_features(encoder, win, batches, {n: np.float32 for n in layers},
                                                    device, num_workers):
            for b, pos in enumerate(ids):
                n = int(lengths[b])
                phones = frame_labels(table[clip_key(win.names[pos])], n, encoder.stride,
                                      encoder.receptive_field, encoder.sample_rate)
                keep = phones != SILENCE
                silence += int(n - keep.sum())
                order.append(int(pos))
                labels.append(phones[keep])
                for name in layers:
                    feats[name].append(arrays[name][b, :n][keep])
    # manifest order, whatever the batching
    rank = np.argsort(order, kind="stable")
    stack = lambda parts: np.concatenate([parts[i] for i in rank]) if parts else np.zeros(0)  # noqa: E731
    return Split({name: stack(parts).astype(np.float32, copy=False) for name, parts in feats.items()},
                 stack(labels), m.utterances, silence)


@dataclass
class Probe:
    """A fitted linear probe: standardisation, weights and the classes it knows."""

    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor
    classes: List[str]

    def predict(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            z = (torch.from_numpy(x).double() - self.mean) / self.std
            return (z @ self.weight.T + self.bias).argmax(1).numpy()


def fit_probe(x: np.ndarray, labels: np.ndarray, steps: int = 100, l2: float = 1e-3) -> Probe:
    """Multinomial logistic regression on standardised ``x`` (frames x dims), full-batch
    L-BFGS from zero weights (see the module docstring)."""
    classes = sorted(set(labels.tolist()))
    if len(classes) < 2:
        raise ProbeError(f"the probe needs at least two phones in its training frames, found {classes}")
    index = {c: i for i, c in enumerate(classes)}
    y = torch.tensor([index[c] for c in labels.tolist()])
    xt = torch.from_numpy(x).double()
    mean, std = xt.mean(0), xt.std(0, unbiased=False).clamp_min(1e-6)
    z = (xt - mean) / std
    weight = torch.zeros(len(classes), x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(len(classes), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=steps, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z @ weight.T + bias, y) + l2 * (weight ** 2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return Probe(mean, std, weight.detach(), bias.detach(), classes)


def score(probe: Probe, x: np.ndarray, labels: np.ndarray, majority: str) -> Dict[str, float]:
    """Frame error rate (%) of ``probe`` on ``x``, the majority-phone error and unseen frames."""
    if len(labels) == 0:
        raise ProbeError("no non-silence frames to score")
    predicted = np.asarray(probe.classes, dtype=object)[probe.predict(x)]
    known = set(probe.classes)
    return {"frames": int(len(labels)), "error": 100.0 * float(np.mean(predicted != labels)),
            "majority_error": 100.0 * float(np.mean(labels != majority)),
            "unseen": int(sum(1 for c in labels.tolist() if c not in known))}


def run_probe(checkpoints: Mapping[str, str], manifest_dir: str, release: str, languages: Sequence[str], out: str,
              train_split: str = "train", eval_splits: Sequence[str] = ("dev", "test"), layers: str = "all",
              steps: int = 100, l2: float = 1e-3, max_tokens: int = 1_600_000, num_workers: int = 0,
              device: Optional[str] = None, progress: bool = True) -> List[dict]:
    """Probe every checkpoint on every language (see the module docstring); returns the
    rows of ``probe.tsv``. Inputs are checked before any model is run."""
    start = time.time()
    if not languages:
        raise ProbeError("--languages: name at least one language")
    if steps < 1 or l2 < 0:
        raise ProbeError(f"--steps {steps} / --l2 {l2}: need steps >= 1 and l2 >= 0")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    splits = [train_split] + [s for s in eval_splits if s != train_split]
    manifests, tables = {}, {}
    for lang in languages:
        for split in splits:
            try:
                path = manifest_path(manifest_dir, split, lang)
            except ValueError as e:
                raise ProbeError(str(e)) from None
            if not path.is_file():
                raise ProbeError(f"{path}: no such manifest; build it with xlsr-manifest, or check --data, "
                                 "--languages and the split names")
            manifests[lang, split] = str(path)
            tables[lang, split] = _alignment_table(release, lang, split, str(path))
    rows: List[dict] = []
    counts: Dict[str, dict] = {}
    for n, (name, ckpt) in enumerate(checkpoints.items(), 1):
        encoder = load_encoder(ckpt, device)
        wanted = encoder.resolve_layers(layers)
        bad = [w for w in wanted if w in NOT_FEATURES]
        if layers.strip() == "all":
            wanted, bad = [w for w in wanted if w not in NOT_FEATURES], []
        if bad:
            raise ProbeError(f"--layers {layers!r}: {', '.join(bad)} are codebook indices, not features; "
                             "leave them out (the probe reads vectors: cnn, quantized, layer_*, final)")
        for lang in languages:
            data = {s: collect(encoder, manifests[lang, s], tables[lang, s], wanted, device, max_tokens, num_workers)
                    for s in splits}
            train = data[train_split]
            counts[lang] = {s: {"utterances": d.utterances, "frames": int(len(d.labels)), "silence_frames": d.silence}
                            for s, d in data.items()}
            if len(train.labels) == 0:
                raise ProbeError(f"{manifests[lang, train_split]}: no non-silence frames to train the probe on")
            majority = Counter(train.labels.tolist()).most_common(1)[0][0]
            for layer in wanted:
                probe = fit_probe(train.features[layer], train.labels, steps, l2)
                for split in splits[1:]:
                    d = data[split]
                    rows.append({"name": name, "lang": lang, "layer": layer, "split": split,
                                 **score(probe, d.features[layer], d.labels, majority),
                                 "classes": len(probe.classes), "checkpoint": os.path.abspath(ckpt)})
            if progress:
                best = min((r for r in rows if r["name"] == name and r["lang"] == lang and r["split"] == splits[-1]),
                           key=lambda r: r["error"], default=None)
                if best:
                    logger.info(f"[{n}/{len(checkpoints)}] {name} {lang}: lowest {splits[-1]} frame error "
                                f"{best['error']:.1f}% at {best['layer']} (majority phone: "
                                f"{best['majority_error']:.1f}%), {time.time() - start:.0f} s")
    write_outputs(out, rows, {
        "checkpoints": {k: os.path.abspath(v) for k, v in checkpoints.items()},
        "manifest_dir": os.path.abspath(manifest_dir), "alignments": os.path.abspath(release),
        "languages": list(languages), "train_split": train_split, "eval_splits": splits[1:], "layers": layers,
        "steps": steps, "l2": l2, "label": "phone at the centre of the frame's receptive field; silence left out",
        "frames": counts, "seconds": round(time.time() - start, 1)})
    return rows
