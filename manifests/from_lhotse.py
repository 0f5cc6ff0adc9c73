"""lhotse manifests -> XLSR's per-language fairseq manifests (``xlsr-manifest lhotse``).

lhotse has recipes for dozens of corpora (CommonVoice, MLS, BABEL, VoxPopuli, FLEURS, ...);
their cuts (or recordings + supervisions) become the same ``<split>_<lang>.tsv`` /
``.wrd`` / ``.ltr`` / ``.spk`` files, rejects, stamps and ``dict.ltr*.txt`` as the other
builders write, so every one of those corpora can feed XLSR pre-training (section 3.2's
per-language sampling needs a language per utterance) and fine-tuning.

* **Utterances.** One per supervision: a cut with several supervisions is cut into one
  piece per supervision (lhotse's ``trim_to_supervisions``, overlapping supervisions
  left out of each piece, the piece on the supervision's channels). A cut without
  supervisions is one utterance of the whole cut (pre-training data, ``text=False``).
* **Language** per utterance, from ``supervision.language``: lhotse stores names
  ("English", MLS's "english") or codes ("en", CommonVoice's "zh-CN", FLEURS's "en_us");
  :func:`language_code` maps them to the codes the other builders use (:data:`LANGUAGES`;
  ``language_map`` overrides, ``language`` fills in where a supervision has none). Since
  each supervision is its own utterance, the supervisions of one cut may be in different
  languages. An utterance without a usable language is a reject, counted and written to
  ``<split>.rejects.tsv``; if the *first* cut of a manifest has none, the run stops
  before any work with an error naming the cut.
* **Audio.** fairseq reads one 16 kHz file per utterance with soundfile. A piece that is
  the whole single-channel 16 kHz FLAC/WAV/Ogg file of a recording is referenced in
  place (its header probed, or with ``audio_check=False`` lhotse's sample count trusted
  and nothing opened); any other piece (a segment, several channels, another rate or
  format, a URL or command source, a mixed cut) is loaded and resampled by lhotse
  (``cut.resample(16000).load_audio()``), averaged to mono and written as 16-bit FLAC
  below ``<output_dir>/audio/<lang>/<supervision id>.flac`` (re-runs reuse it).
  Each manifest's root is the deepest folder common to its files.
* **Scale.** The manifests are read lazily and streamed: blocks of utterances go to the
  process pool and their lines straight to temporary files, so memory does not grow
  with the corpus (``benchmarks/bench_lhotse.py``); outputs are renamed into place only
  when the whole run succeeded.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from tqdm import tqdm

try:
    from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet
    from lhotse.cut import Cut, MonoCut
    from lhotse.serialization import deserialize_item, load_jsonl
except ImportError as e:  # the optional extra
    raise ImportError(f"xlsr-manifest lhotse needs lhotse: pip install 'xlsr-plugin[lhotse]' ({e})") from e

from . import formats, layout
from .audio import (AudioJob, AudioSettings, Done, Reject, Segment, _duration_reject,
                    _existing, _write_flac, process_job)
from .pipeline import PrepareResult, SubsetResult, finish
from .text import Normalizer

PathLike = Union[str, os.PathLike]
AUDIO_DIR = "audio"
# formats whose header soundfile reads with an exact sample count (fairseq's reader)
IN_PLACE_SUFFIXES = (".flac", ".wav", ".ogg", ".opus")
TOLERANCE = 1e-3  # seconds: a piece within this of the whole recording is the whole file
BLOCK = 2048  # utterances handed to the process pool at a time (two blocks in flight)

# lhotse recipes end file names in _<split>; the split names they use, and renames
SPLIT_WORDS = ("train", "dev", "test", "eval", "valid", "validation", "val", "validated",
               "invalidated", "other")
SPLIT_ALIASES = {"validation": "dev", "valid": "dev", "val": "dev"}

# Language names (lower case) and ISO 639-2/3 codes -> the codes used elsewhere
# (two-letter where one exists). Codes not listed pass through as they are.
LANGUAGES: Dict[str, Tuple[str, ...]] = {
    "af": ("afrikaans", "afr"), "am": ("amharic", "amh"), "ar": ("arabic", "ara"),
    "as": ("assamese", "asm"), "az": ("azerbaijani", "aze"), "be": ("belarusian", "bel"),
    "bg": ("bulgarian", "bul"), "bn": ("bengali", "bangla", "ben"), "ca": ("catalan", "cat"),
    "cs": ("czech", "ces", "cze"), "cy": ("welsh", "cym", "wel"), "da": ("danish", "dan"),
    "de": ("german", "deu", "ger"), "el": ("greek", "ell", "gre"), "en": ("english", "eng"),
    "es": ("spanish", "spa"), "et": ("estonian", "est"), "eu": ("basque", "eus", "baq"),
    "fa": ("persian", "farsi", "fas", "per"), "fi": ("finnish", "fin"),
    "fr": ("french", "fra", "fre"), "ga": ("irish", "gle"), "gn": ("guarani", "grn"),
    "he": ("hebrew", "heb"), "hi": ("hindi", "hin"), "hr": ("croatian", "hrv"),
    "ht": ("haitian", "haitian creole", "hat"), "hu": ("hungarian", "hun"),
    "hy": ("armenian", "hye", "arm"), "id": ("indonesian", "ind"), "ig": ("igbo", "ibo"),
    "it": ("italian", "ita"), "ja": ("japanese", "jpn"), "jv": ("javanese", "jav"),
    "ka": ("georgian", "kat", "geo"), "kk": ("kazakh", "kaz"), "ko": ("korean", "kor"),
    "ky": ("kyrgyz", "kirghiz", "kir"), "lo": ("lao",), "lt": ("lithuanian", "lit"),
    "lv": ("latvian", "lav"), "mn": ("mongolian", "mon"), "ms": ("malay", "msa", "may"),
    "mt": ("maltese", "mlt"), "nl": ("dutch", "nld", "dut"), "pl": ("polish", "pol"),
    "ps": ("pashto", "pus"), "pt": ("portuguese", "por"), "ro": ("romanian", "ron", "rum"),
    "ru": ("russian", "rus"), "sk": ("slovak", "slk", "slo"),
    "sl": ("slovenian", "slovene", "slv"), "sv": ("swedish", "swe"),
    "sw": ("swahili", "swa", "swh"), "ta": ("tamil", "tam"), "te": ("telugu", "tel"),
    "th": ("thai", "tha"), "tl": ("tagalog", "tgl"), "tr": ("turkish", "tur"),
    "tt": ("tatar", "tat"), "uk": ("ukrainian", "ukr"), "ur": ("urdu", "urd"),
    "vi": ("vietnamese", "vie"), "zh": ("chinese", "mandarin", "zho", "chi", "cmn"),
    "zu": ("zulu", "zul"),
    # no two-letter code (BABEL)
    "yue": ("cantonese",), "ceb": ("cebuano",), "kmr": ("kurmanji",),
    "tpi": ("tok-pisin", "tok pisin"), "luo": ("dholuo",),
}
_BY_NAME = {name: code for code, names in LANGUAGES.items() for name in names}
_CODE = re.compile(r"([A-Za-z]{2,3})((?:[-_][A-Za-z0-9]+)*)")


def language_code(value: str) -> Optional[str]:
    """``"English"``/``"eng"``/``"en"`` -> ``"en"``; ``"en_us"``, ``"cmn_hans_cn"`` (FLEURS:
    ``_`` cannot be in a code) -> ``"en"``, ``"zh"``; ``"zh-CN"`` stays (as the CommonVoice
    builder names it); None if unknown."""
    v = value.strip()
    if v.lower() in _BY_NAME:
        return _BY_NAME[v.lower()]
    m = _CODE.fullmatch(v)
    if m:
        base = _BY_NAME.get(m.group(1).lower(), m.group(1).lower())
        rest = m.group(2)
        return base if not rest or "_" in rest else base + rest
    return _BY_NAME.get(re.split(r"[-_ (]", v, maxsplit=1)[0].lower())  # "English-US"


def split_from_name(path: PathLike) -> str:
    """``cv-en_cuts_train.jsonl.gz`` -> ``train``; ``..._validation.jsonl.gz`` -> ``dev``."""
    name = Path(path).name
    for suffix in (".gz", ".jsonl"):
        name = name[: -len(suffix)] if name.endswith(suffix) else name
    word = name.rpartition("_")[2] if "_" in name else ""
    if word.split("-")[0] not in SPLIT_WORDS:
        raise ValueError(
            f"{path}: cannot tell the split from the file name (lhotse recipes end it in "
            f"_<split>, e.g. cv-en_cuts_train.jsonl.gz); pass --split")
    return layout.check_split(SPLIT_ALIASES.get(word, word))


@dataclass
class LhotseResult(PrepareResult):
    """What :func:`prepare_lhotse` read and wrote (``subsets`` as every builder's)."""

    inputs: List[Path] = field(default_factory=list)
    cuts: int = 0
    referenced: int = 0  # utterances whose file is listed in place
    unassigned: Counter = field(default_factory=Counter)  # rejects without a language, by reason
    unassigned_files: List[Path] = field(default_factory=list)  # <split>.rejects.tsv
    other_languages: Counter = field(default_factory=Counter)  # not in ``languages``: not written

    @property
    def rejected(self) -> int:
        return super().rejected + sum(self.unassigned.values())

    def summary(self) -> str:
        lines = [s.summary() for s in self.subsets]
        conv = sum(s.converted for s in self.subsets)
        reused = sum(s.reused for s in self.subsets)
        written = sum(s.utterances for s in self.subsets)
        lines.append(f"{self.cuts} cut(s) from {len(self.inputs)} lhotse manifest(s): {written} "
                     f"utterance(s) written, {self.referenced} referenced in place, {conv} "
                     f"converted, {reused} reused")
        if self.unassigned:
            reasons = ", ".join(f"{r} {n}" for r, n in self.unassigned.most_common())
            files = ", ".join(p.name for p in self.unassigned_files)
            lines.append(f"{sum(self.unassigned.values())} rejected without a language "
                         f"({reasons}) -> {files}")
        if self.other_languages:
            langs = ", ".join(f"{l} {n}" for l, n in sorted(self.other_languages.items()))
            lines.append(f"{sum(self.other_languages.values())} utterance(s) left out, in "
                         f"languages not asked for: {langs}")
        lines.append(f"{len(self.subsets)} subset(s), {self.rejected} rejected utterance(s) in "
                     f"total; written to {self.output_dir}")
        return "\n".join(lines)


# -- reading ----------------------------------------------------------------------------


def _first_item(path: Path, kind: str):
    """The first object of a lhotse JSONL manifest, checked to be a ``kind``."""
    if not path.is_file():
        raise ValueError(f"{path}: not found")
    if ".jsonl" not in path.suffixes:
        raise ValueError(f"{path}: lhotse manifests are streamed from JSON lines (.jsonl or "
                         f".jsonl.gz); convert it first: lhotse copy {path} <name>.jsonl.gz")
    try:
        raw = next(iter(load_jsonl(path)), None)
        item = None if raw is None else deserialize_item(raw)
    except Exception as e:
        raise ValueError(f"{path}: not a lhotse manifest ({type(e).__name__}: {e}); expected "
                         "the JSON lines lhotse writes (CutSet/RecordingSet/SupervisionSet.to_file)"
                         ) from None
    if item is None:
        raise ValueError(f"{path}: empty manifest")
    want = {"cuts": Cut, "recordings": Recording, "supervisions": SupervisionSegment}[kind]
    if not isinstance(item, want):
        hint = ("pass recordings and supervisions as --recordings R --supervisions S"
                if kind == "cuts" else f"pass it as {'CUTS' if isinstance(item, Cut) else kind}")
        raise ValueError(f"{path}: holds {type(item).__name__} items, not {kind}; {hint}")
    return item


def _joined(recordings: Path, supervisions: Path):
    """Cuts of whole recordings with their supervisions, both files streamed in step.

    (lhotse's own ``CutSet.from_manifests(..., lazy=True)`` needs the same order, but
    nests one ``itertools.chain`` per recording: quadratic, 100 s for 100k recordings.)"""
    sups = iter(SupervisionSet.from_jsonl_lazy(supervisions))
    pending = next(sups, None)
    for rec in RecordingSet.from_jsonl_lazy(recordings):
        group = []
        while pending is not None and pending.recording_id == rec.id:
            group.append(pending)
            pending = next(sups, None)
        cut = rec.to_cut()
        cut.supervisions = group
        yield cut
    if pending is not None:
        left = 1 + sum(1 for _ in sups)
        raise ValueError(
            f"{supervisions}: {left} supervision(s), the first {pending.id!r} of recording "
            f"{pending.recording_id!r}, are not in the order of {recordings} (or name no "
            "recording in it); nothing was written. Sort both by recording, or make cuts "
            f"first (lhotse cut simple --force-eager -r {recordings} -s {supervisions} "
            "cuts.jsonl.gz) and pass those")


def _pieces(cut) -> list:
    """``(key, piece, supervision or None)``: one utterance per supervision (see module doc)."""
    sups = cut.supervisions
    if not sups:
        return [(cut.id, cut, None)]
    if (len(sups) == 1 and isinstance(cut, MonoCut) and sups[0].start <= TOLERANCE
            and sups[0].end >= cut.duration - TOLERANCE):
        return [(sups[0].id, cut, sups[0])]  # the usual case, without trim's cost
    return [(c.supervisions[0].id, c, c.supervisions[0])
            for c in cut.trim_to_supervisions(keep_overlapping=False)]


def _describe(cut) -> str:
    """The audio source(s) of a cut, for rejects."""
    rec = getattr(cut, "recording", None)
    if rec is None:
        return f"{type(cut).__name__} {cut.id}"
    return ",".join(s.source if s.type in ("file", "url", "command") else s.type
                    for s in rec.sources)


def _in_place(cut, rate: int) -> Tuple[Optional[str], str]:
    """``(absolute path, "")`` if fairseq can read the piece as a whole file, else
    ``(None, why it must be converted)``."""
    if not isinstance(cut, MonoCut) or not cut.has_recording:
        return None, f"a {type(cut).__name__}"
    rec = cut.recording
    src = rec.sources[0]
    if rec.num_channels != 1:
        return None, f"{rec.num_channels} channels"
    if rec.sampling_rate != rate:
        return None, f"{rec.sampling_rate} Hz"
    if rec.transforms:
        return None, "a transformed recording"
    if src.type != "file" or len(rec.sources) != 1:
        return None, f"audio from a {src.type}"
    if not src.source.lower().endswith(IN_PLACE_SUFFIXES) or "\t" in src.source or "\n" in src.source:
        return None, f"a {Path(src.source).suffix or 'extension-less'} file"
    if cut.start > TOLERANCE or cut.end < rec.duration - TOLERANCE:
        return None, f"the {cut.start:.3f}-{cut.end:.3f} s segment of {src.source}"
    return os.path.abspath(src.source), ""


def _missing(cut) -> List[str]:
    rec = getattr(cut, "recording", None)
    return [s.source for s in (rec.sources if rec is not None else [])
            if s.type == "file" and not os.path.isfile(s.source)]


# -- audio work (in the pool) -----------------------------------------------------------


def _convert(key: str, cut, out_root: str, rel: str, s: AudioSettings):
    seg, source = Segment(key, rel), _describe(cut)
    path = Path(out_root, rel)
    n = _existing(path, s.sample_rate)
    if n > 0:
        return _duration_reject(seg, source, n, s) or Done(key, rel, n, True)
    missing = _missing(cut)
    if missing:
        return Reject(key, source, "missing audio", f"{missing[0]} not found")
    try:
        piece = cut if cut.sampling_rate == s.sample_rate else cut.resample(s.sample_rate)
        wav = piece.load_audio()
    except Exception as e:  # lhotse's message names the recording
        return Reject(key, source, "unreadable audio", " ".join(str(e).split())[:400])
    wav = wav.mean(axis=0) if wav.ndim == 2 else wav
    bad = _duration_reject(seg, source, len(wav), s)
    if bad:
        return bad
    _write_flac(path, wav, s.sample_rate)
    return Done(key, rel, len(wav))


def _work(task):
    kind, key, payload, rel, settings = task
    if kind == "probe":  # the file in place: its header, as every builder probes
        out = process_job(AudioJob(payload, (Segment(key, rel),)), settings)[0]
        if isinstance(out, Reject) and out.reason == "wrong sample rate":
            return Reject(key, payload, out.reason, f"{out.detail.split(',')[0]}, not the "
                          f"{settings.sample_rate} Hz of the lhotse manifest: re-create it")
        return out
    return _convert(key, payload[0], payload[1], rel, settings)


class _Blocks:
    """Utterances in input order; their audio work done ``BLOCK`` at a time, in this
    process or a pool, with two blocks in flight; ``record(block, outcomes)`` gets each
    finished block in order."""

    def __init__(self, num_jobs: int, record):
        self.num_jobs, self.record = num_jobs, record
        self.pool = None
        self.block: List[tuple] = []
        self.pending: List[tuple] = []

    def add(self, entry: tuple) -> None:
        self.block.append(entry)
        if len(self.block) >= BLOCK:
            self.flush(keep=1)

    def flush(self, keep: int = 0) -> None:
        if self.block:
            tasks = [task for *_, kind, task in self.block if kind is not None]
            if not tasks:
                done: object = []
            elif self.num_jobs > 1:
                if self.pool is None:
                    self.pool = multiprocessing.get_context("fork").Pool(self.num_jobs)
                done = self.pool.map_async(_work, tasks, max(1, len(tasks) // (4 * self.num_jobs)))
            else:
                done = [_work(t) for t in tasks]
            self.pending.append((self.block, done))
            self.block = []
        while len(self.pending) > keep:
            block, done = self.pending.pop(0)
            self.record(block, done if isinstance(done, list) else done.get())

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()


class _Rejects:
    """``key<TAB>source<TAB>reason<TAB>detail`` lines (as ``pipeline.write_rejects``), the
    file opened on the first reject; a file left by an earlier run is removed if none."""

    def __init__(self, stack: contextlib.ExitStack, path: Path):
        self.stack, self.path, self.file = stack, path, None

    def write(self, r: Reject) -> None:
        if self.file is None:
            self.file = self.stack.enter_context(formats.atomic_write(self.path))
            print("key\tsource\treason\tdetail", file=self.file)
        detail = " ".join(r.detail.split())
        print(f"{r.key}\t{r.source}\t{r.reason}\t{detail}", file=self.file)

    def finish(self) -> None:
        if self.file is None:
            _unlink(self.path)


class _Subset:
    """The open outputs of one ``<split>_<lang>``: labels and rejects through
    ``formats.atomic_write``; absolute audio paths in a scratch file until the manifest's
    root (the deepest folder common to its files) is known."""

    def __init__(self, stack: contextlib.ExitStack, output_dir: Path, split: str, lang: str,
                 text: bool, oov: str, scratch: List[str]):
        self.result = SubsetResult(split, lang, layout.manifest_path(output_dir, split, lang))
        self.norm = Normalizer(lang, oov) if text else None
        self.rejects = _Rejects(stack, layout.rejects_path(output_dir, split, lang))
        self.root: Optional[str] = None
        fd, self.scratch = tempfile.mkstemp(prefix=f".{self.result.manifest.name}.", dir=output_dir)
        scratch.append(self.scratch)
        self._entries = stack.enter_context(os.fdopen(fd, "w", encoding="utf-8"))
        kinds = (["wrd", "ltr"] if text else []) + [layout.SPEAKER_LABELS]
        self._labels = [stack.enter_context(formats.atomic_write(
            layout.label_path(output_dir, split, lang, k))) for k in kinds]

    def add(self, path: str, n: int, words: str, speaker: str) -> None:
        folder = os.path.dirname(path)
        if self.root is None:
            self.root = folder
        elif not (folder + "/").startswith(self.root.rstrip("/") + "/"):
            self.root = os.path.commonpath([self.root, folder])
        print(f"{path}\t{n}", file=self._entries)
        lines = ([words, formats.letters(words)] if self.norm else []) + [speaker]
        for f, line in zip(self._labels, lines):
            print(line, file=f)
        self.result.utterances += 1
        self.result.samples += n

    def reject(self, r: Reject) -> None:
        self.rejects.write(r)
        self.result.rejects[r.reason] += 1

    def write_manifest(self, empty_root: str, verified_rate: Optional[int]) -> None:
        """Once the labels are in place: the manifest, relative to the common root."""
        self.rejects.finish()
        root = self.root or empty_root
        strip = len(root.rstrip("/")) + 1
        with open(self.scratch, encoding="utf-8") as f:
            entries = ((p[strip:], int(n)) for p, n in (line.rstrip("\n").split("\t") for line in f))
            formats.write_entries(self.result.manifest, root, entries, verified_rate)
        _unlink(self.scratch)
        if self.norm is not None:
            self.result.oov = self.norm.oov_counts


def _unlink(path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _is_code(lang: str) -> bool:
    try:
        layout.check_language(lang)
    except ValueError:
        return False
    return True


def _language(sup, fallback: Optional[str], mapping: Mapping[str, str],
              cache: Dict[str, Optional[str]]) -> Tuple[Optional[str], Optional[Tuple[str, str]]]:
    """``(code, None)`` or ``(None, (reason, detail))`` for a piece's supervision."""
    raw = sup.language if sup is not None else None
    if not raw:
        if fallback is None:
            return None, ("no language", "no supervision language; pass --language")
        return fallback, None
    if raw not in cache:
        code = mapping.get(raw) or language_code(raw)
        cache[raw] = code if code is not None and _is_code(code) else None
    if cache[raw] is None:
        return None, ("unknown language", f"{raw!r}: pass --language-map '{raw}=<code>'")
    return cache[raw], None


def _plan(key: str, piece, lang: str, out_root: str, convert: bool, audio_check: bool,
          s: AudioSettings) -> tuple:
    """``(None, outcome)`` when nothing is left to do, else ``(kind, task for _work)``."""
    path, why = _in_place(piece, s.sample_rate)
    if path is not None:
        if audio_check:
            return "probe", ("probe", key, path, path, s)
        n = piece.recording.num_samples  # trusted: lhotse read it from the header
        return None, _duration_reject(Segment(key, path), path, n, s) or Done(key, path, n)
    if not piece.has_recording:
        return None, Reject(key, _describe(piece), "no audio", "the cut has no recording")
    if not convert:
        return None, Reject(key, _describe(piece), "needs conversion",
                            f"{why}; fairseq reads one {s.sample_rate} Hz mono file per "
                            "utterance: drop --no-convert to write FLAC pieces")
    rel = f"{lang}/{re.sub(r'[^0-9A-Za-z._-]', '_', key).lstrip('.') or '_'}.flac"
    return "convert", ("convert", key, (piece, out_root), rel, s)


def _record(block: List[tuple], outcomes: List, out_root: str, result: LhotseResult) -> None:
    outcomes = iter(outcomes)
    for sub, words, speaker, kind, task in block:
        outcome = task if kind is None else next(outcomes)
        if isinstance(outcome, Reject):
            sub.reject(outcome)
            continue
        if kind == "convert":
            sub.result.converted += not outcome.reused
            sub.result.reused += outcome.reused
            path = os.path.join(out_root, outcome.rel)
        else:
            result.referenced += 1
            path = outcome.rel  # absolute
        sub.add(path, outcome.num_samples, words, speaker)


def _check_first(path: Path, cut, fallback, mapping, text: bool, convert: bool,
                 audio_check: bool, rate: int) -> None:
    """Stop before any work on what would otherwise reject a whole manifest (the first cut
    stands for the rest; a cut without supervisions is checked only as pre-training data)."""
    _, piece, sup = _pieces(cut)[0]
    if sup is not None or not text:
        _, why = _language(sup, fallback, mapping, {})
        if why and why[0] == "no language":
            raise ValueError(f"{path}: cut {cut.id!r} has no supervision language; pass "
                             "--language CODE (used where a supervision names none)")
        if why:
            raise ValueError(f"{path}: cut {cut.id!r}: unknown language {sup.language!r}; pass "
                             f"--language-map '{sup.language}=<code>'")
    if text and sup is not None and not sup.text:
        raise ValueError(f"{path}: cut {cut.id!r} has no supervision text; for pre-training "
                         "manifests without labels pass --no-text")
    if not cut.has_recording:
        raise ValueError(f"{path}: cut {cut.id!r} has no recording; audio is needed")
    missing = _missing(cut) if audio_check else []
    if missing:
        raise ValueError(f"{path}: cut {cut.id!r}: recording file {missing[0]} not found; "
                         "relative paths in lhotse manifests are relative to the folder lhotse "
                         "ran in: run from there, or pass --path-prefix")
    found, why_not = _in_place(piece, rate)
    if found is None and not convert:
        raise ValueError(f"{path}: cut {cut.id!r} needs converting ({why_not}) and --no-convert "
                         f"was given: fairseq reads whole {rate} Hz mono files; drop --no-convert "
                         "to write FLAC pieces")


# -- the builder ------------------------------------------------------------------------


def _open(cuts, recordings, supervisions, split, path_prefix) -> Dict[str, List[tuple]]:
    """``{split: [(path, cut iterator), ...]}`` with every manifest's first item checked."""
    streams = []
    if recordings is not None or supervisions is not None:
        if recordings is None or supervisions is None:
            raise ValueError("--recordings and --supervisions go together (one split each)")
        r, s = Path(recordings), Path(supervisions)
        _first_item(r, "recordings")
        _first_item(s, "supervisions")
        streams.append((s, split or split_from_name(s), _joined(r, s)))
    paths = [] if cuts is None else [cuts] if isinstance(cuts, (str, os.PathLike)) else list(cuts)
    for path in map(Path, paths):
        _first_item(path, "cuts")
        streams.append((path, split or split_from_name(path), iter(CutSet.from_jsonl_lazy(path))))
    if not streams:
        raise ValueError("no lhotse manifest given: CUTS, or --recordings R --supervisions S")
    groups: Dict[str, List[tuple]] = {}
    for path, name, stream in streams:
        if path_prefix is not None:
            stream = (c.with_recording_path_prefix(path_prefix) for c in stream)
        groups.setdefault(layout.check_split(name), []).append((path, stream))
    return groups


def prepare_lhotse(
    cuts: Union[PathLike, Sequence[PathLike], None],
    output_dir: PathLike,
    languages: Optional[Sequence[str]] = None,
    num_jobs: int = 1,
    *,
    recordings: Optional[PathLike] = None,
    supervisions: Optional[PathLike] = None,
    split: Optional[str] = None,
    language: Optional[str] = None,
    language_map: Optional[Mapping[str, str]] = None,
    text: bool = True,
    convert: bool = True,
    audio_check: bool = True,
    path_prefix: Optional[PathLike] = None,
    settings: AudioSettings = AudioSettings(),
    oov: str = "reject",
) -> LhotseResult:
    """Build ``<split>_<lang>.{tsv,wrd,ltr,spk}`` and ``dict.ltr*.txt`` from lhotse manifests.

    Expected input: what lhotse's recipes (``lhotse prepare <corpus>``) and ``CutSet.to_file``
    write, as JSON lines; the split is ``split`` or the last ``_`` field of each name::

        data/manifests/
          cv-es_cuts_train.jsonl.gz           cuts (one or more files; e.g. `lhotse cut simple`)
          cv-es_recordings_dev.jsonl.gz       or the recordings + supervisions of one split,
          cv-es_supervisions_dev.jsonl.gz     in the same recording order (as recipes write them)

        one cut per line:
        {"id": "cv_es_1", "start": 0, "duration": 3.2, "channel": 0, "type": "MonoCut",
         "supervisions": [{"id": "cv_es_1", "recording_id": "cv_es_1", "start": 0,
                           "duration": 3.2, "text": "Hola", "language": "es", "speaker": "c1"}],
         "recording": {"id": "cv_es_1", "sources": [{"type": "file", "channels": [0],
                       "source": "clips/cv_es_1.mp3"}], "sampling_rate": 48000, ...}}

    Output: as :func:`~manifests.commonvoice.prepare_commonvoice` (pieces that need
    converting below ``output_dir/audio/<lang>/``; in-place files stay where they are),
    plus ``<split>.rejects.tsv`` for utterances without a usable language.

    ``languages`` keeps these codes (after mapping) only; the others are counted.
    ``text=False`` writes no ``.wrd``/``.ltr`` (pre-training data: supervisions need no
    text, cuts need none). ``convert=False`` writes no audio: a piece that is not a whole
    16 kHz mono file is rejected. ``audio_check=False`` opens no in-place file (sample
    counts from the manifest; no ``.verified`` stamp, so training checks the headers
    once). ``path_prefix`` goes before relative audio paths (lhotse resolves them against
    the folder it runs in). Pieces, languages and audio: see the module docstring.
    """
    output_dir = Path(output_dir)
    mapping = dict(language_map or {})
    for code in mapping.values():
        layout.check_language(code)
    fallback = None
    if language is not None:
        fallback = mapping.get(language) or language_code(language)
        if fallback is None or not _is_code(fallback):
            raise ValueError(f"--language {language!r}: not a language name or code")
    rate = settings.sample_rate
    groups = _open(cuts, recordings, supervisions, split, path_prefix)
    for streams in groups.values():  # before any audio is touched
        for i, (path, stream) in enumerate(streams):
            first = next(stream)
            _check_first(path, first, fallback, mapping, text, convert, audio_check, rate)
            streams[i] = (path, chain([first], stream))

    output_dir.mkdir(parents=True, exist_ok=True)
    out_root = str((output_dir / AUDIO_DIR).resolve())
    result = LhotseResult(output_dir, inputs=[p for s in groups.values() for p, _ in s])
    blocks = _Blocks(num_jobs, lambda block, done: _record(block, done, out_root, result))
    codes: Dict[str, Optional[str]] = {}
    wanted = set(languages) if languages else None
    scratch: List[str] = []
    try:
        for split_name, streams in groups.items():
            subsets: Dict[str, _Subset] = {}
            with contextlib.ExitStack() as stack:  # labels and rejects renamed on success
                unassigned = _Rejects(stack, layout.rejects_path(output_dir, split_name))
                for path, stream in streams:
                    for cut in tqdm(stream, desc=path.name, unit="cut", leave=False, mininterval=1):
                        result.cuts += 1
                        for key, piece, sup in _pieces(cut):
                            lang, why = _language(sup, fallback, mapping, codes)
                            if why:
                                unassigned.write(Reject(key, _describe(piece), why[0],
                                                        f"cut {cut.id}: {why[1]}"))
                                result.unassigned[why[0]] += 1
                                continue
                            if wanted is not None and lang not in wanted:
                                result.other_languages[lang] += 1
                                continue
                            sub = subsets.get(lang)
                            if sub is None:
                                sub = subsets[lang] = _Subset(stack, output_dir, split_name, lang,
                                                              text, oov, scratch)
                            words = ""
                            if text:
                                words, bad = (sub.norm(sup.text or "") if sup is not None
                                             else (None, "a cut without supervisions"))
                                if bad:
                                    sub.reject(Reject(key, _describe(piece), "bad transcript", bad))
                                    continue
                            speaker = (sup.speaker if sup is not None else None) or "-"
                            blocks.add((sub, words, speaker) + _plan(
                                key, piece, lang, out_root, convert, audio_check, settings))
                blocks.flush()
            unassigned.finish()
            if unassigned.file is not None:
                result.unassigned_files.append(unassigned.path)
            for sub in subsets.values():
                sub.write_manifest(out_root, rate if audio_check else None)
                result.subsets.append(sub.result)
    finally:
        blocks.close()
        for path in scratch:
            _unlink(path)
    result.subsets.sort(key=lambda s: (s.lang, s.split))
    return finish(result, ("ltr",) if text else ())


__all__ = ["LhotseResult", "language_code", "prepare_lhotse", "split_from_name"]
