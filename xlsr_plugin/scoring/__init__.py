"""Scorers ``per`` and ``cer`` (``fairseq-generate --scoring``) and the error rates behind them."""
from xlsr_plugin.scoring import errors, scorers  # noqa: F401

__all__ = ["errors", "scorers"]
