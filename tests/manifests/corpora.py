"""Tiny corpora in the release layouts, and the CLI, for the manifest tests."""

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from manifests import formats
from manifests.cli import main


SR = 16_000


CLI = str(Path(sys.executable).parent / "xlsr-manifest")


def tone(seconds, rate, freq=300.0):
    t = np.arange(int(round(seconds * rate))) / rate
    return (0.2 * np.sin(2 * np.pi * freq * t)).astype("float32")


def run_cli(*argv):
    assert main([str(a) for a in argv]) == 0


def read_rejects(path):
    lines = formats.read_lines(path)
    assert lines[0] == "key\tsource\treason\tdetail"
    return [line.split("\t") for line in lines[1:]]


def make_commonvoice(root: Path):
    """es: 4 good clips + missing, corrupt, empty, too short, empty sentence, non-UTF-8 line."""
    es = root / "es" / "clips"
    es.mkdir(parents=True)
    good = {"a": ("¡Hola, Mundo!", 1.0), "b": ("¿Qué tal?", 1.5), "c": ("adiós amigo", 0.75),
            "d": ("Buenos días", 2.0)}
    rows = ["client_id\tpath\tsentence\tup_votes"]
    for i, (k, (text, sec)) in enumerate(good.items()):
        sf.write(es / f"cv_es_{k}.mp3", tone(sec, 48_000), 48_000, format="MP3")
        rows.append(f"spk{i % 2}\tcv_es_{k}.mp3\t{text}\t2")
    (es / "cv_es_corrupt.mp3").write_bytes(b"\x00garbage" * 50)
    (es / "cv_es_empty.mp3").write_bytes(b"")
    sf.write(es / "cv_es_short.mp3", tone(0.03, 48_000), 48_000, format="MP3")
    sf.write(es / "cv_es_blank.mp3", tone(1.0, 48_000), 48_000, format="MP3")
    rows += ["spk9\tcv_es_missing.mp3\thola", "spk9\tcv_es_corrupt.mp3\thola",
             "spk9\tcv_es_empty.mp3\thola", "spk9\tcv_es_short.mp3\thola",
             "spk9\tcv_es_blank.mp3\t¿?", "spk9\tcv_es_x.mp3\t7 gatos"]
    text = ("\n".join(rows) + "\n").encode() + b"spk9\tcv_es_latin.mp3\tpap\xe1\n"
    (root / "es" / "train.tsv").write_bytes(text)
    fr = root / "fr" / "clips"
    fr.mkdir(parents=True)
    sf.write(fr / "cv_fr_a.mp3", tone(1.25, 44_100), 44_100, format="MP3")
    (root / "fr" / "train.tsv").write_text(
        "client_id\tpath\tsentence\nu1\tcv_fr_a.mp3\tL’ami « fidèle ».\n", encoding="utf-8")
    return good
