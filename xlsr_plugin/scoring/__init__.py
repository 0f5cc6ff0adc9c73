"""Scorers ``per`` and ``cer`` for ``fairseq-generate --scoring`` (the error rates: ``xlsr_core.errors``)."""
from xlsr_plugin.scoring import scorers  # noqa: F401

__all__ = ["scorers"]
