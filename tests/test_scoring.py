"""The ``per``/``cer`` scorers and the error-rate definitions shared with validation."""

import editdistance
import pytest
from fairseq.scoring import build_scorer

import xlsr_plugin  # noqa: F401  (registers the scorers)
from xlsr_plugin.scoring.errors import LanguageErrors, characters, phones, units, words
from xlsr_plugin.scoring.scorers import BATCH_LANGUAGES, CerScorer, CerScorerConfig


def test_units_per_label_kind():
    assert phones("o l a | m u n d o") == list("olamundo")  # boundaries are not phones
    assert characters("o l a | m u n d o |") == list("ola|mundo")  # | is one space, trailing dropped
    assert characters("| o l a | | m u n d o |") == list("ola|mundo")  # runs collapse
    assert characters("o l a | m u n d o |", ignore_separator=True) == list("olamundo")
    assert words("o l a | m u n d o |") == ["ola", "mundo"]
    assert words("ola mundo") == ["ola", "mundo"]
    with pytest.raises(ValueError, match="unknown error rate"):
        units("xer", "a")


def test_cer_counts_a_word_boundary_like_a_space():
    ref, hyp = "o l a | m u n d o |", "o l a m u n d o |"
    plain = editdistance.eval("ola mundo", "olamundo") / len("ola mundo")
    e = LanguageErrors("cer")
    e.add(ref, hyp)
    assert e.overall.rate == pytest.approx(100 * plain)
    letters_only = LanguageErrors("cer", ignore_separator=True)
    letters_only.add(ref, hyp)
    assert letters_only.overall.rate == 0.0


def test_scorers_registered_beside_wer_and_score_empty_hypotheses():
    for name in ("per", "cer", "wer"):
        assert build_scorer(name, None) is not None
    per = build_scorer("per", None)
    per.add_string("a b c d", "")  # an empty hypothesis: four deletions, no crash
    per.add_string("a b", "a b")
    assert per.score() == pytest.approx(100 * 4 / 6)
    assert per.result_string() == "PER: 66.67"


def test_per_language_scores_follow_the_announced_batch_languages():
    scorer = build_scorer("per", None)
    BATCH_LANGUAGES.announce(["es", "ru"])
    scorer.add_string("a b", "a b")
    scorer.add_string("a b c d", "a")
    BATCH_LANGUAGES.announce(["es"])
    scorer.add_string("a b", "x b")
    assert scorer.errors.by_language["es"].rate == pytest.approx(25.0)
    assert scorer.errors.by_language["ru"].rate == pytest.approx(75.0)
    assert scorer.result_string() == f"PER: {100 * 4 / 8:.2f} (es 25.00, ru 75.00)"
    BATCH_LANGUAGES.announce([])


def test_cer_scorer_option():
    scorer = CerScorer(CerScorerConfig(cer_ignore_separator=True))
    scorer.add_string("a b | c |", "a b c")
    assert scorer.score() == 0.0
