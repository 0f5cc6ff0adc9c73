"""``xlsr-manifest lhotse``: a lhotse manifest written here -> per-language fairseq manifests."""

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from manifests import formats, layout
from manifests.cli import main

from corpora import read_rejects, run_cli, tone

pytest.importorskip("lhotse")  # the optional extra
from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet  # noqa: E402

from manifests.from_lhotse import language_code, split_from_name  # noqa: E402


def make_corpus(root: Path, name="corpus_cuts_train.jsonl.gz", relative=False):
    """A long 8 kHz stereo recording with two supervisions, whole 16 kHz files, and the
    cases that must be rejected; returns (cut manifest, recordings, supervisions)."""
    root.mkdir(parents=True, exist_ok=True)
    long = np.stack([tone(6, 8000, 300), tone(6, 8000, 500)], axis=1)
    sf.write(root / "long.flac", long, 8000)
    sf.write(root / "w1.wav", tone(1.0, 16000, 200), 16000)
    for stem, sec in [("w2", 1.5), ("w3", 1.2), ("kl", 1.0), ("nolang", 1.0), ("gone", 1.0),
                      ("stale", 1.0)]:
        sf.write(root / f"{stem}.flac", tone(sec, 16000, 250), 16000)
    sf.write(root / "st.flac", np.stack([tone(1, 16000, 300), tone(1, 16000, 700)], 1), 16000)
    cwd = os.getcwd()
    os.chdir(root)  # lhotse stores the path as given
    try:
        recs = [Recording.from_file(p if relative else root / p) for p in
                ["long.flac", "w1.wav", "w2.flac", "w3.flac", "st.flac", "kl.flac",
                 "nolang.flac", "gone.flac", "stale.flac"]]
    finally:
        os.chdir(cwd)
    (root / "gone.flac").unlink()
    sf.write(root / "stale.flac", tone(1.0, 8000, 250), 8000)  # changed after the manifest
    S = SupervisionSegment
    sups = [
        S("long_a", "long", 0.5, 1.5, channel=0, language="English", text="Hello, World!", speaker="A"),
        S("long_b", "long", 3.0, 2.0, channel=[0, 1], language="es", text="¿Qué tal?", speaker="B"),
        S("w1", "w1", 0, 1.0, channel=0, language="fr_fr", text="L’ami fidèle", speaker="C"),
        S("w2", "w2", 0, 1.5, channel=0, language="English", text="good morning", speaker="A"),
        S("w3", "w3", 0, 1.2, channel=0, language="English", text="7 cats"),
        S("st", "st", 0, 1.0, channel=[0, 1], language="german", text="Guten Tag"),
        S("kl", "kl", 0, 1.0, channel=0, language="Klingon", text="qapla"),
        S("nolang", "nolang", 0, 1.0, channel=0, text="hello"),
        S("gone", "gone", 0, 1.0, channel=0, language="en", text="gone"),
        S("stale", "stale", 0, 1.0, channel=0, language="en", text="stale"),
    ]
    recordings, supervisions = RecordingSet.from_recordings(recs), SupervisionSet.from_segments(sups)
    cuts = root / name
    CutSet.from_manifests(recordings, supervisions).to_file(cuts)
    return cuts, recordings, supervisions


def entries(out, split, lang):
    man = formats.read_manifest(layout.manifest_path(out, split, lang))
    return [(os.path.join(man.root, rel), n) for rel, n in man.entries]


def test_lhotse_cuts_segments_languages_labels(tmp_path, capsys):
    cuts, _, _ = make_corpus(tmp_path / "corpus")
    out = tmp_path / "out"
    run_cli("lhotse", cuts, out, "--num-jobs", "2")
    summary = capsys.readouterr().out
    assert "9 cut(s) from 1 lhotse manifest(s)" in summary
    assert "2 rejected without a language (unknown language 1, no language 1) -> train.rejects.tsv" in summary

    # every entry: a 16 kHz file with exactly the samples the manifest lists
    files = {}
    for lang in ("de", "en", "es", "fr"):
        for path, n in entries(out, "train", lang):
            info = sf.info(path)
            assert (info.samplerate, info.channels, info.frames) == (16000, 1, n), path
            files[Path(path).stem] = path
        assert formats.verified_rate(layout.manifest_path(out, "train", lang)) == 16000
    assert sorted(files) == ["long_a", "long_b", "st", "w1", "w2"]
    # whole 16 kHz mono files are listed in place; the rest converted below out/audio/<lang>
    assert files["w1"] == str(tmp_path / "corpus" / "w1.wav")
    assert files["w2"] == str(tmp_path / "corpus" / "w2.flac")
    for stem, lang in [("long_a", "en"), ("long_b", "es"), ("st", "de")]:
        assert files[stem] == str((out / "audio" / lang / f"{stem}.flac").resolve())

    # segments: the recording's slice (channel 0 / both channels averaged), resampled 8k -> 16k
    long, _ = sf.read(tmp_path / "corpus" / "long.flac", dtype="float32")
    st, _ = sf.read(tmp_path / "corpus" / "st.flac", dtype="float32")
    for stem, expected in [("long_a", resample_poly(long[4000:16000, 0], 2, 1)),
                           ("long_b", resample_poly(long[24000:40000].mean(1), 2, 1)),
                           ("st", st.mean(1))]:
        got, _ = sf.read(files[stem], dtype="float32")
        assert len(got) == len(expected)
        assert np.abs(got - expected).max() < 5e-3, stem

    # labels, parallel to the manifests
    assert formats.read_lines(out / "train_en.wrd") == ["hello world", "good morning"]
    assert formats.read_lines(out / "train_en.ltr")[0] == "h e l l o | w o r l d |"
    assert formats.read_lines(out / "train_en.spk") == ["A", "A"]
    assert formats.read_lines(out / "train_es.wrd") == ["qué tal"]
    assert formats.read_lines(out / "train_fr.wrd") == ["l'ami fidèle"]
    assert formats.read_lines(out / "train_de.wrd") == ["guten tag"]
    assert formats.read_lines(out / "train_de.spk") == ["-"]

    # every skip is written down with its reason
    en_rej = {r[0]: r[2:] for r in read_rejects(out / "train_en.rejects.tsv")}
    assert {k: r[0] for k, r in en_rej.items()} == {
        "w3": "bad transcript", "gone": "missing audio", "stale": "wrong sample rate"}
    assert "8000 Hz, not the 16000 Hz of the lhotse manifest" in en_rej["stale"][1]
    assert {r[0]: r[2] for r in read_rejects(out / "train.rejects.tsv")} == {
        "kl": "unknown language", "nolang": "no language"}

    # dictionaries: what the label files hold, per language and joint
    joint = Counter()
    for lang in ("de", "en", "es", "fr"):
        counts = formats.count_symbols(formats.read_lines(out / f"train_{lang}.ltr"))
        joint += counts
        assert set(formats.read_dict_symbols(layout.dict_path(out, "ltr", lang))) == set(counts)
    dict_lines = formats.read_lines(layout.dict_path(out, "ltr"))
    assert {line.split()[0]: int(line.split()[1]) for line in dict_lines} == dict(joint)

    # the rest of the pipeline reads the folder: stats, and a balanced mix over mixed roots
    run_cli("stats", out)
    table = capsys.readouterr().out
    assert all(f"{lang:<8} train" in table for lang in ("de", "en", "es", "fr"))
    run_cli("balance", out, "--output-split", "train-mix", "--alpha", "0")
    mix = formats.read_manifest(layout.manifest_path(out, "train-mix"))
    assert mix.entries and all(os.path.isfile(os.path.join(mix.root, rel)) for rel, _ in mix.entries)
    assert len(formats.read_lines(out / "train-mix.ltr")) == len(mix)

    # a second run reuses the converted pieces and writes the same files
    before = {p.name: p.read_bytes() for p in out.glob("train_*")}
    run_cli("lhotse", cuts, out)
    assert "0 converted, 3 reused" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in out.glob("train_*")} == before


def test_lhotse_recordings_supervisions_split_and_order(tmp_path, capsys):
    cuts, recordings, supervisions = make_corpus(tmp_path / "corpus")
    rec_path = tmp_path / "corpus" / "cv-xx_recordings_validation.jsonl.gz"
    sup_path = tmp_path / "corpus" / "cv-xx_supervisions_validation.jsonl.gz"
    recordings.to_file(rec_path)
    supervisions.to_file(sup_path)
    run_cli("lhotse", tmp_path / "out", "--recordings", rec_path, "--supervisions", sup_path)
    run_cli("lhotse", cuts, tmp_path / "ref", "--split", "dev")  # the cuts give the same
    for lang in ("de", "en", "es", "fr"):  # "validation" in the name -> dev
        got, ref = [[(p.replace(str(tmp_path / d), "OUT"), n) for p, n in entries(tmp_path / d, "dev", lang)]
                    for d in ("out", "ref")]
        assert got == ref and got
        for kind in ("wrd", "spk"):
            name = f"dev_{lang}.{kind}"
            assert (tmp_path / "out" / name).read_text() == (tmp_path / "ref" / name).read_text()

    # supervisions out of the recordings' order would lose supervisions: refused, named
    sups = list(supervisions)
    sups[2], sups[3] = sups[3], sups[2]  # w2 before w1
    SupervisionSet.from_segments(sups).to_file(sup_path)
    capsys.readouterr()
    assert main(["lhotse", str(tmp_path / "bad"), "--recordings", str(rec_path),
                 "--supervisions", str(sup_path)]) == 2
    err = capsys.readouterr().err
    assert "7 supervision(s), the first 'w1' of recording 'w1', are not in the order of" in err
    assert "lhotse cut simple --force-eager" in err
    assert not list((tmp_path / "bad").glob("*.tsv")) and not list((tmp_path / "bad").glob(".*"))


def test_lhotse_bad_input_fails_before_work(tmp_path, capsys, monkeypatch):
    cuts, recordings, _ = make_corpus(tmp_path / "corpus", relative=True)
    out = tmp_path / "out"

    def fails(*argv):
        capsys.readouterr()
        assert main(["lhotse", *map(str, argv)]) == 2
        assert not out.exists() or not list(out.iterdir())
        return capsys.readouterr().err

    not_lhotse = tmp_path / "x_cuts_train.jsonl"
    not_lhotse.write_text("id\tpath\n1\ta.wav\n")
    assert f"{not_lhotse}: not a lhotse manifest" in fails(not_lhotse, out)
    rec_path = tmp_path / "corpus" / "r_recordings_train.jsonl.gz"
    recordings.to_file(rec_path)
    assert "holds Recording items, not cuts; pass recordings" in fails(rec_path, out)
    assert "go together" in fails(out, "--recordings", rec_path)
    named = tmp_path / "corpus" / "cuts.jsonl.gz"
    os.link(cuts, named)
    assert "cannot tell the split from the file name" in fails(named, out)
    # relative paths are relative to the folder lhotse ran in
    err = fails(cuts, out)
    assert "cut 'long-0': recording file long.flac not found" in err and "--path-prefix" in err
    run_cli("lhotse", cuts, out, "--path-prefix", tmp_path / "corpus")
    assert len(entries(out, "train", "en")) == 2

    # a first cut that lacks a language, or would need converting with --no-convert
    monkeypatch.chdir(tmp_path / "corpus")
    nolang = tmp_path / "nl_cuts_train.jsonl.gz"
    CutSet.from_cuts([c for c in CutSet.from_file(cuts) if c.id.startswith("nolang")]).to_file(nolang)
    out = tmp_path / "out2"
    assert "cut 'nolang-6' has no supervision language; pass --language" in fails(nolang, out)
    run_cli("lhotse", nolang, out, "--language", "Spanish")
    assert formats.read_lines(out / "train_es.wrd") == ["hello"]
    out = tmp_path / "out3"
    assert "cut 'long-0' needs converting (2 channels) and --no-convert" in fails(cuts, out, "--no-convert")


def test_lhotse_no_audio_check_no_text_languages(tmp_path, capsys):
    """Pre-training data at scale: nothing opened, lhotse's sample counts, no labels."""
    from lhotse import AudioSource

    recs = [Recording(f"r{i}", [AudioSource("file", [0], f"/nonexistent/{i}.flac")], 16000,
                      16000 + i, (16000 + i) / 16000) for i in range(4)]
    sups = [SupervisionSegment("s0", "r0", 0, recs[0].duration, language="English"),
            SupervisionSegment("s1", "r1", 0, recs[1].duration, language="sv")]
    cuts = tmp_path / "vp_cuts_test.jsonl.gz"
    CutSet.from_manifests(RecordingSet.from_recordings(recs),
                          SupervisionSet.from_segments(sups)).to_file(cuts)
    out = tmp_path / "out"
    run_cli("lhotse", cuts, out, "--no-audio-check", "--no-text", "--language", "en",
            "--languages", "en")
    assert "1 utterance(s) left out, in languages not asked for: sv 1" in capsys.readouterr().out
    # r2, r3 have no supervision: whole cuts, language from --language
    assert entries(out, "test", "en") == [(f"/nonexistent/{i}.flac", 16000 + i) for i in (0, 2, 3)]
    assert not layout.verified_path(layout.manifest_path(out, "test", "en")).exists()
    assert not list(out.glob("*.ltr")) and not list(out.glob("*.wrd")) and not list(out.glob("dict*"))


@pytest.mark.parametrize("value, code", [
    ("English", "en"), ("english", "en"), ("eng", "en"), ("en", "en"), ("EN", "en"),
    ("en_us", "en"), ("cmn_hans_cn", "zh"), ("Mandarin", "zh"), ("zh-CN", "zh-CN"),
    ("es_419", "es"), ("ast_es", "ast"), ("Tok-Pisin", "tpi"), ("Lao", "lo"),
    ("English-US", "en"), ("Klingon", None), ("", None)])
def test_lhotse_language_codes(value, code):
    assert language_code(value) == code


def test_lhotse_split_from_name():
    assert split_from_name("cv-en_cuts_train.jsonl.gz") == "train"
    assert split_from_name("fleurs-en_us_supervisions_validation.jsonl.gz") == "dev"
    assert split_from_name("librispeech_cuts_train-clean-100.jsonl") == "train-clean-100"
    for bad in ("cuts.jsonl.gz", "mycuts_en.jsonl.gz"):
        with pytest.raises(ValueError, match="pass --split"):
            split_from_name(bad)
