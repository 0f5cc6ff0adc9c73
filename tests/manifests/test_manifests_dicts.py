"""Label dictionaries a fine-tuned model can rely on: counted on training splits, and
never reordered by a builder's re-run (a CTC output layer is indexed by the order)."""

from pathlib import Path

from manifests import formats, layout
from manifests.cli import main
from manifests.pipeline import rebuild_dicts
from test_manifests_phonemize import write_subset


def write_labels(data: Path, split: str, lang: str, lines) -> None:
    formats.write_lines(layout.label_path(data, split, lang, "phn"), lines)


def entries(path: Path):
    return [tuple(line.split()) for line in path.read_text("utf-8").splitlines()]


def test_counts_come_from_training_splits(tmp_path):
    write_labels(tmp_path, "train", "es", ["a b b", "c"])
    write_labels(tmp_path, "train-1h", "es", ["b"])  # a training split too
    write_labels(tmp_path, "dev", "es", ["a d d d d"])
    write_labels(tmp_path, "test", "es", ["e e e e e e"])
    written = rebuild_dicts(tmp_path, "phn")
    assert written == [layout.dict_path(tmp_path, "phn", "es"), layout.dict_path(tmp_path, "phn")]
    # evaluation-only symbols stay in the dictionary (their labels must load), counted 0
    expected = [("b", "3"), ("a", "1"), ("c", "1"), ("d", "0"), ("e", "0")]
    assert entries(written[0]) == expected and entries(written[1]) == expected


def test_a_rerun_appends_and_never_reorders(tmp_path):
    write_labels(tmp_path, "train", "es", ["a a a b", "c"])
    rebuild_dicts(tmp_path, "phn")
    joint = layout.dict_path(tmp_path, "phn")
    assert entries(joint) == [("a", "3"), ("b", "1"), ("c", "1")]

    # es relabelled (c now most frequent, a gone, x new) and a second language added
    write_labels(tmp_path, "train", "es", ["c c c c b x"])
    write_labels(tmp_path, "train", "fr", ["y y z a"])
    rebuild_dicts(tmp_path, "phn")
    assert entries(layout.dict_path(tmp_path, "phn", "es")) == [("a", "0"), ("b", "1"), ("c", "4"), ("x", "1")]
    assert entries(joint) == [("a", "1"), ("b", "1"), ("c", "4"), ("y", "2"), ("x", "1"), ("z", "1")]
    assert entries(layout.dict_path(tmp_path, "phn", "fr")) == [("y", "2"), ("a", "1"), ("z", "1")]

    before = {p: p.read_bytes() for p in tmp_path.glob("dict.*")}
    rebuild_dicts(tmp_path, "phn")  # nothing changed: nothing moves
    assert {p: p.read_bytes() for p in tmp_path.glob("dict.*")} == before

    joint.unlink()  # starting afresh is deleting the file: sorted by frequency again
    rebuild_dicts(tmp_path, "phn")
    assert [s for s, _ in entries(joint)] == ["c", "y", "a", "b", "x", "z"]


def test_phonemize_rerun_with_another_language_keeps_the_order(tmp_path, capsys):
    """xlsr-manifest phonemize rebuilds dict.phn (and dict.ltr) through rebuild_dicts."""
    data = tmp_path / "data"
    write_subset(data, "train", "es", ["hola", "la mano"])
    assert main(["phonemize", str(data), "--languages", "es", "--num-jobs", "1"]) == 0
    first = {kind: entries(layout.dict_path(data, kind)) for kind in ("phn", "ltr")}
    write_subset(data, "train", "it", ["mamma mia", "mia mamma mia"])  # a, m frequent in it
    assert main(["phonemize", str(data), "--languages", "es", "it", "--num-jobs", "1"]) == 0
    for kind, old in first.items():
        now = [s for s, _ in entries(layout.dict_path(data, kind))]
        assert now[: len(old)] == [s for s, _ in old], kind
    capsys.readouterr()
