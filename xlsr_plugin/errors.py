"""Bad input, reported as a message rather than a traceback.

The plugin's start-up checks (``xlsr_plugin.data.validation``) and its data loading
raise :class:`InputError` for data a run cannot use: a message that names the file, the
line and what to do. A traceback through fairseq's training loop above that message
only hides it, so

* under ``fairseq-hydra-train`` it is a hydra ``CompactHydraException``: hydra prints
  the message alone (then its one-line ``HYDRA_FULL_ERROR`` hint);
* under ``fairseq-train`` / ``fairseq-generate`` (argparse CLIs that let exceptions
  reach the interpreter), :func:`install_excepthook` prints it without the traceback.

``XLSR_FULL_ERROR=1`` (or ``HYDRA_FULL_ERROR=1``) brings the traceback back. Any other
exception keeps Python's usual report.
"""

import os
import sys

from hydra.errors import CompactHydraException

from manifests.formats import ManifestError

FULL_ERROR_VARS = ("XLSR_FULL_ERROR", "HYDRA_FULL_ERROR")


class InputError(ManifestError, CompactHydraException):
    """Data, labels or configuration a run cannot use, found before (or while) training;
    the message says which file and line, and what to do.

    Raised in a data-loader worker, torch re-raises it in the trainer as an ``InputError``
    whose message is "Caught InputError in DataLoader worker process N. Original Traceback
    ...": the message then reads as the worker's original one, with where it came from."""

    def __str__(self):
        text = super().__str__()
        if "Original Traceback" in text and "InputError: " in text:
            where = text.split(".", 1)[0].replace("Caught InputError ", "")
            return f"{text.rstrip().rsplit('InputError: ', 1)[1]} ({where})"
        return text


def as_input_error(error: Exception) -> InputError:
    """``error`` (a check's ``ManifestError``) as an :class:`InputError` with its message."""
    return error if isinstance(error, InputError) else InputError(str(error))


def _hook(exc_type, exc, tb, previous=sys.__excepthook__):
    if issubclass(exc_type, InputError) and not any(os.environ.get(v) for v in FULL_ERROR_VARS):
        sys.stderr.write(f"\nxlsr_plugin: bad input ({FULL_ERROR_VARS[0]}=1 shows the traceback):\n{exc}\n")
        sys.stderr.flush()
        return
    previous(exc_type, exc, tb)


def install_excepthook() -> None:
    """Print uncaught :class:`InputError` as its message (idempotent; chains to the
    hook that was installed before)."""
    current = sys.excepthook
    if getattr(current, "_xlsr_input_errors", False):
        return

    def hook(exc_type, exc, tb):
        _hook(exc_type, exc, tb, previous=current)

    hook._xlsr_input_errors = True
    sys.excepthook = hook
