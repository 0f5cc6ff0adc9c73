"""A synthetic CommonVoice release in the XLSR-10 languages, spoken by espeak-ng.

The paper's CommonVoice experiment pre-trains on unlabelled speech whose amount varies
a lot by language (Kyrgyz and Tatar have ~10-20 h, Spanish ~170 h), fine-tunes on one
hour per language and tests on held-out speakers. ``synthesize_corpus`` writes the toy
analogue in CommonVoice's own layout, so the real builder (``xlsr-manifest
commonvoice``) is what reads it::

    <out>/
      synth_config.json                  seed, minutes, speakers (what made this)
      <lang>/                            es fr it ky nl ru sv tr tt zh en
        clips/synth_<lang>_<spk>_<n>.mp3 16 kHz mono MP3
        train.tsv dev.tsv test.tsv       CommonVoice columns, speakers disjoint
        validated.tsv                    train + dev + test (as in CommonVoice)
        invalidated.tsv other.tsv        header only
        train-1h.tsv                     the fine-tuning "1 h" analogue: a subset of
                                         train.tsv, the same duration in every language
        speakers.tsv                     client_id -> split, espeak voice, rate, pitch
        alignments/<split>.tsv           train dev test: each clip's phone segments from
                                         espeak-ng's phoneme events (clip, start, end,
                                         phone; format: xlsr_demo.alignments)

* ``train`` holds ``minutes_per_language`` of audio (the pre-training amount: make the
  low-resource languages small); ``dev`` and ``test`` hold ``eval_minutes`` each and
  ``train-1h`` ``finetune_minutes`` (capped at what ``train`` has), equal everywhere.
* Speakers: ``speakers_per_language`` per language; ``max(1, n // 5)`` of them speak
  only ``dev``, as many only ``test``, the rest ``train``.
* Everything is reproducible from ``seed``. Files are written through temp files and
  renamed; a re-run skips clips that already exist (re-synthesis to know the duration
  is cheap, MP3 encoding is not) and refuses an output folder made with another seed
  or other speakers.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from manifests.formats import atomic_write
from xlsr_demo import XLSR10, alignments, sentences, voices

SAMPLE_RATE = 16000
DEFAULT_LANGUAGES = XLSR10 + ("en",)
DEFAULT_LOW_RESOURCE = {"ky": 0.5, "tt": 0.5}
SPLITS = ("train", "dev", "test")
FINETUNE_SPLIT = "train-1h"
CV_COLUMNS = (
    "client_id", "path", "sentence", "up_votes", "down_votes",
    "age", "gender", "accent", "locale", "segment",
)
CONFIG_FILE = "synth_config.json"
PEAK = 0.95


@dataclass
class Clip:
    """One synthesized utterance (a row of a CommonVoice tsv)."""

    path: str  # file name inside <lang>/clips/
    sentence: str
    client_id: str
    gender: str
    seconds: float
    written: bool  # False when the file already existed
    segments: List[alignments.Segment] = field(default_factory=list)  # phone alignment


@dataclass
class LanguageResult:
    lang: str
    source: str  # where the sentences came from
    speakers: Dict[str, int]  # split -> number of speakers
    clips: Dict[str, int]  # split (incl. train-1h) -> number of clips
    minutes: Dict[str, float]  # split (incl. train-1h) -> minutes of audio
    written: int = 0
    skipped_existing: int = 0
    finetune_capped: bool = False  # train had less than finetune_minutes


@dataclass
class SynthesisResult:
    out_dir: Path
    languages: Dict[str, LanguageResult] = field(default_factory=dict)
    seconds_elapsed: float = 0.0

    def summary(self) -> str:
        head = f"{'lang':<5} {'source':<36} {'spk t/d/t':<10} " + " ".join(
            f"{s + ' min':>12}" for s in SPLITS + (FINETUNE_SPLIT,)
        ) + f" {'written':>8} {'existed':>8}"
        lines = [head]
        for r in self.languages.values():
            spk = "/".join(str(r.speakers[s]) for s in SPLITS)
            mins = " ".join(
                f"{r.minutes[s]:>8.2f} ({r.clips[s]:>3})" for s in SPLITS + (FINETUNE_SPLIT,)
            )
            cap = "  (train-1h capped: train is smaller)" if r.finetune_capped else ""
            lines.append(
                f"{r.lang:<5} {r.source[:36]:<36} {spk:<10} {mins} {r.written:>8} "
                f"{r.skipped_existing:>8}{cap}"
            )
        lines.append(f"{self.out_dir}: {self.seconds_elapsed:.1f} s")
        return "\n".join(lines)


@dataclass
class _Unit:
    lang: str
    split: str
    speaker: voices.Speaker
    seconds: float
    seed: int
    clips_dir: str


_ENGINE: Optional[voices.Espeak] = None


def _engine() -> voices.Espeak:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = voices.Espeak()
    return _ENGINE


def _missing_voices(voice_names: Sequence[str]) -> List[str]:
    engine = _engine()
    return [v for v in voice_names if not engine.has_voice(v)]


def _write_mp3(path: Path, audio: np.ndarray) -> None:
    import soundfile as sf

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        sf.write(str(tmp), audio, SAMPLE_RATE, format="MP3")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _run_unit(unit: _Unit) -> List[Clip]:
    """Speak prompts as ``unit.speaker`` until ``unit.seconds`` of audio exist."""
    engine = _engine()
    spk = unit.speaker
    source = sentences.SentenceSource(unit.lang, unit.seed, stream=f"{unit.split}/{spk.index}")
    clips_dir = Path(unit.clips_dir)
    clips: List[Clip] = []
    total = 0.0
    while total < unit.seconds:
        text = source.next()
        clip_seed = sentences.stable_seed("clip", unit.lang, unit.split, spk.index, len(clips), unit.seed)
        audio = voices.resample(engine.speak(text, spk, clip_seed), engine.sample_rate, SAMPLE_RATE)
        peak = float(np.abs(audio).max()) if audio.size else 0.0
        if peak < 1e-3:
            raise RuntimeError(f"espeak-ng produced silence for {unit.lang} {spk.voice}: {text!r}")
        if peak > PEAK:
            audio = audio * (PEAK / peak)
        name = f"synth_{unit.lang}_{spk.index:02d}_{len(clips):05d}.mp3"
        path = clips_dir / name
        exists = path.is_file()
        if not exists:
            _write_mp3(path, audio)
        seconds = len(audio) / SAMPLE_RATE
        segments = alignments.phone_segments(engine.events, seconds)
        clips.append(Clip(name, text, spk.client_id, spk.gender, seconds, not exists, segments))
        total += seconds
    return clips


def _minutes_table(languages: Sequence[str], minutes) -> Dict[str, float]:
    if isinstance(minutes, Mapping):
        missing = [lang for lang in languages if lang not in minutes]
        if missing:
            raise ValueError(f"minutes_per_language has no entry for {', '.join(missing)}")
        table = {lang: float(minutes[lang]) for lang in languages}
    else:
        table = {lang: float(minutes) for lang in languages}
    bad = [f"{lang}={m}" for lang, m in table.items() if not m > 0]
    if bad:
        raise ValueError(f"minutes per language must be > 0: {', '.join(bad)}")
    return table


def assign_splits(speakers: Sequence[voices.Speaker]) -> Dict[str, List[voices.Speaker]]:
    """Disjoint speakers per split: the last ``max(1, n // 5)`` test, as many before dev."""
    n = len(speakers)
    k = max(1, n // 5)
    if n < 3:
        raise ValueError(f"need at least 3 speakers per language (train, dev, test), got {n}")
    return {"train": list(speakers[: n - 2 * k]), "dev": list(speakers[n - 2 * k : n - k]),
            "test": list(speakers[n - k :])}


def _finetune_subset(train: Sequence[Clip], seconds: float) -> List[Clip]:
    """Round-robin over train speakers until ``seconds`` of audio (the "1 h" analogue)."""
    by_speaker: Dict[str, List[Clip]] = {}
    for clip in train:
        by_speaker.setdefault(clip.client_id, []).append(clip)
    queues = [list(reversed(v)) for v in by_speaker.values()]
    chosen, total = [], 0.0
    while total < seconds and any(queues):
        for q in queues:
            if q and total < seconds:
                clip = q.pop()
                chosen.append(clip)
                total += clip.seconds
    return chosen


def _write_tsv(path: Path, lang: str, clips: Sequence[Clip]) -> None:
    with atomic_write(path) as f:
        f.write("\t".join(CV_COLUMNS) + "\n")
        for c in clips:
            values = {"client_id": c.client_id, "path": c.path, "sentence": c.sentence,
                      "up_votes": "2", "down_votes": "0", "gender": c.gender, "locale": lang}
            f.write("\t".join(values.get(col, "") for col in CV_COLUMNS) + "\n")


def _check_config(lang_dir: Path, config: dict) -> bool:
    """False when ``lang_dir`` is new; raises when it was made with other settings."""
    path = lang_dir / CONFIG_FILE
    if not path.is_file():
        return False
    if json.loads(path.read_text(encoding="utf-8")) != config:
        raise ValueError(
            f"{path}: this folder was synthesized with other settings (seed, speakers "
            "or voices differ); use another --out or delete the folder"
        )
    return True


def synthesize_corpus(
    out_dir,
    languages: Sequence[str] = DEFAULT_LANGUAGES,
    minutes_per_language: Union[float, Mapping[str, float]] = 3.0,
    speakers_per_language: int = 4,
    seed: int = 1,
    num_jobs: int = 2,
    eval_minutes: float = 0.5,
    finetune_minutes: float = 0.5,
    progress: bool = True,
) -> SynthesisResult:
    """Write a CommonVoice-shaped release of synthetic speech (see the module docstring)."""
    start = time.time()
    out_dir = Path(out_dir)
    languages = list(dict.fromkeys(languages))
    for lang in languages:
        voices.voice_name(lang), sentences.text_spec(lang)  # raise on unknown languages
    minutes = _minutes_table(languages, minutes_per_language)
    if not (eval_minutes > 0 and finetune_minutes > 0):
        raise ValueError("eval_minutes and finetune_minutes must be > 0")
    plan = {lang: assign_splits(voices.make_speakers(lang, speakers_per_language, seed))
            for lang in languages}

    configs = {lang: {"seed": seed, "sample_rate": SAMPLE_RATE, "speakers": {
        split: [s.as_dict() for s in spk] for split, spk in by_split.items()}}
        for lang, by_split in plan.items()}
    existing = {lang: _check_config(out_dir / lang, configs[lang]) for lang in languages}
    units: List[_Unit] = []
    for lang, by_split in plan.items():
        lang_dir = out_dir / lang
        (lang_dir / "clips").mkdir(parents=True, exist_ok=True)
        if not existing[lang]:
            with atomic_write(lang_dir / CONFIG_FILE) as f:
                json.dump(configs[lang], f, indent=1, ensure_ascii=False)
        for split, spk in by_split.items():
            total = minutes[lang] * 60 if split == "train" else eval_minutes * 60
            for s in spk:
                units.append(_Unit(lang, split, s, total / len(spk), seed, str(lang_dir / "clips")))
    voice_names = sorted({u.speaker.voice for u in units})

    results: Dict[int, List[Clip]] = {}
    order = sorted(range(len(units)), key=lambda i: -units[i].seconds)  # longest first
    bar = _progress(len(units), progress)
    # One fresh worker process per unit (maxtasksperchild=1): espeak-ng keeps synthesis
    # state in process globals that Initialize does not reset, so a clip would otherwise
    # depend on which units its worker happened to speak before. Fresh processes make
    # the corpus the same for the same seed, whatever --jobs is. Costs ~10 ms per unit.
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ctx.Pool(max(1, num_jobs), maxtasksperchild=1) as pool:
        _raise_missing(pool.apply(_missing_voices, (voice_names,)))
        ordered = [units[i] for i in order]
        for i, clips in zip(order, pool.imap(_run_unit, ordered)):
            results[i] = clips
            bar.update(1)
    bar.close()

    result = SynthesisResult(out_dir)
    for lang, by_split in plan.items():
        lang_dir = out_dir / lang
        split_clips = {split: [] for split in SPLITS}
        for i, unit in enumerate(units):
            if unit.lang == lang:
                split_clips[unit.split].extend(results[i])
        split_clips[FINETUNE_SPLIT] = _finetune_subset(split_clips["train"], finetune_minutes * 60)
        for split, clips in split_clips.items():
            _write_tsv(lang_dir / f"{split}.tsv", lang, clips)
        for split in SPLITS:
            alignments.write_alignments(alignments.alignment_path(out_dir, lang, split),
                                        [(c.path, c.segments) for c in split_clips[split]])
        _write_tsv(lang_dir / "validated.tsv", lang,
                   [c for s in SPLITS for c in split_clips[s]])
        for name in ("invalidated", "other"):
            _write_tsv(lang_dir / f"{name}.tsv", lang, [])
        _write_speakers(lang_dir / "speakers.tsv", by_split)
        all_clips = [c for s in SPLITS for c in split_clips[s]]
        ft_seconds = sum(c.seconds for c in split_clips[FINETUNE_SPLIT])
        result.languages[lang] = LanguageResult(
            lang=lang,
            source=sentences.source_name(lang),
            speakers={s: len(by_split[s]) for s in SPLITS},
            clips={s: len(c) for s, c in split_clips.items()},
            minutes={s: sum(x.seconds for x in c) / 60 for s, c in split_clips.items()},
            written=sum(c.written for c in all_clips),
            skipped_existing=sum(not c.written for c in all_clips),
            finetune_capped=ft_seconds < finetune_minutes * 60,
        )
    result.seconds_elapsed = time.time() - start
    return result


def _raise_missing(missing: Sequence[str]) -> None:
    if missing:
        raise RuntimeError(
            f"espeak-ng voices not found in espeakng_loader's data: {', '.join(missing)} "
            "(fix xlsr_demo.voices.VOICES / VARIANTS)"
        )


def _write_speakers(path: Path, by_split: Mapping[str, Sequence[voices.Speaker]]) -> None:
    cols = ("client_id", "split", "voice", "gender", "rate", "pitch", "pitch_range", "volume")
    with atomic_write(path) as f:
        f.write("\t".join(cols) + "\n")
        for split, spk in by_split.items():
            for s in spk:
                row = dict(s.as_dict(), split=split)
                f.write("\t".join(str(row[c]) for c in cols) + "\n")


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="synthesize (speaker units)", unit="unit", disable=not enabled)


def parse_minutes(spec: str) -> Dict[str, float]:
    """``"ky:0.5,tt:0.5"`` -> ``{"ky": 0.5, "tt": 0.5}``."""
    table = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        lang, sep, value = item.partition(":")
        try:
            table[lang.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--low-resource item {item!r} is not LANG:MINUTES (e.g. ky:0.5)"
            ) from None
        if not sep:
            raise argparse.ArgumentTypeError(f"--low-resource item {item!r} is not LANG:MINUTES")
    return table


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xlsr-synth",
        description="Synthesize a CommonVoice-shaped multilingual read-speech corpus with "
        "espeak-ng (the toy XLSR-10 data set).",
    )
    p.add_argument("--out", required=True, help="release folder to write (<out>/<lang>/...)")
    p.add_argument("--languages", default=",".join(DEFAULT_LANGUAGES),
                   help="comma-separated language codes (default: the XLSR-10 set plus en)")
    p.add_argument("--minutes", type=float, default=3.0,
                   help="minutes of train (pre-training) audio per language")
    p.add_argument("--low-resource", type=parse_minutes, default=None,
                   help="LANG:MINUTES overrides of --minutes for low-resource languages; "
                   "'' for none (default: "
                   + ",".join(f"{k}:{v}" for k, v in DEFAULT_LOW_RESOURCE.items()) + ")")
    p.add_argument("--eval-minutes", type=float, default=0.5,
                   help="minutes of audio in each of dev and test, every language")
    p.add_argument("--finetune-minutes", type=float, default=0.5,
                   help="minutes in train-1h (the fine-tuning '1 h' analogue), every language")
    p.add_argument("--speakers", type=int, default=4,
                   help="speakers per language (>= 3; max(1, n//5) each for dev and test)")
    p.add_argument("--seed", type=int, default=1, help="seed for speakers and sentences")
    p.add_argument("--jobs", type=int, default=2, help="worker processes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    languages = [x.strip() for x in args.languages.split(",") if x.strip()]
    low = DEFAULT_LOW_RESOURCE if args.low_resource is None else args.low_resource
    unknown = sorted(set(low) - set(languages))
    if unknown and args.low_resource is not None:
        print(f"xlsr-synth: --low-resource names languages not in --languages: "
              f"{', '.join(unknown)} (ignored)", file=sys.stderr)
    minutes = {lang: low.get(lang, args.minutes) for lang in languages}
    try:
        result = synthesize_corpus(
            args.out, languages, minutes, speakers_per_language=args.speakers, seed=args.seed,
            num_jobs=args.jobs, eval_minutes=args.eval_minutes,
            finetune_minutes=args.finetune_minutes, progress=not args.no_progress,
        )
    except (ValueError, RuntimeError) as e:
        print(f"xlsr-synth: error: {e}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
