"""Criterions: ``xlsr_wav2vec`` (and ``xlsr_ctc``)."""
from xlsr_plugin.criterions import xlsr_ctc, xlsr_wav2vec  # noqa: F401
