"""CTC decoding for ``fairseq-generate``: greedy, and beam search with KenLM (n-gram LMs for it:
``xlsr-ngram``, ``manifests.ngram``)."""
from xlsr_plugin.decoding import ctc  # noqa: F401  (beam imports flashlight-text lazily)

__all__ = ["ctc"]
