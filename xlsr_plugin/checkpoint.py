"""Loading fairseq checkpoints safely on torch >= 2.6.

torch now unpickles with ``weights_only=True`` by default: only tensors, containers
and explicitly allowed classes. fairseq checkpoints hold a few more (the released
XLSR/wav2vec 2.0 files store their hyper-parameters as an ``argparse.Namespace``;
training checkpoints keep fairseq's meters and numpy RNG state), so stock fairseq on
torch 2.6+ can neither fine-tune ``xlsr_53_56k.pt`` nor resume its own runs.

Rather than switching the check off (``weights_only=False`` runs any code a file
carries), :func:`allow_fairseq_checkpoints` adds exactly those classes to torch's
allow-list. Anything else is still refused, and :func:`load_checkpoint` (and
fairseq's own loader, wrapped here) turn torch's refusal into an error that names the
file, the refused class and what to do.
"""


import argparse
import functools
import pickle
import re
from typing import Any, Dict

import numpy as np
import torch
from fairseq import checkpoint_utils
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq.data.dictionary import Dictionary
from fairseq.logging import meters
from omegaconf import DictConfig, OmegaConf


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint wants to unpickle something that is not on the allow-list."""


def _allowed_globals() -> list:
    npcore = getattr(np, "_core", None) or np.core  # numpy 2 renamed numpy.core
    reconstruct = npcore.multiarray._reconstruct
    scalar = npcore.multiarray.scalar
    return [
        argparse.Namespace,  # hyper-parameters of pre-hydra checkpoints (xlsr_53_56k.pt)
        meters.AverageMeter, meters.SumMeter, meters.TimeMeter, meters.StopwatchMeter,
        meters.MetersDict,  # training state of older fairseq checkpoints
        Dictionary,  # task_state of fine-tuned checkpoints (target dictionary)
        # numpy arrays and scalars (RNG states, meter values), under both module names
        np.ndarray, np.dtype, reconstruct, scalar,
        (reconstruct, "numpy.core.multiarray._reconstruct"),
        (scalar, "numpy.core.multiarray.scalar"),
        *{type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "uint32", "bool")},
    ]


def allow_fairseq_checkpoints() -> None:
    """Allow-list the classes fairseq checkpoints need (idempotent)."""
    torch.serialization.add_safe_globals(_allowed_globals())
    if not getattr(checkpoint_utils.load_checkpoint_to_cpu, "_xlsr_wrapped", False):
        checkpoint_utils.load_checkpoint_to_cpu = _explain_refusals(
            checkpoint_utils.load_checkpoint_to_cpu
        )


def _explain_refusals(load):
    @functools.wraps(load)
    def wrapper(path, *args, **kwargs):
        try:
            return load(path, *args, **kwargs)
        except pickle.UnpicklingError as e:
            raise _unsafe(path, e) from None

    wrapper._xlsr_wrapped = True
    return wrapper


def _unsafe(path, error: Exception) -> pickle.UnpicklingError:
    found = re.search(r"(?:Unsupported global|GLOBAL)[: ]+\s*(?:GLOBAL )?([\w.]+)", str(error))
    if not found:  # a truncated or corrupt file, not a refused class
        return pickle.UnpicklingError(f"{path}: cannot be unpickled: {error}")
    what = found.group(1)
    return UnsafeCheckpointError(
        f"{path}: refused to load: the file asks to unpickle {what}, which is not a "
        "tensor, a container or one of the fairseq classes xlsr_plugin allows. A "
        "checkpoint from an unknown source may run code when unpickled. If you trust "
        "this file, re-save its tensors and config with torch.save from a trusted "
        f"environment, or allow the class with torch.serialization.add_safe_globals.\n"
        f"torch said: {str(error).splitlines()[0]}"
    )


def load_checkpoint(path: str) -> Dict[str, Any]:
    """fairseq's ``load_checkpoint_to_cpu`` under the allow-list, with clear errors."""
    allow_fairseq_checkpoints()
    return checkpoint_utils.load_checkpoint_to_cpu(path)


def stored_model_config(state: Dict[str, Any], path: str = "checkpoint") -> DictConfig:
    """The model settings a checkpoint was trained with (new ``cfg`` or old ``args``)."""
    cfg = state.get("cfg")
    if cfg is None and state.get("args") is not None:
        cfg = convert_namespace_to_omegaconf(state["args"])
    if cfg is None or cfg.get("model") is None:
        raise ValueError(f"{path}: no model configuration stored (neither 'cfg' nor 'args')")
    model = cfg.model
    return model if isinstance(model, DictConfig) else OmegaConf.create(model)
