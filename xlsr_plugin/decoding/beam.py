"""CTC beam search with an optional KenLM n-gram, through ``flashlight-text``.

The decoder choice: ``flashlight-text`` (the maintained PyPI package of flashlight's
decoder, the one fairseq's example scripts and torchaudio wrap) ships wheels for
Python 3.8-3.12 with KenLM compiled in, so an ARPA or binary KenLM model works after a
plain ``pip install``; ``pyctcdecode`` is pure Python but needs the ``kenlm`` package
for LM decoding, which has no wheel for Python 3.11 and must be compiled. flashlight's
decoder is also C++ and much faster than a Python beam.

Two modes, as in the paper's set-ups:

* **lexicon-free** (no ``lexicon``): the LM scores dictionary tokens, e.g. a phone
  n-gram over ``.phn`` lines for PER (CommonVoice), or a letter n-gram;
* **lexicon**: the LM scores words; ``lexicon`` spells each word in tokens
  (``word<TAB>w o r d |``, see ``xlsr-ngram --lexicon``), so only lexicon words are
  produced (MLS / BABEL WER with a word n-gram). flashlight's best path may end inside
  a word (it does when no hypothesis reaches a word's end, e.g. on cut-off audio), and
  it emits silences (``|``) between and before words. A hypothesis here is therefore
  the words the decoder completed, each spelled as its path went through the lexicon:
  an unfinished word at the end is dropped, and so are silences that are not part of
  a spelling. With a finite ``unk_score`` the decoder may also complete ``<unk>``
  words: their spelled tokens are kept.

Without ``kenlm_model`` the beam search runs with no LM (``ZeroLM``).
Knobs: ``beam`` (hypotheses kept), ``lm_weight``, ``word_score`` (added per word; with a
lexicon only), ``unk_score``, ``sil_score``, ``beam_threshold``.
"""

import logging
import math
import os
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch

from xlsr_plugin.decoding.ctc import _hypothesis
from xlsr_core.labels import SEPARATOR

logger = logging.getLogger(__name__)


@dataclass
class BeamOptions:
    beam: int = 50
    beam_size_token: Optional[int] = None  # default: all tokens
    beam_threshold: float = 25.0
    lm_weight: float = 2.0
    word_score: float = 0.0
    unk_score: float = -math.inf
    sil_score: float = 0.0


def _import_flashlight():
    try:
        from flashlight.lib.text import decoder, dictionary  # noqa: F401
    except ImportError as e:
        raise ImportError(
            "beam-search decoding needs flashlight-text: pip install 'xlsr-plugin[decode]' "
            f"(or pip install flashlight-text); greedy decoding needs nothing ({e})"
        ) from None
    return decoder, dictionary


class FlashlightDecoder:
    """Beam search over one utterance's (frames, symbols) CTC log-probabilities."""

    def __init__(self, tgt_dict, opts: BeamOptions, kenlm_model: Optional[str] = None,
                 lexicon: Optional[str] = None):
        fl, fl_dict = _import_flashlight()
        self.tgt_dict = tgt_dict
        self.blank = tgt_dict.bos()
        self.nsymbols = len(tgt_dict)
        self.silence = tgt_dict.index(SEPARATOR) if SEPARATOR in tgt_dict.indices else self.blank
        tokens = fl_dict.Dictionary()
        for sym in tgt_dict.symbols:
            tokens.add_entry(sym)
        beam_size_token = opts.beam_size_token or self.nsymbols
        if lexicon and not kenlm_model:
            raise ValueError("a lexicon needs a word LM: set kenlm_model too")

        self.word_dict = None
        if lexicon:
            self._check_file(lexicon, "lexicon")
            self._check_file(kenlm_model, "kenlm_model")
            words = fl_dict.load_words(lexicon)
            self.word_dict = fl_dict.create_word_dict(words)
            lm = _kenlm()(kenlm_model, self.word_dict)
            trie = self._trie(fl, lm, words, lexicon)
            options = fl.LexiconDecoderOptions(
                beam_size=opts.beam, beam_size_token=beam_size_token,
                beam_threshold=opts.beam_threshold, lm_weight=opts.lm_weight,
                word_score=opts.word_score, unk_score=opts.unk_score, sil_score=opts.sil_score,
                log_add=False, criterion_type=fl.CriterionType.CTC,
            )
            unk_word = self.word_dict.get_index("<unk>")
            self.decoder = fl.LexiconDecoder(options, trie, lm, self.silence, self.blank, unk_word, [], False)
        else:
            if kenlm_model:
                self._check_file(kenlm_model, "kenlm_model")
                lm = _kenlm()(kenlm_model, tokens)
            else:
                lm = fl.ZeroLM()
            options = fl.LexiconFreeDecoderOptions(
                beam_size=opts.beam, beam_size_token=beam_size_token,
                beam_threshold=opts.beam_threshold, lm_weight=opts.lm_weight,
                sil_score=opts.sil_score, log_add=False, criterion_type=fl.CriterionType.CTC,
            )
            self.decoder = fl.LexiconFreeDecoder(options, lm, self.silence, self.blank, [])
        self.lm = lm  # the decoder keeps a reference, but keep ours alive too
        logger.info(
            f"CTC beam search: beam {opts.beam}, lm {kenlm_model or 'none'}, lexicon {lexicon or 'none'}, "
            f"lm_weight {opts.lm_weight}, word_score {opts.word_score}"
        )

    @staticmethod
    def _check_file(path, what):
        if not path or not os.path.isfile(path):
            raise FileNotFoundError(f"{what} {path!r} not found")

    def _trie(self, fl, lm, words, lexicon):
        trie = fl.Trie(self.nsymbols, self.silence)
        self.spellings: Dict[int, List[List[int]]] = {}  # word index -> its spellings in the trie
        start = lm.start(False)
        unknown = {}
        for word, spellings in words.items():
            word_idx = self.word_dict.get_index(word)
            _, score = lm.score(start, word_idx)
            for spelling in spellings:
                idx = [self.tgt_dict.index(t) for t in spelling]
                missing = [t for t, i in zip(spelling, idx) if i == self.tgt_dict.unk()]
                if missing:
                    unknown[word] = missing
                    continue
                trie.insert(idx, word_idx, score)
                self.spellings.setdefault(word_idx, []).append(idx)
        if unknown:
            shown = "; ".join(f"{w}: {' '.join(m)}" for w, m in list(unknown.items())[:10])
            logger.warning(
                f"{lexicon}: {len(unknown)} word(s) spelled with symbols not in the dictionary "
                f"were left out of the lexicon ({shown})"
            )
        trie.smear(fl.SmearingMode.MAX)
        return trie

    def decode(self, emissions: torch.Tensor) -> List[Dict]:
        frames, nsym = emissions.shape
        if frames == 0:
            return [_hypothesis(torch.zeros(0, dtype=torch.long), 0.0, torch.zeros(0))]
        emissions = emissions.float().contiguous()
        results = self.decoder.decode(emissions.data_ptr(), frames, nsym)
        hypos = []
        for r in results:
            # one decoder state per frame, plus a start and an end state
            path = r.tokens[1:-1] if len(r.tokens) == frames + 2 else r.tokens
            if self.word_dict is None:
                tokens = torch.unique_consecutive(torch.tensor(path, dtype=torch.long))
                tokens = tokens[(tokens != self.blank) & (tokens >= 0)]
                hypos.append(_hypothesis(tokens, float(r.score), torch.zeros(len(tokens))))
                continue
            emitted = r.words[1:-1] if len(r.words) == frames + 2 else r.words
            words, spelled = self._completed_words(path, emitted)
            hypo = _hypothesis(torch.tensor(spelled, dtype=torch.long), float(r.score), torch.zeros(len(spelled)))
            hypo["words"] = words
            hypos.append(hypo)
        return hypos or [_hypothesis(torch.zeros(0, dtype=torch.long), -math.inf, torch.zeros(0))]

    def _completed_words(self, path, emitted):
        """(words, their tokens) of a lexicon path.

        The decoder marks a word on the frame whose token completes it; tokens after the
        last such frame belong to no word. Each word is written in the lexicon's
        spelling that its stretch of the path followed (less leading silence), or its
        first one: flashlight may complete a word whose last two letters repeat without
        the blank that CTC needs between them, and the path then spells it short."""
        words, tokens, segment, prev = [], [], [], self.blank
        for token, word in zip(path, emitted):
            if token != prev and token != self.blank and token >= 0 and (segment or token != self.silence):
                segment.append(token)
            prev = token
            if word >= 0:
                words.append(self.word_dict.get_entry(word))
                spellings = self.spellings.get(word, [segment])  # <unk>: as decoded
                tokens += segment if segment in spellings else spellings[0]
                segment = []
        return words, tokens


def _kenlm():
    from flashlight.lib.text.decoder.kenlm import KenLM

    return KenLM
