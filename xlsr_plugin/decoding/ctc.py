"""Decoding a CTC model inside ``fairseq-generate``.

fairseq's generators are autoregressive (``SequenceGenerator``); a CTC model emits one
distribution per 20 ms frame instead, and a transcription is read off by collapsing
repeated symbols and dropping blanks (Graves et al. 2006). :class:`CtcGenerator` runs
the model once per batch and hands each utterance's log-probabilities to a decoder:

* :class:`GreedyDecoder` (default): best symbol per frame, pure torch.
* ``xlsr_plugin.decoding.beam.FlashlightDecoder``: beam search with an optional KenLM
  n-gram (and lexicon), through the ``flashlight-text`` package.

Each hypothesis is what ``fairseq-generate`` prints and scores: ``tokens`` (dictionary
indices, no blanks), ``score`` (log-probability of the best path, or the beam score),
``positional_scores`` (one per token) and ``alignment`` (none). An utterance for which
nothing is decoded gets an empty hypothesis, which is scored like any other. Where the
dictionary has the word separator ``|``, every decoder's hypothesis is normalised: no
leading separator and no run of them (an empty word is no word).
"""

from typing import Dict, List, Optional

import torch

from xlsr_core.labels import SEPARATOR


def collapse(path: torch.Tensor, blank: int) -> torch.Tensor:
    """Frame-level symbol path -> token sequence: merge repeats, drop blanks."""
    merged = torch.unique_consecutive(path)
    return merged[merged != blank]


class GreedyDecoder:
    """Best path: argmax per frame, then collapse."""

    def __init__(self, blank: int):
        self.blank = blank

    def decode(self, emissions: torch.Tensor) -> List[Dict]:
        """``emissions``: (frames, symbols) log-probabilities of one utterance."""
        if emissions.size(0) == 0:
            return [_hypothesis(torch.zeros(0, dtype=torch.long), 0.0, torch.zeros(0))]
        best, path = emissions.max(dim=-1)
        starts = torch.ones_like(path, dtype=torch.bool)
        starts[1:] = path[1:] != path[:-1]
        keep = starts & (path != self.blank)
        return [_hypothesis(path[keep], float(best.sum()), best[keep])]


def _hypothesis(tokens: torch.Tensor, score: float, positional: torch.Tensor) -> Dict:
    return {
        "tokens": tokens.long(),
        "score": score,
        "positional_scores": positional.float(),
        "alignment": None,
    }


def normalise_separators(hypo: Dict, separator: Optional[int]) -> Dict:
    """Drop a hypothesis' leading separators and all but the first of each run."""
    tokens = hypo["tokens"]
    if separator is None or tokens.numel() == 0:
        return hypo
    is_sep = tokens == separator
    after_sep = torch.ones_like(is_sep)  # the first token counts as following one
    after_sep[1:] = is_sep[:-1]
    keep = ~(is_sep & after_sep)
    return dict(hypo, tokens=tokens[keep], positional_scores=hypo["positional_scores"][keep])


class CtcGenerator:
    """The generator ``task.build_generator`` returns for CTC models."""

    def __init__(self, models, tgt_dict, decoder, nbest: int = 1):
        if len(models) != 1:
            raise ValueError(
                f"CTC decoding takes one model, got an ensemble of {len(models)} "
                "(--path lists several checkpoints); decode them one at a time"
            )
        self.model = models[0]
        self.model.eval()
        self.tgt_dict = tgt_dict
        self.decoder = decoder
        self.nbest = nbest
        self.blank = tgt_dict.bos()  # fairseq's audio tasks use <s> as the CTC blank
        self.separator = tgt_dict.index(SEPARATOR) if SEPARATOR in tgt_dict.indices else None
        self.eos = tgt_dict.eos()
        self.symbols_to_strip_from_output = {tgt_dict.bos(), tgt_dict.eos(), tgt_dict.pad()}

    def emissions(self, sample) -> List[torch.Tensor]:
        """Per utterance, (frames, symbols) log-probabilities on the CPU, padding removed."""
        net_output = self.model(**sample["net_input"])
        lprobs = self.model.get_normalized_probs(net_output, log_probs=True)  # T x B x C
        lprobs = lprobs.transpose(0, 1).float().cpu()
        padding = net_output.get("padding_mask")
        if padding is not None and padding.any():
            lengths = (~padding).long().sum(-1).tolist()
        else:
            lengths = [lprobs.size(1)] * lprobs.size(0)
        return [lp[:n].contiguous() for lp, n in zip(lprobs, lengths)]

    @torch.no_grad()
    def generate(self, models, sample, **unused) -> List[List[Dict]]:
        return [
            [normalise_separators(h, self.separator) for h in self.decoder.decode(e)[: self.nbest]]
            for e in self.emissions(sample)
        ]
