"""The error rates (xlsr_core.errors) that validation, the scorers and the demo report share."""

import editdistance
import pytest

from xlsr_core.errors import LanguageErrors, characters, phones, units, words
from xlsr_core.labels import LABEL_KINDS, label_kind


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


def test_label_kinds_name_their_error_rates():
    assert [k for k in LABEL_KINDS] == ["ltr", "wrd", "phn"]
    assert label_kind("phn").primary_metric == "per" and label_kind("ltr").metrics == ("cer", "wer")
    for kind in LABEL_KINDS.values():  # every rate a kind names is one the scorers compute
        for metric in kind.metrics:
            LanguageErrors(metric).add("a b", "a c")
    with pytest.raises(ValueError, match=r"label kind 'chr'; expected one of ltr \(letters\)"):
        label_kind("chr")
