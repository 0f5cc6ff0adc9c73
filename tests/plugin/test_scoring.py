"""The ``per``/``cer`` scorers of fairseq-generate and the validation counts of ``xlsr_ctc``."""

import editdistance
import pytest
from fairseq.scoring import build_scorer

import xlsr_plugin  # noqa: F401  (registers the scorers)
from xlsr_plugin.scoring.scorers import CerScorer, CerScorerConfig, announce_batch_languages


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
    announce_batch_languages(["es", "ru"])
    scorer.add_string("a b", "a b")
    scorer.add_string("a b c d", "a")
    announce_batch_languages(["es"])
    scorer.add_string("a b", "x b")
    assert scorer.errors.by_language["es"].rate == pytest.approx(25.0)
    assert scorer.errors.by_language["ru"].rate == pytest.approx(75.0)
    assert scorer.result_string() == f"PER: {100 * 4 / 8:.2f} (es 25.00, ru 75.00)"
    announce_batch_languages(["es"])  # unconsumed: no later scorer inherits it
    assert not build_scorer("per", None)._languages


def test_cer_scorer_option():
    scorer = CerScorer(CerScorerConfig(cer_ignore_separator=True))
    scorer.add_string("a b | c |", "a b c")
    assert scorer.score() == 0.0


def test_validation_decodes_each_batch_once(monkeypatch):
    """xlsr_ctc's validation decodes greedily once: fairseq's own decode (the one behind
    its uer/wer) is skipped, and uer comes from the same hypotheses."""
    import torch
    from types import SimpleNamespace

    import fairseq.criterions.ctc as fairseq_ctc
    from fairseq.data import Dictionary

    import xlsr_plugin.criterions.xlsr_ctc as xlsr_ctc

    d = Dictionary()
    for sym in "ab|":
        d.add_symbol(sym)
    task = SimpleNamespace(target_dictionary=d, cfg=SimpleNamespace(labels="ltr"), languages=["es"])
    criterion = xlsr_ctc.XlsrCtcCriterion(
        xlsr_ctc.XlsrCtcCriterionConfig(sentence_avg=True, post_process="letter"), task
    )
    paths = [["a", None, "a", "|", "b", "|"], ["b", "b", "|", None, None, None]]  # a a | b | / b |
    refs = ["a a | b |", "a b |"]
    lprobs = torch.full((6, 2, len(d)), -9.0)
    for b, path in enumerate(paths):
        for t, sym in enumerate(path):
            lprobs[t, b, d.bos() if sym is None else d.index(sym)] = 0.0
    lprobs = lprobs.log_softmax(-1)

    class Model(torch.nn.Module):
        def forward(self, **unused):
            return {"encoder_out": lprobs, "padding_mask": None}

        def get_normalized_probs(self, net_output, log_probs):
            return net_output["encoder_out"]

    targets = [d.encode_line(r, add_if_not_exist=False, append_eos=False).long() for r in refs]
    sample = {
        "net_input": {}, "id": torch.arange(2), "lang": torch.tensor([0, 0]),
        "target": torch.nn.utils.rnn.pad_sequence(targets, batch_first=True, padding_value=d.pad()),
        "target_lengths": torch.tensor([len(t) for t in targets]), "ntokens": sum(len(t) for t in targets),
    }
    decodes = []
    collapse = xlsr_ctc.collapse
    monkeypatch.setattr(xlsr_ctc, "collapse", lambda path, blank: decodes.append(1) or collapse(path, blank))
    monkeypatch.setattr(fairseq_ctc, "post_process", lambda *a: pytest.fail("fairseq's ctc decoded too"))
    _, _, log = criterion.forward(Model().eval(), sample)
    assert len(decodes) == 2  # one greedy decode per utterance
    hyps = [[d.index(s) for s in "a a | b |".split()], [d.index(s) for s in "b |".split()]]
    assert log["c_errors"] == sum(editdistance.eval(h, t.tolist()) for h, t in zip(hyps, targets)) == 1
    assert log["c_total"] == 8
    assert (log["cer_errors"], log["wer_errors"], log["wer_total"]) == (1, 1, 3)  # words aa b / ab
    assert log["_lang:es:cer_errors"] == 1 and log["_lang:es:wer_total"] == 3
