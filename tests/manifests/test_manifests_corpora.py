"""xlsr-manifest builders on tiny corpora written in each release layout (through the CLI)."""

import subprocess
from pathlib import Path

import pytest
import soundfile as sf

from manifests import formats, layout
from manifests.cli import main
from corpora import CLI, SR, make_commonvoice, read_rejects, run_cli, tone


def test_commonvoice_formats_counts_rejects(tmp_path):
    good = make_commonvoice(tmp_path / "cv")
    out = tmp_path / "out"
    run_cli("commonvoice", tmp_path / "cv", out, "--splits", "train", "--num-jobs", "1")

    man = formats.read_manifest(layout.manifest_path(out, "train", "es"))
    assert man.root == str((out / "audio").resolve())
    assert [rel for rel, _ in man.entries] == [f"es/cv_es_{k}.flac" for k in good]
    for (rel, n), (text, sec) in zip(man.entries, good.values()):
        info = sf.info(Path(man.root, rel))
        assert (info.samplerate, info.channels, info.format) == (SR, 1, "FLAC")
        assert n == info.frames == round(sec * SR)  # count = audio actually written
    raw = layout.manifest_path(out, "train", "es").read_bytes()
    assert raw.startswith(man.root.encode() + b"\nes/cv_es_a.flac\t16000\n")
    assert layout.label_path(out, "train", "es", "wrd").read_text("utf-8") == (
        "hola mundo\nqué tal\nadiós amigo\nbuenos días\n")
    ltr = layout.label_path(out, "train", "es", "ltr").read_text("utf-8").splitlines()
    assert ltr[0] == "h o l a | m u n d o |"
    assert layout.label_path(out, "train", "es", "spk").read_text().split() == [
        "spk0", "spk1", "spk0", "spk1"]

    reasons = {r[0]: r[2] for r in read_rejects(layout.rejects_path(out, "train", "es"))}
    assert reasons == {
        "cv_es_missing": "missing audio", "cv_es_corrupt": "unreadable audio",
        "cv_es_empty": "empty audio", "cv_es_short": "too short",
        "cv_es_blank": "bad transcript", "cv_es_x": "bad transcript",  # digit: not a letter
        "train.tsv:12": "bad transcript",  # the non-UTF-8 line, named by file:line
    }
    # French: apostrophe kept inside the word, guillemets removed, 44.1 kHz resampled
    assert layout.label_path(out, "train", "fr", "wrd").read_text("utf-8") == "l'ami fidèle\n"
    fr = formats.read_manifest(layout.manifest_path(out, "train", "fr"))
    assert fr.entries == [("fr/cv_fr_a.flac", 20_000)]
    # dictionaries: per language and joint, fairseq's "symbol count" sorted by count
    es_dict = dict(l.split() for l in layout.dict_path(out, "ltr", "es").read_text("utf-8").splitlines())
    assert es_dict["|"] == "8" and es_dict["o"] == "4" and es_dict["ó"] == "1"
    joint = layout.dict_path(out, "ltr").read_text("utf-8").splitlines()
    assert joint[0] == "| 10" and "' 1" in joint and "é 1" in joint
    counts = [int(l.split()[1]) for l in joint]
    assert counts == sorted(counts, reverse=True)


def test_commonvoice_summary_counts_every_reject(tmp_path, capsys):
    make_commonvoice(tmp_path / "cv")
    run_cli("commonvoice", tmp_path / "cv", tmp_path / "out", "--splits", "train",
            "--languages", "es", "--num-jobs", "1")
    out = capsys.readouterr().out
    assert "train_es: 4 utterances" in out
    assert "7 rejected" in out and "bad transcript 3" in out and "unreadable audio 1" in out
    assert "empty audio 1" in out  # the 0-byte clip, named as such (libsndfile: "does not exist")
    assert "out-of-alphabet characters: '7' x1" in out


def test_commonvoice_phoneme_split_lists(tmp_path):
    make_commonvoice(tmp_path / "cv")
    (tmp_path / "cv" / "es" / "validated.tsv").write_bytes(
        (tmp_path / "cv" / "es" / "train.tsv").read_bytes())
    lists = tmp_path / "lists" / "es"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("cv_es_a\ncv_es_d.mp3\ncv_es_nowhere\n")
    (lists / "dev.txt").write_text("cv_es_b\n")
    run_cli("commonvoice", tmp_path / "cv", tmp_path / "out", "--languages", "es",
            "--split-list", f"train-phn={tmp_path}/lists/{{lang}}/train.txt",
            "--split-list", f"dev={tmp_path}/lists/{{lang}}/dev.txt", "--num-jobs", "1")
    out = tmp_path / "out"
    assert [r for r, _ in formats.read_manifest(out / "train-phn_es.tsv").entries] == [
        "es/cv_es_a.flac", "es/cv_es_d.flac"]
    assert [r for r, _ in formats.read_manifest(out / "dev_es.tsv").entries] == ["es/cv_es_b.flac"]
    rej = read_rejects(layout.rejects_path(out, "train-phn", "es"))
    assert ["cv_es_nowhere", "missing audio"] in [[r[0], r[2]] for r in rej]


def test_commonvoice_resume_after_interruption(tmp_path, monkeypatch):
    """A run killed mid-way leaves no manifest; the re-run reuses every converted clip."""
    import manifests.audio as audio

    make_commonvoice(tmp_path / "cv")
    out = tmp_path / "out"
    real, calls = audio.process_job, []

    def dies_after_two(job, settings):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(job)
        return real(job, settings)

    monkeypatch.setattr(audio, "process_job", dies_after_two)
    with pytest.raises(KeyboardInterrupt):
        main(["commonvoice", str(tmp_path / "cv"), str(out), "--languages", "es",
              "--splits", "train", "--num-jobs", "1"])
    assert not layout.manifest_path(out, "train", "es").exists()
    assert sorted(p.name for p in (out / "audio" / "es").iterdir()) == ["cv_es_a.flac", "cv_es_b.flac"]
    monkeypatch.setattr(audio, "process_job", real)

    # the re-run goes through the console script with a process pool
    proc = subprocess.run([CLI, "commonvoice", tmp_path / "cv", out, "--languages", "es",
                           "--splits", "train", "--num-jobs", "2"],
                          capture_output=True, text=True, check=True)
    assert "2 converted, 2 reused from an earlier run" in proc.stdout
    assert len(formats.read_manifest(layout.manifest_path(out, "train", "es"))) == 4
    assert not [p for p in out.rglob("*.tmp")]


def test_commonvoice_bad_layout_fails_before_work(tmp_path, capsys):
    make_commonvoice(tmp_path / "cv")
    assert main(["commonvoice", str(tmp_path / "cv"), str(tmp_path / "out"),
                 "--splits", "dev"]) == 2
    err = capsys.readouterr().err
    assert "dev.tsv not found" in err and "train" in err
    assert not (tmp_path / "out").exists()


def make_folder(root: Path):
    lens = {}
    for lang in ("de", "sw"):
        for i in range(12):
            p = root / lang / f"spk{i % 3}" / f"u{i:02d}.flac"
            p.parent.mkdir(parents=True, exist_ok=True)
            sec = 0.5 + 0.05 * i + (1.0 if lang == "de" else 0.0)
            sf.write(p, tone(sec, SR), SR)
            lens[f"{lang}/spk{i % 3}/u{i:02d}.flac"] = round(sec * SR)
            p.with_suffix(".txt").write_text(f"Wort {i}" if i == 5 else "Hallo Welt", "utf-8")
    sf.write(root / "de" / "rate8k.flac", tone(1.0, 8000), 8000)
    (root / "de" / "broken.flac").write_bytes(b"fLaC but not really")
    for name in ("rate8k", "broken"):
        (root / "de" / f"{name}.txt").write_text("Hallo Welt", "utf-8")
    (root / "sw" / "skipme").mkdir()
    sf.write(root / "sw" / "skipme" / "x.wav", tone(1.0, SR), SR)
    return lens


def test_folder_split_language_and_rejects(tmp_path):
    lens = make_folder(tmp_path / "c")
    out = tmp_path / "out"
    run_cli("folder", tmp_path / "c", out, "--lang-pattern", "^(?P<lang>[a-z]+)/",
            "--valid-percent", "0.25", "--seed", "3", "--num-jobs", "1")
    seen = {}
    for lang in ("de", "sw"):
        for split in ("train", "dev"):
            man = formats.read_manifest(layout.manifest_path(out, split, lang))
            assert man.root == str((tmp_path / "c").resolve())
            for rel, n in man.entries:
                assert rel.startswith(f"{lang}/") and rel not in seen
                seen[rel] = n
    assert seen == lens  # every good file once, header count == samples written
    rejected = []
    for split in ("train", "dev"):
        path = layout.rejects_path(out, split, "de")
        rejected += read_rejects(path) if path.exists() else []
    assert sorted((r[0], r[2]) for r in rejected) == [
        ("de/broken.flac", "unreadable audio"), ("de/rate8k.flac", "wrong sample rate")]
    # same seed, same split; fairseq's rule: random() > valid_percent -> train
    first = layout.manifest_path(out, "dev", "de").read_bytes()
    run_cli("folder", tmp_path / "c", tmp_path / "out2", "--lang-pattern", "^([a-z]+)/",
            "--valid-percent", "0.25", "--seed", "3", "--num-jobs", "1")
    assert layout.manifest_path(tmp_path / "out2", "dev", "de").read_bytes() == first


def test_folder_transcripts_convert_and_filter(tmp_path):
    make_folder(tmp_path / "c")
    out = tmp_path / "out"
    run_cli("folder", tmp_path / "c", out, "--language", "de", "--path-must-contain", "de/",
            "--valid-percent", "0", "--sidecar-ext", ".txt", "--convert", "--num-jobs", "1")
    man = formats.read_manifest(layout.manifest_path(out, "train", "de"))
    assert man.root == str((out / "audio").resolve())
    rels = [r for r, _ in man.entries]
    assert "de/de/rate8k.flac" in rels  # converted 8k -> 16k instead of rejected
    assert dict(man.entries)["de/de/rate8k.flac"] == SR
    assert not any("sw/" in r for r in rels)
    wrd = formats.read_lines(layout.label_path(out, "train", "de", "wrd"))
    assert len(wrd) == len(man) and set(wrd) == {"hallo welt"}  # "Wort 5": digit -> rejected
    reasons = sorted(r[2] for r in read_rejects(layout.rejects_path(out, "train", "de")))
    assert reasons == ["bad transcript", "unreadable audio"]  # "Wort 5", broken.flac


def make_mls(root: Path):
    rel = root / "mls_spanish"
    lens = {}
    for split, n in (("train", 8), ("dev", 2), ("test", 2)):
        lines = []
        for i in range(n):
            key = f"10{i % 2}_20{i % 3}_{i:06d}"
            spk, book, _ = key.split("_")
            p = rel / split / "audio" / spk / book / f"{key}.{'opus' if i == 1 else 'flac'}"
            p.parent.mkdir(parents=True, exist_ok=True)
            sec = 1.0 + 0.1 * i
            if i == 1:
                sf.write(p, tone(sec, SR), SR, format="OGG", subtype="OPUS")
            else:
                sf.write(p, tone(sec, SR), SR)
            lens[(split, key)] = sf.info(p).frames
            lines.append(f"{key}\tuna frase número {i}".replace(f" {i}", ""))
        (rel / split / "transcripts.txt").write_text("\n".join(lines) + "\n", "utf-8")
    lim = rel / "train" / "limited_supervision"
    for fold in range(2):
        (lim / "1hr" / str(fold)).mkdir(parents=True)
        (lim / "1hr" / str(fold) / "handles.txt").write_text(f"10{fold}_20{fold}_{fold:06d}\n")
    (lim / "9hr").mkdir()
    (lim / "9hr" / "handles.txt").write_text("100_202_000002\n101_200_000003\n")
    (root / "100h.txt").write_text("100_202_000002\n101_202_000005\n100_200_000006\n")
    return lens


def test_mls_limited_supervision_sets(tmp_path):
    lens = make_mls(tmp_path / "mls")
    out = tmp_path / "out"
    run_cli("mls", tmp_path / "mls", out, "--train-100h", tmp_path / "mls" / "100h.txt", "--num-jobs", "1")
    keys = {}
    for split in ("train-1h", "train-10h", "train-100h", "train", "dev", "test"):
        man = formats.read_manifest(layout.manifest_path(out, split, "es"))
        base = "train" if split.startswith("train") else split
        assert man.root == str((tmp_path / "mls" / "mls_spanish" / base / "audio").resolve())
        keys[split] = [Path(r).stem for r, _ in man.entries]
        for rel, n in man.entries:
            assert n == lens[(base, Path(rel).stem)]
    assert keys["train-1h"] == ["100_200_000000", "101_201_000001"]
    assert keys["train-10h"] == keys["train-1h"] + ["100_202_000002", "101_200_000003"]
    assert keys["train-100h"] == ["100_202_000002", "101_202_000005", "100_200_000006"]
    assert len(keys["train"]) == 8
    assert "101_201_000001.opus" in layout.manifest_path(out, "train", "es").read_text()
    assert layout.label_path(out, "train-1h", "es", "ltr").read_text("utf-8").splitlines()[0] == (
        "u n a | f r a s e | n ú m e r o |")


BABEL_TRN = """[0.000]
<no-speech>
[0.500]
merhaba <hes> nasılsın
[1.750]
*iyi* ~ misin kar-
[2.500]
(()) bir şey
[3.000]
"""


def make_babel(root: Path, coding="PCM_16"):
    conv = root / "tr" / "conversational"
    for folder in ("training", "dev"):
        (conv / folder / "audio").mkdir(parents=True)
        (conv / folder / "transcription").mkdir(parents=True)
        stem = f"BABEL_BP_105_{folder}_inLine"
        sf.write(conv / folder / "audio" / f"{stem}.sph", tone(3.2, 8000), 8000,
                 format="NIST", subtype=coding)
        (conv / folder / "transcription" / f"{stem}.txt").write_text(BABEL_TRN, "utf-8")
    return conv


def test_babel_segments_markup_and_resampling(tmp_path):
    make_babel(tmp_path / "babel", "ULAW")
    out = tmp_path / "out"
    run_cli("babel", tmp_path / "babel", out, "--num-jobs", "1")
    man = formats.read_manifest(layout.manifest_path(out, "train", "tr"))
    assert [n for _, n in man.entries] == [20_000, 12_000]  # 1.25 s and 0.75 s at 16 kHz
    for rel, n in man.entries:
        assert sf.info(Path(man.root, rel)).frames == n and sf.info(Path(man.root, rel)).samplerate == SR
    assert formats.read_lines(layout.label_path(out, "train", "tr", "wrd")) == [
        "merhaba nasılsın", "iyi misin"]
    reasons = sorted(r[3] for r in read_rejects(layout.rejects_path(out, "train", "tr")))
    assert reasons == ["contains (())", "no speech"]
    assert layout.manifest_path(out, "dev", "tr").is_file()


def test_babel_shorten_sphere_is_a_clear_error(tmp_path, capsys):
    conv = make_babel(tmp_path / "babel")
    sph = next((conv / "training" / "audio").glob("*.sph"))
    data = sph.read_bytes()
    head = data[:1024].rstrip(b"\0").replace(
        b"sample_coding -s3 pcm", b"sample_coding -s26 pcm,embedded-shorten-v2.00")
    sph.write_bytes(head.ljust(1024, b"\0") + data[1024:])
    assert main(["babel", str(tmp_path / "babel"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "shorten" in err and sph.name in err and "sph2pipe" in err
