"""xlsr-manifest phonemize with the real espeak-ng library shipped by espeakng-loader."""

from pathlib import Path

from manifests import formats, layout
from manifests.cli import main
from manifests.phonemize import phonemize_lines


def write_subset(data: Path, split: str, lang: str, words):
    formats.write_manifest(layout.manifest_path(data, split, lang), formats.Manifest(
        "/audio", [(f"{lang}/{i}.flac", 16000 + i) for i in range(len(words))]))
    formats.write_lines(layout.label_path(data, split, lang, "wrd"), words)
    formats.write_lines(layout.label_path(data, split, lang, "ltr"),
                        [formats.letters(w) for w in words])
    formats.write_lines(layout.label_path(data, split, lang, "spk"), ["s"] * len(words))


def test_phonemize_voices_and_word_boundaries():
    assert phonemize_lines(["hola mundo"], "es") == ["o l a m u n d o"]
    assert phonemize_lines(["hola mundo"], "es", word_boundary="|") == ["o l a | m u n d o"]
    ru = phonemize_lines(["привет мир"], "ru")[0].split()
    assert "rʲ" in ru and "|" not in ru
    # espeak-ng 1.52 reads Han characters with the cmn voice (no "Chinese letter")
    zh = phonemize_lines(["你好"], "cmn")[0]
    assert zh and "letter" not in zh and all(not c.isascii() or c.isalnum() or c in ". " for c in zh)


def test_phonemize_cli_min_phone_count(tmp_path, capsys):
    data = tmp_path / "data"
    # "xilófono" brings phones (ks, f) seen once: removed with --min-phone-count 2
    write_subset(data, "train", "es", ["hola mundo", "la mano", "xilófono", "mundo"])
    write_subset(data, "dev", "es", ["hola"])
    write_subset(data, "train", "fr", ["bonjour"])
    assert main(["phonemize", str(data), "--languages", "es", "--min-phone-count", "2",
                 "--num-jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "train_es: 1 utterance(s) removed" in out and "rare phones" in out
    man = formats.read_manifest(layout.manifest_path(data, "train", "es"))
    assert [r for r, _ in man.entries] == ["es/0.flac", "es/1.flac", "es/3.flac"]
    phn = formats.read_lines(layout.label_path(data, "train", "es", "phn"))
    assert phn == ["o l a m u n d o", "l a m a n o", "m u n d o"]
    for kind in ("wrd", "ltr", "spk"):  # parallel files stay parallel
        assert len(formats.read_lines(layout.label_path(data, "train", "es", kind))) == 3
    assert formats.read_lines(layout.label_path(data, "train", "es", "wrd"))[2] == "mundo"
    rej = formats.read_lines(layout.rejects_path(data, "train", "es"))
    assert rej[0].startswith("key\t") and rej[1].startswith("es/2.flac\t/audio\tphonemize\trare phone")
    assert not layout.label_path(data, "train", "fr", "phn").exists()  # not asked for
    d = dict(l.split() for l in layout.dict_path(data, "phn", "es").read_text("utf-8").splitlines())
    assert d["o"] == "4" and "ks" not in d and "|" not in d  # counted in train only (dev's "hola" not)
    assert layout.dict_path(data, "phn").read_text("utf-8") == layout.dict_path(
        data, "phn", "es").read_text("utf-8")


def test_phonemize_unknown_voice_is_an_error(tmp_path, capsys):
    write_subset(tmp_path, "train", "xx", ["abc"])
    assert main(["phonemize", str(tmp_path)]) == 2
    assert "no espeak voice for ['xx']" in capsys.readouterr().err
