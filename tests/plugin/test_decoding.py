"""CTC decoders (greedy, flashlight beam search with KenLM) and the ARPA n-gram writer."""

import math

import pytest
import torch
from fairseq.data import Dictionary

from conftest import run_cli
from xlsr_plugin.decoding.beam import BeamOptions, FlashlightDecoder
from xlsr_plugin.decoding.ctc import GreedyDecoder, _hypothesis, collapse, normalise_separators
from manifests.ngram import BackoffLM, count_ngrams, write_arpa, write_lexicon


def make_dict(symbols):
    d = Dictionary()  # <s> (= CTC blank), <pad>, </s>, <unk> come first
    for s in symbols:
        d.add_symbol(s)
    return d


def emissions(d, frames, floor=-8.0):
    """Log-probabilities with the given best symbol per frame (None = blank)."""
    e = torch.full((len(frames), len(d)), floor)
    for t, sym in enumerate(frames):
        e[t, d.bos() if sym is None else d.index(sym)] = 0.0
    return e.log_softmax(-1)


def test_collapse_and_greedy():
    assert collapse(torch.tensor([0, 5, 5, 0, 5, 6, 6, 0]), 0).tolist() == [5, 5, 6]
    d = make_dict("ab")
    hypo = GreedyDecoder(d.bos()).decode(emissions(d, ["a", "a", None, "a", "b", None]))[0]
    assert d.string(hypo["tokens"]) == "a a b"
    assert len(hypo["positional_scores"]) == 3 and hypo["alignment"] is None
    blank = GreedyDecoder(d.bos()).decode(emissions(d, [None] * 5))[0]
    assert blank["tokens"].numel() == 0  # an empty hypothesis, still one hypothesis
    assert GreedyDecoder(d.bos()).decode(torch.zeros(0, len(d)))[0]["tokens"].numel() == 0


def test_arpa_model_is_normalised_and_read_by_kenlm(tmp_path):
    lines = ["a b a", "b b c", "a c", "c a b b"]
    lm = BackoffLM(count_ngrams(lines, 3))
    vocab = ["a", "b", "c", "</s>", "<unk>"]
    for history in [(), ("<s>",), ("a",), ("b", "b"), ("z", "q")]:
        assert sum(lm.p(history, w) for w in vocab) == pytest.approx(1.0)
    write_arpa(lines, tmp_path / "lm.arpa", order=3)
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary as FlDict

    d = FlDict()
    for s in vocab:
        d.add_entry(s)
    kenlm = KenLM(str(tmp_path / "lm.arpa"), d)
    state, score = kenlm.score(kenlm.start(False), d.get_index("a"))
    assert score == pytest.approx(math.log10(lm.p(("<s>",), "a")), abs=1e-5)


def test_ngram_cli_writes_lm_and_lexicon(tmp_path):
    (tmp_path / "train.wrd").write_text("ola mundo\nmundo\n")
    proc = run_cli(["python", "-m", "manifests.ngram", tmp_path / "train.wrd", "--order", "2",
                    "-o", tmp_path / "lm.arpa", "--lexicon", tmp_path / "lex.txt"])
    assert "1-grams 5" in proc.stdout  # ola, mundo, </s>, <unk>, <s>
    assert (tmp_path / "lex.txt").read_text() == "mundo\tm u n d o |\nola\to l a |\n"
    with pytest.raises(ValueError, match="no text"):
        write_arpa([], tmp_path / "empty.arpa")
    assert not (tmp_path / "empty.arpa").exists()


def test_beam_without_lm_matches_greedy_on_clear_emissions():
    d = make_dict("ab")
    e = emissions(d, ["a", None, "b", "b", None, "a"], floor=-3.0)
    beam = FlashlightDecoder(d, BeamOptions(beam=10, lm_weight=0.0)).decode(e)[0]
    greedy = GreedyDecoder(d.bos()).decode(e)[0]
    assert beam["tokens"].tolist() == greedy["tokens"].tolist()


def test_token_lm_overrules_an_ambiguous_frame(tmp_path):
    d = make_dict("abc")
    write_arpa(["a b c"] * 20 + ["a c c"], tmp_path / "lm.arpa", order=3)
    e = emissions(d, ["a", None, "b", None, "c"], floor=-6.0)
    e[2, d.index("b")], e[2, d.index("c")] = math.log(0.45), math.log(0.55)  # acoustics prefer "c"
    e = e.log_softmax(-1)
    no_lm = FlashlightDecoder(d, BeamOptions(beam=10, lm_weight=0.0)).decode(e)[0]
    with_lm = FlashlightDecoder(d, BeamOptions(beam=10, lm_weight=2.0), str(tmp_path / "lm.arpa")).decode(e)[0]
    assert d.string(no_lm["tokens"]) == "a c c"
    assert d.string(with_lm["tokens"]) == "a b c"


def test_lexicon_decoding_produces_lexicon_words(tmp_path):
    d = make_dict(list("olamund") + ["|"])
    write_arpa(["ola mundo", "mundo ola", "ola"], tmp_path / "words.arpa", order=2)
    write_lexicon(["ola", "mundo"], tmp_path / "lex.txt")
    frames = ["o", "l", "a", "|", "m", "u", "n", "d", "a", "|"]  # acoustics say "munda"
    e = emissions(d, frames, floor=-4.0)
    dec = FlashlightDecoder(d, BeamOptions(beam=20, lm_weight=1.0, word_score=0.0),
                            str(tmp_path / "words.arpa"), str(tmp_path / "lex.txt"))
    hypo = dec.decode(e)[0]
    assert hypo["words"] == ["ola", "mundo"]
    assert d.string(hypo["tokens"]).startswith("o l a | m u n d o")


@pytest.mark.parametrize("frames", [
    ["|", "o", "l", "a", "|", "|", None, "|", "m", "u", "n", "d", "o"],  # ends before "mundo |"
    ["o", "l", "a", "|", "m", "u", "n"],  # audio cut off inside a word
])
def test_lexicon_decoding_emits_only_completed_words(tmp_path, frames):
    """Acoustics so sure that every surviving hypothesis ends inside a word: flashlight
    then returns that unfinished word, and silences around words, as tokens."""
    d = make_dict(list("olamund") + ["|"])
    write_arpa(["ola mundo", "mundo ola", "ola"], tmp_path / "words.arpa", order=2)
    write_lexicon(["ola", "mundo"], tmp_path / "lex.txt")
    dec = FlashlightDecoder(d, BeamOptions(beam=20, lm_weight=1.0),
                            str(tmp_path / "words.arpa"), str(tmp_path / "lex.txt"))
    for hypo in dec.decode(emissions(d, frames, floor=-10.0)):
        assert hypo["words"] == ["ola"]
        assert d.string(hypo["tokens"]) == "o l a |"
        assert len(hypo["positional_scores"]) == len(hypo["tokens"])


def test_separators_are_normalised():
    d = make_dict(list("ab") + ["|"])
    tokens = torch.tensor([d.index(s) for s in "| | a | | | b |".split()])
    hypo = normalise_separators(_hypothesis(tokens, 0.0, torch.arange(len(tokens)).float()), d.index("|"))
    assert d.string(hypo["tokens"]) == "a | b |"
    assert hypo["positional_scores"].tolist() == [2.0, 3.0, 6.0, 7.0]  # scores follow their tokens
    assert normalise_separators(hypo, None) is hypo  # no separator in the dictionary: as it is


def test_beam_decoder_reports_missing_files(tmp_path):
    d = make_dict("ab")
    with pytest.raises(FileNotFoundError, match="kenlm_model"):
        FlashlightDecoder(d, BeamOptions(), str(tmp_path / "nope.arpa"))
    with pytest.raises(ValueError, match="needs a word LM"):
        FlashlightDecoder(d, BeamOptions(), None, str(tmp_path / "lex.txt"))
