"""Tasks: ``xlsr_pretraining`` (and ``xlsr_finetuning``)."""
from xlsr_plugin.tasks import xlsr_finetuning, xlsr_pretraining  # noqa: F401
