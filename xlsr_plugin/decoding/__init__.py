"""CTC decoding for ``fairseq-generate``: greedy, beam search with KenLM, and an ARPA n-gram writer."""
from xlsr_plugin.decoding import ctc, ngram  # noqa: F401  (beam imports flashlight-text lazily)

__all__ = ["ctc", "ngram"]
