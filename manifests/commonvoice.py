"""Mozilla CommonVoice -> fairseq manifests (XLSR's CommonVoice experiments, section 4.1).

The clips are 48 kHz (or 32/44.1 kHz) MP3; fairseq needs 16 kHz, so every listed clip is
decoded with soundfile (libsndfile reads MP3, no ffmpeg needed), resampled and written as
16 kHz FLAC below ``<output_dir>/audio/<lang>/``. Already converted clips are reused, so
an interrupted run is resumed by running the same command again.

The paper's phoneme-recognition splits (from Rivière et al. 2020) are lists of clip ids
per split; pass them as ``split_lists={"train": ".../{lang}/train.txt", ...}``: the
utterances are then taken from ``validated.tsv`` and restricted to the listed ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from . import layout
from .audio import AudioSettings, Reject
from .pipeline import PrepareResult, Utterance, build_subset, finish
from .text import read_text_lines

DEFAULT_SPLITS = ("train", "dev", "test")
AUDIO_DIR = "audio"


def read_cv_tsv(path: Path) -> Tuple[List[Dict[str, str]], List[Reject]]:
    """Rows of a CommonVoice ``<split>.tsv`` (by header name) and the lines it cannot use."""
    rows, rejects = [], []
    lines = read_text_lines(path)
    _, header = next(lines, (0, None))
    if not header:
        raise ValueError(f"{path}: empty or non-UTF-8 header; expected client_id, path, sentence")
    cols = header.split("\t")
    missing = {"path", "sentence"} - set(cols)
    if missing:
        raise ValueError(f"{path}:1: missing column(s) {sorted(missing)}; found {cols}")
    for lineno, line in lines:
        where = f"{path.name}:{lineno}"
        if line is None:
            rejects.append(Reject(where, str(path), "bad transcript", "line is not valid UTF-8"))
            continue
        if not line.strip():
            continue
        fields = line.split("\t")
        row = dict(zip(cols, fields))
        if not row.get("path"):
            rejects.append(Reject(where, str(path), "bad transcript", "no clip path on line"))
            continue
        rows.append(row)
    return rows, rejects


def clip_id(name: str) -> str:
    """``common_voice_es_1.mp3`` -> ``common_voice_es_1`` (ids in split lists may omit .mp3)."""
    name = Path(name.strip()).name
    for ext in (".mp3", ".wav", ".flac"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def _read_id_list(path: Path) -> List[str]:
    with open(path, encoding="utf-8") as f:
        return [clip_id(line.split()[0]) for line in f if line.strip()]


def _utterances(lang_dir: Path, lang: str, rows: Sequence[Dict[str, str]]) -> List[Utterance]:
    return [
        Utterance(
            key=clip_id(row["path"]),
            source=str(lang_dir / "clips" / row["path"]),
            rel=f"{lang}/{clip_id(row['path'])}.flac",
            text=row.get("sentence", ""),
            speaker=row.get("client_id") or None,
        )
        for row in rows
    ]


def prepare_commonvoice(
    corpus_dir,
    output_dir,
    languages: Optional[Sequence[str]] = None,
    num_jobs: int = 1,
    *,
    splits: Sequence[str] = DEFAULT_SPLITS,
    split_lists: Optional[Mapping[str, str]] = None,
    settings: AudioSettings = AudioSettings(),
    oov: str = "reject",
) -> PrepareResult:
    """Build ``<split>_<lang>.{tsv,wrd,ltr,spk}`` and ``dict.ltr*.txt`` from a CommonVoice release.

    Expected input (one folder per language, as the release unpacks)::

        corpus_dir/
          es/
            clips/common_voice_es_18306543.mp3 ...
            train.tsv  dev.tsv  test.tsv  validated.tsv   (client_id, path, sentence, ...)
          fr/ ...

    Output::

        output_dir/
          audio/es/common_voice_es_18306543.flac     (16 kHz mono FLAC; root of the tsv)
          train_es.tsv  train_es.wrd  train_es.ltr  train_es.spk  [train_es.rejects.tsv]
          dict.ltr.es.txt  dict.ltr.txt

    ``split_lists`` maps a split name to an id-list path that may contain ``{lang}``;
    when given, utterances come from ``validated.tsv`` and ``splits`` is ignored.
    """
    corpus_dir, output_dir = Path(corpus_dir), Path(output_dir)
    if languages is None:
        languages = sorted(p.name for p in corpus_dir.iterdir() if (p / "clips").is_dir())
    if not languages:
        raise ValueError(f"{corpus_dir}: no <lang>/clips folders; is this a CommonVoice release?")
    out_root = (output_dir / AUDIO_DIR).resolve()
    result = PrepareResult(output_dir)
    plan = []  # validate everything before the long conversion starts
    for lang in languages:
        layout.check_language(lang)
        lang_dir = corpus_dir / lang
        if not (lang_dir / "clips").is_dir():
            raise ValueError(f"{lang_dir}/clips not found (languages present: "
                             f"{sorted(p.name for p in corpus_dir.iterdir() if p.is_dir())})")
        if split_lists:
            rows, bad = read_cv_tsv(lang_dir / "validated.tsv")
            by_id = {clip_id(r["path"]): r for r in rows}
            for split, template in split_lists.items():
                ids = _read_id_list(Path(template.format(lang=lang)))
                chosen = [by_id.get(i) or {"path": i + ".mp3", "sentence": None} for i in ids]
                unlisted = [
                    Reject(i, str(lang_dir / "validated.tsv"), "missing audio",
                           "id in split list but not in validated.tsv")
                    for i in ids if i not in by_id
                ]
                chosen = [c for c in chosen if c["sentence"] is not None]
                plan.append((lang, layout.check_split(split), chosen, bad + unlisted))
        else:
            for split in splits:
                path = lang_dir / f"{split}.tsv"
                if not path.is_file():
                    raise ValueError(f"{path} not found; choose --splits among "
                                     f"{sorted(p.stem for p in lang_dir.glob('*.tsv'))}")
                rows, bad = read_cv_tsv(path)
                plan.append((lang, layout.check_split(split), rows, bad))
    for lang, split, rows, bad in plan:
        utts = _utterances(corpus_dir / lang, lang, rows)
        result.subsets.append(
            build_subset(output_dir, split, lang, utts, str(out_root), pre_rejects=bad,
                         convert=True, settings=settings, num_jobs=num_jobs, oov=oov)
        )
    return finish(result)
