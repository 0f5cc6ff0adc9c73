"""The synthetic CommonVoice corpus (xlsr-synth): audio, tsv layout, speakers, resumption."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from xlsr_demo import alignments, sentences, synth, voices

LANGS = ("es", "ky")  # one wordfreq language, one generated one
ARGS = ["--languages", ",".join(LANGS), "--minutes", "0.12", "--low-resource", "ky:0.06",
        "--eval-minutes", "0.05", "--finetune-minutes", "0.05", "--speakers", "3",
        "--seed", "7", "--no-progress"]


def _script(name):
    return str(Path(sys.executable).with_name(name))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("cv") / "release"
    proc = subprocess.run([_script("xlsr-synth"), "--out", str(out), "--jobs", "2", *ARGS],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def _rows(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def test_layout_and_tsv_columns(corpus):
    out, stdout = corpus
    for lang in LANGS:
        assert lang in stdout
        for name in ("train", "dev", "test", "validated", "train-1h", "invalidated", "other"):
            path = out / lang / f"{name}.tsv"
            header = path.read_text(encoding="utf-8").splitlines()[0].split("\t")
            assert header == list(synth.CV_COLUMNS), path
        rows = {s: _rows(out / lang / f"{s}.tsv") for s in ("train", "dev", "test", "validated",
                                                             "train-1h", "other")}
        assert rows["other"] == []
        for split in ("train", "dev", "test"):
            assert rows[split], f"{lang} {split} is empty"
            for r in rows[split]:
                assert (out / lang / "clips" / r["path"]).is_file()
                assert r["locale"] == lang and r["gender"] in ("male", "female")
                assert len(r["client_id"]) == 128 and 3 <= len(r["sentence"].split()) <= 8
        # validated = train + dev + test; train-1h is part of train
        paths = lambda s: {r["path"] for r in rows[s]}  # noqa: E731
        assert paths("validated") == paths("train") | paths("dev") | paths("test")
        assert paths("train-1h") <= paths("train")
        # speakers disjoint between splits
        spk = {s: {r["client_id"] for r in rows[s]} for s in ("train", "dev", "test")}
        assert not (spk["train"] & spk["dev"] or spk["train"] & spk["test"] or spk["dev"] & spk["test"])
        assert len(spk["train"]) == 1 and len(spk["dev"]) == 1  # 3 speakers: 1/1/1


def test_audio_is_16k_mono_and_speech(corpus):
    out, _ = corpus
    for lang in LANGS:
        for r in _rows(out / lang / "validated.tsv"):
            audio, sr = sf.read(out / lang / "clips" / r["path"], dtype="float32")
            assert sr == 16000 and audio.ndim == 1
            assert 0.5 < len(audio) / sr < 15
            assert np.sqrt(np.mean(audio**2)) > 0.01  # not silent
            assert np.abs(audio).max() <= 1.0
    # the low-resource language got less train audio than the other
    train = {lang: sum(sf.info(out / lang / "clips" / r["path"]).duration
                       for r in _rows(out / lang / "train.tsv")) for lang in LANGS}
    assert train["ky"] < train["es"] * 0.75
    assert 0.06 * 60 <= train["ky"] < 0.06 * 60 + 10


def test_rerun_skips_existing_clips_and_is_reproducible(corpus, tmp_path, capsys):
    out, _ = corpus
    before = {p: p.read_bytes() for p in out.glob("*/*.tsv")}
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("*/clips/*.mp3")}
    assert synth.main(["--out", str(out), "--jobs", "1", *ARGS]) == 0
    assert {p: p.read_bytes() for p in out.glob("*/*.tsv")} == before
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/clips/*.mp3")} == mtimes
    summary = capsys.readouterr().out
    es_line = next(line for line in summary.splitlines() if line.startswith("es "))
    assert es_line.split()[-2] == "0"  # written
    # another seed in the same folder is refused before anything is written
    other = [a if a != "7" else "8" for a in ARGS]
    assert synth.main(["--out", str(out), "--jobs", "1", *other]) == 1
    assert "other settings" in capsys.readouterr().err


def test_same_seed_same_audio_whatever_the_job_count(corpus, tmp_path):
    """espeak-ng keeps state between sentences; each speaker's clips come from a fresh
    process, so the corpus depends on the seed only (the fixture ran with --jobs 2)."""
    out, _ = corpus
    again = tmp_path / "again"
    assert synth.main(["--out", str(again), "--jobs", "1", *ARGS]) == 0
    clips = sorted(p.relative_to(out) for p in out.glob("*/clips/*.mp3"))
    assert clips == sorted(p.relative_to(again) for p in again.glob("*/clips/*.mp3"))
    differ = [c for c in clips if (out / c).read_bytes() != (again / c).read_bytes()]
    assert not differ, f"{len(differ)} of {len(clips)} clips differ, e.g. {differ[0]}"
    aligned = sorted(p.relative_to(out) for p in out.glob("*/alignments/*.tsv"))
    assert len(aligned) == 3 * len(LANGS)
    assert all((out / a).read_bytes() == (again / a).read_bytes() for a in aligned)


def test_speaker_settings_change_duration_and_spectrum():
    engine = voices.Espeak()
    speakers = voices.make_speakers("es", 4, seed=3)
    assert len({s.rate for s in speakers}) == 4
    text = "El gato come pescado en la cocina todos los días."
    by_rate = sorted(speakers, key=lambda s: s.rate)
    lengths = [len(engine.speak(text, s)) for s in by_rate]
    assert lengths == sorted(lengths, reverse=True) and lengths[0] > 1.2 * lengths[-1]
    # same rate, different pitch -> different audio
    a, b = by_rate[0], by_rate[0].__class__(**{**by_rate[0].as_dict(), "pitch": 10})
    assert not np.array_equal(engine.speak(text, a), engine.speak(text, b))
    raw = engine.speak(text, a)
    y = voices.resample(raw, engine.sample_rate, 16000)
    assert engine.sample_rate == 22050 and abs(len(y) - len(raw) * 16000 / 22050) <= 1
    assert y.dtype == np.float32 and 0.05 < np.abs(y).max() <= 1.0


def test_every_language_has_voices_and_reproducible_sentences():
    engine = voices.Espeak()
    for lang in synth.DEFAULT_LANGUAGES:
        for s in voices.make_speakers(lang, 6, seed=1):
            assert engine.has_voice(s.voice), s.voice
        one = sentences.sentences(lang, seed=1, count=5)
        assert one == sentences.sentences(lang, seed=1, count=5)
        assert one != sentences.sentences(lang, seed=2, count=5)
    assert not engine.has_voice("es+nosuchvariant") and not engine.has_voice("xx")
    # wordfreq answers Russian for Kyrgyz/Tatar: those must be generated instead
    assert not sentences.wordfreq_covers("ky") and not sentences.wordfreq_covers("tt")
    assert sentences.wordfreq_covers("zh") and sentences.wordfreq_covers("es")
    ky = "".join(sentences.sentences("ky", seed=1, count=20)).lower()
    assert set(ky) <= set("абгдежзийклмнңоөпрстуүфхчшыэ .")
    assert {"ң", "ө", "ү"} <= set(ky)  # Kyrgyz-only letters do occur
    assert " " not in sentences.sentences("zh", seed=1, count=1)[0]


def test_bad_arguments_fail_early(tmp_path, capsys):
    assert synth.main(["--out", str(tmp_path / "x"), "--languages", "es,xx", "--no-progress"]) == 1
    assert "'xx'" in capsys.readouterr().err and not (tmp_path / "x" / "es").exists()
    with pytest.raises(SystemExit):
        synth.main(["--out", str(tmp_path / "x"), "--low-resource", "ky0.5"])
    with pytest.raises(ValueError, match="at least 3 speakers"):
        synth.synthesize_corpus(tmp_path / "y", ["es"], 0.1, speakers_per_language=2)
    with pytest.raises(ValueError, match="no entry for ky"):
        synth.synthesize_corpus(tmp_path / "y", ["es", "ky"], {"es": 1.0})


def _onset(audio, sr, fraction=0.05):
    """Seconds to the first 5 ms stretch whose RMS reaches ``fraction`` of the clip's loudest."""
    rms = np.sqrt(np.convolve(audio.astype(np.float64) ** 2, np.ones(sr // 200) / (sr // 200), "same"))
    return int(np.argmax(rms >= fraction * rms.max())) / sr


def test_alignments_cover_every_clip_and_match_the_audio(corpus):
    """espeak-ng's phoneme events become back-to-back segments over each clip, and the first
    phone starts where the speech does (within one 20 ms frame of the energy onset)."""
    out, _ = corpus
    for lang in LANGS:
        for split in ("train", "dev", "test"):
            table = alignments.read_alignments(alignments.alignment_path(out, lang, split))
            rows = _rows(out / lang / f"{split}.tsv")
            assert set(table) == {alignments.clip_key(r["path"]) for r in rows}
            for r in rows:
                segments = table[alignments.clip_key(r["path"])]
                audio, sr = sf.read(out / lang / "clips" / r["path"], dtype="float32")
                assert segments[0][0] == 0.0 and segments[-1][1] == pytest.approx(len(audio) / sr, abs=1e-3)
                assert all(a[1] == b[0] for a, b in zip(segments, segments[1:]))  # back to back
                phones = [p for _, _, p in segments if p != alignments.SILENCE]
                assert len(phones) >= len(r["sentence"].split()) * 2, (r["sentence"], phones)
                assert not any(c in p for p in phones for c in alignments.STRESS)
                first = next(s for s, _, p in segments if p != alignments.SILENCE)
                assert abs(first - _onset(audio, sr)) <= 0.02, (r["path"], first, _onset(audio, sr))


def _speak_three(events):
    engine = voices.Espeak(phoneme_events=events)
    speaker = voices.make_speakers("ky", 3, seed=5)[0]
    texts = sentences.sentences("ky", seed=5, count=3)
    return [engine.speak(t, speaker, seed=i) for i, t in enumerate(texts)], engine.events


def test_phoneme_events_leave_the_samples_bit_identical():
    """The corpus must not change when espeak-ng reports phonemes: the same sentences spoken
    in two fresh processes (espeak-ng's state is per process), events on and off."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    results = []
    for events in (True, False):
        with ctx.Pool(1, maxtasksperchild=1) as pool:
            results.append(pool.apply(_speak_three, (events,)))
    (on, on_events), (off, off_events) = results
    assert all(np.array_equal(a, b) for a, b in zip(on, off)) and len(on) == 3
    phonemes = lambda evs: [e for e in evs if e.kind == alignments.EVENT_PHONEME]  # noqa: E731
    assert len(phonemes(on_events)) > 10 and phonemes(off_events) == []
