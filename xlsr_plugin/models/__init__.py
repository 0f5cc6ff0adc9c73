"""Models: ``xlsr_base``, ``xlsr_large`` (and ``xlsr_ctc``)."""
from xlsr_plugin.models import xlsr, xlsr_ctc  # noqa: F401
