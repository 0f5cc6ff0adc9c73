"""XLSR (Conneau et al. 2020) as a fairseq plugin: ``--user-dir xlsr_plugin``.

Importing the package registers with fairseq the tasks, models, criterions, scorers
and the CTC generator in its sub-packages (each sub-package imports its modules), and
allow-lists the classes fairseq checkpoints need under torch's ``weights_only``
loading and makes fairseq's checkpoint copies atomic (``xlsr_plugin.checkpoint``), and
has the argparse CLIs print the plugin's bad-input errors as messages, not tracebacks
(``xlsr_plugin.errors``). Importing it twice is harmless.
"""

import logging

_root_level = logging.getLogger().level

from xlsr_plugin.checkpoint import allow_fairseq_checkpoints, atomic_checkpoint_copies  # noqa: E402

from xlsr_plugin.errors import install_excepthook  # noqa: E402

allow_fairseq_checkpoints()
install_excepthook()
atomic_checkpoint_copies()

from xlsr_plugin import criterions, decoding, models, scoring, tasks  # noqa: E402  (registers components)

__all__ = ["allow_fairseq_checkpoints", "atomic_checkpoint_copies", "criterions", "decoding", "models", "scoring", "tasks"]

# importing fairseq.tasks.text_to_speech sets the root logger to DEBUG; put it back
logging.getLogger().setLevel(_root_level)
