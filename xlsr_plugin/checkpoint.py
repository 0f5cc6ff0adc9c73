"""Loading fairseq checkpoints of every era safely on torch >= 2.6.

fairseq released wav2vec 2.0 / XLSR / XLS-R / MMS checkpoints in three formats:

* ``argparse`` (2020): the hyper-parameters as one flat ``argparse.Namespace`` under
  ``args`` (``xlsr_53_56k.pt`` as first released);
* ``dictconfig`` (late 2020 - early 2021): ``args`` None and ``cfg`` pickled as an omegaconf
  ``DictConfig`` object, a group of which may still hold a Namespace (the re-uploaded
  ``xlsr_53_56k.pt``, fairseq #3042, #3161, #3526);
* ``dict`` (from March 2021): ``cfg`` as plain dicts (XLS-R, MMS, this plugin).

A fine-tuned file nests its pre-trained model's configuration under ``model.w2v_args``,
in any of these forms.

torch now unpickles with ``weights_only=True``: only tensors, containers and explicitly
allowed classes. :func:`allow_fairseq_checkpoints` adds exactly the classes these files
hold (Namespace; omegaconf's own data classes, listed one by one; fairseq's meters and
``Dictionary``; numpy RNG states and scalars), rather than switching the check off, which
would run any code a file carries. Anything else is still refused, wherever it hides,
and :func:`load_checkpoint` (and fairseq's own loader, wrapped here) turn torch's refusal
into an error that names the file, the refused object and what to do. Every entry point
that reads a checkpoint (``--path``, ``model.w2v_path``, ``model.init_checkpoint``, the
resume from ``checkpoint_last.pt``, ``xlsr-checkpoint``, ``xlsr-extract``,
``xlsr-analyze``, ``xlsr-hf to-hf``) goes through them. The one way past the allow-list is
the explicit opt-in ``XLSR_TRUST_CHECKPOINTS=1``, which warns at every load.

Old configurations also carry fields today's fairseq no longer has (XLSR-53's
pre-training task holds ``eval_wer`` and other fine-tuning keys, s3prl #376). fairseq
0.12.2 then fails in ``tasks.setup_task``, whose ``merge_with_parent`` merges the stored
task config into the registered dataclass in struct mode (``ConfigKeyError: Key
'eval_wer' not in 'AudioPretrainingConfig'``); later fairseq drops them without a word.
Here every stored configuration is normalised where fairseq reads the file (the wrapped
``load_checkpoint_to_cpu``, which fine-tuning's ``w2v_path``, ``fairseq-generate`` and
continued pre-training all go through): Namespace groups become configs, and fields the
registered dataclasses do not know are dropped with a warning that names them.
"""


import argparse
import ast
import collections
import copy
import dataclasses
import functools
import logging
import os
import pickle
import re
import shutil
import typing
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from fairseq import checkpoint_utils
from fairseq.data.dictionary import Dictionary
from fairseq.dataclass.utils import convert_namespace_to_omegaconf, overwrite_args_by_name
from fairseq.logging import meters
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.base import ContainerMetadata, Metadata
from omegaconf.nodes import AnyNode, BooleanNode, BytesNode, FloatNode, IntegerNode, StringNode

logger = logging.getLogger(__name__)

ERAS = ("argparse", "dictconfig", "dict")

# What a pickled omegaconf config (2.0 and later) asks for: its containers, the node
# classes of plain values, the metadata records and the types those record (key,
# element, object and reference types). Data classes only: none of them runs code when
# built or given its state. EnumNode is left out (it would need arbitrary Enum classes),
# and so are structured configs (their dataclasses): fairseq stored neither.
OMEGACONF_CLASSES = (
    DictConfig, ListConfig, ContainerMetadata, Metadata,
    AnyNode, StringNode, IntegerNode, FloatNode, BooleanNode, BytesNode,
    typing.Any, dict, list, int, float, str, bool, bytes, collections.defaultdict,
)


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint wants to unpickle something that is not on the allow-list."""


class NotACheckpointError(ValueError):
    """A file that is not a fairseq checkpoint (or not one torch can read)."""


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
        *OMEGACONF_CLASSES,  # cfg pickled as a DictConfig (late 2020 - early 2021)
    ]


def allow_fairseq_checkpoints() -> None:
    """Allow-list the classes fairseq checkpoints need, and wrap fairseq's loader and its
    argparse converter (idempotent)."""
    torch.serialization.add_safe_globals(_allowed_globals())
    if not getattr(checkpoint_utils.load_checkpoint_to_cpu, "_xlsr_wrapped", False):
        checkpoint_utils.load_checkpoint_to_cpu = _wrap_loader(checkpoint_utils.load_checkpoint_to_cpu)
    if not getattr(checkpoint_utils.convert_namespace_to_omegaconf, "_xlsr_wrapped", False):
        checkpoint_utils.convert_namespace_to_omegaconf = convert_namespace


def atomic_checkpoint_copies() -> None:
    """Make fairseq's checkpoint copies atomic (idempotent).

    fairseq writes a checkpoint atomically (``torch_persistent_save``: ``<name>.tmp``, then
    a rename) but then *copies* it to its other names (``checkpoint_last.pt`` after
    ``checkpoint_<epoch>_<updates>.pt`` or ``checkpoint<epoch>.pt``) with
    ``PathManager.copy``: a run killed during that copy leaves a truncated
    ``checkpoint_last.pt``, and the same command then fails to resume. Here a local copy
    goes to ``<dst>.tmp`` and is renamed over ``<dst>``: the old file or the new one,
    never half of one."""
    from fairseq.file_io import PathManager

    copy = PathManager.copy
    if getattr(copy, "_xlsr_wrapped", False):
        return

    @functools.wraps(copy)
    def atomic_copy(src_path: str, dst_path: str, overwrite: bool = False) -> bool:
        src, dst = str(src_path), str(dst_path)
        if "://" in src or "://" in dst or (os.path.exists(dst) and not overwrite):
            return copy(src_path, dst_path, overwrite=overwrite)
        tmp = dst + ".tmp"
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        return True

    atomic_copy._xlsr_wrapped = True
    PathManager.copy = staticmethod(atomic_copy)


TRUST_VARIABLE = "XLSR_TRUST_CHECKPOINTS"


def trusted() -> bool:
    """``XLSR_TRUST_CHECKPOINTS=1``: the explicit opt-in to unpickle checkpoints without the
    allow-list (each load then warns, naming the file). For a file from a source you trust
    that holds a class the allow-list lacks; ``xlsr-checkpoint clean`` under the opt-in
    writes a plain copy that loads without it."""
    return os.environ.get(TRUST_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def _warn_trusted(path) -> None:
    logger.warning(
        f"{path}: {TRUST_VARIABLE}=1: unpickled without xlsr_plugin's allow-list; a checkpoint "
        "from an unknown source can run code when loaded this way"
    )


def _local_copy(path: str):
    """The local file fairseq's ``PathManager`` makes of ``path`` (a URL of a registered
    handler), or None where it cannot (then fairseq's own load reports the path)."""
    if "://" not in path:
        return None
    from fairseq.file_io import PathManager

    try:
        local = PathManager.get_local_path(path)
    except Exception:  # noqa: BLE001 - no handler for it: fairseq's load names the path
        return None
    return local if local and os.path.isfile(local) else None


def _wrap_loader(load):
    @functools.wraps(load)
    def wrapper(path, arg_overrides=None, load_on_all_ranks=False):
        # before fairseq reads (and resolves) the config; a URL PathManager knows is vetted in
        # the local copy fairseq's loader then reads too (PathManager caches it)
        local = str(path) if os.path.isfile(str(path)) else _local_copy(str(path))
        if local is not None:
            state = _torch_load(local, mmap=True)
            _require_checkpoint(state, str(path))  # not fairseq's KeyError/IndexError on other files
            check_config_strings(state, str(path))
        try:
            if trusted():  # fairseq's torch.load leaves weights_only to torch's default
                previous = os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
                os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
                try:
                    state = load(path, None, load_on_all_ranks)
                finally:
                    if previous is None:
                        del os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"]
                    else:
                        os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = previous
            else:
                state = load(path, None, load_on_all_ranks)
        except pickle.UnpicklingError as e:
            raise _unsafe(path, e) from None
        if state.get("cfg") is not None:
            normalize_config(state["cfg"], str(path), args=state.get("args"))
            if arg_overrides:  # after normalising, so that Namespace groups get them too
                overwrite_args_by_name(state["cfg"], arg_overrides)
        if arg_overrides and state.get("args") is not None:
            for name, value in arg_overrides.items():
                setattr(state["args"], name, value)
        return state

    wrapper._xlsr_wrapped = True
    return wrapper


_converted: Dict[str, DictConfig] = {}


def convert_namespace(args: argparse.Namespace) -> DictConfig:
    """fairseq's ``convert_namespace_to_omegaconf``, also for a 2020 fine-tuned file's args,
    and once per process for the same args (each call composes a config with hydra,
    about a second; loading one argparse file converts it several times).

    A fine-tuned file nests the pre-trained model's Namespace as ``args.w2v_args``;
    fairseq turns it into overrides ``model.w2v_args.common.seed=...`` that today's
    hydra refuses (``ConfigKeyError: Key 'common' is not in struct, full_key:
    model.w2v_args.common``). Here the nested Namespace is converted on its own."""
    key = repr(sorted(vars(args).items()))
    if key not in _converted:
        nested = getattr(args, "w2v_args", None)
        if isinstance(nested, argparse.Namespace):
            cfg = convert_namespace_to_omegaconf(
                argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "w2v_args"})
            )
            with open_dict(cfg):
                if isinstance(cfg.model, argparse.Namespace):  # a model without a dataclass
                    cfg.model.w2v_args = convert_namespace(nested)
                else:
                    with open_dict(cfg.model):
                        cfg.model.w2v_args = convert_namespace(nested)
        else:
            cfg = convert_namespace_to_omegaconf(args)
        if len(_converted) >= 8:
            _converted.pop(next(iter(_converted)))
        _converted[key] = cfg
    return copy.deepcopy(_converted[key])


convert_namespace._xlsr_wrapped = True


def _unsafe(path, error: Exception) -> pickle.UnpicklingError:
    found = re.search(r"(?:Unsupported global|GLOBAL)[: ]+\s*(?:GLOBAL )?([\w.]+)", str(error))
    if not found:  # a truncated or corrupt file, not a refused class
        return pickle.UnpicklingError(f"{path}: cannot be unpickled: {error}")
    what = found.group(1)
    return UnsafeCheckpointError(
        f"{path}: refused to load: the file asks to unpickle {what}, which is not a "
        "tensor, a container, an omegaconf config class or one of the fairseq classes "
        "xlsr_plugin allows. A checkpoint from an unknown source may run code when "
        "unpickled. If you trust this file, re-save its tensors and config with torch.save "
        "from a trusted environment (`xlsr-checkpoint clean` writes such a plain file), "
        f"allow the class with torch.serialization.add_safe_globals, or opt in with "
        f"{TRUST_VARIABLE}=1 (the load then runs whatever code the file holds).\n"
        f"torch said: {str(error).splitlines()[0]}"
    )


def read_checkpoint(path: str, mmap: bool = False) -> Dict[str, Any]:
    """The file as stored (no upgrade, no normalisation), under the allow-list, with errors
    that say what is wrong with the file: missing, not a checkpoint, or a refused class."""
    path = str(path)
    state = _torch_load(path, mmap)
    _require_checkpoint(state, path)
    return state


def _require_checkpoint(state, path: str) -> None:
    if not isinstance(state, dict) or "model" not in state or not (
        state.get("cfg") is not None or state.get("args") is not None
    ):
        keys = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
        raise NotACheckpointError(
            f"{path}: not a fairseq checkpoint: expected 'model' and 'cfg' (or 'args'), "
            f"found {keys}"
        )


def _torch_load(path: str, mmap: bool):
    allow_fairseq_checkpoints()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        if trusted():
            _warn_trusted(path)
            return torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        err = _unsafe(path, e)
        if isinstance(err, UnsafeCheckpointError):
            raise err from None
        said = str(e).split("WeightsUnpickler error:", 1)[-1]  # torch's own words, not its advice
        lines = [l.strip() for l in said.splitlines() if l.strip()]
        raise NotACheckpointError(
            f"{path}: not a checkpoint torch can read ({(lines[0] if lines else type(e).__name__)[:200]}); "
            "expected a fairseq .pt file written by torch.save"
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, IndexError) as e:
        # a text file (KeyError: a byte read as a memo key), an empty one (IndexError), ...
        if mmap and "mmap" in str(e):  # an old (non-zip) torch file: read it whole
            return _torch_load(path, mmap=False)
        lines = str(e).splitlines() if not isinstance(e, (KeyError, IndexError)) else []
        why = lines[0][:200] if lines else ("an empty file" if os.path.getsize(path) == 0 else
                                            f"{type(e).__name__} while unpickling")
        if "failed reading zip archive" in why:  # torch.save's zip without its index: cut short
            why = "truncated or damaged: " + why.split(". This is an internal", 1)[0]
        raise NotACheckpointError(
            f"{path}: not a checkpoint torch can read ({why}); "
            "expected a fairseq .pt file written by torch.save"
        ) from None


# ``${oc.env:HOME}``, ``${eval:...}``: an interpolation that calls a resolver. fairseq
# saves configs with every value resolved, so a stored one has no business asking
# omegaconf to read the environment or, where some library registered one, run code.
_RESOLVER_CALL = re.compile(r"\$\{\s*[\w.\-]+\s*:")


def _strings(value, where: str):
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, argparse.Namespace):
        yield from _strings(vars(value), where)
    elif isinstance(value, (DictConfig, ListConfig)):
        yield from _strings(OmegaConf.to_container(value, resolve=False), where)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _strings(v, f"{where}[{i}]")


def check_config_strings(state: Dict[str, Any], path: str = "checkpoint") -> None:
    """Refuse a stored config (``cfg`` or ``args``) with a resolver interpolation, before
    anything resolves it."""
    for key in ("cfg", "args"):
        for where, text in _strings(state.get(key), key):
            if _RESOLVER_CALL.search(text):
                raise UnsafeCheckpointError(
                    f"{path}: refused to load: {where} = {text[:200]!r} asks omegaconf to call a "
                    "resolver when the config is read (fairseq saves configs with every value "
                    "resolved; a resolver can read the environment or, where a library registered "
                    "one, run code). Replace the value in a trusted copy of the config"
                )


def load_checkpoint(path: str) -> Dict[str, Any]:
    """fairseq's ``load_checkpoint_to_cpu`` under the allow-list, with clear errors and the
    configuration normalised (``state["cfg"]`` is a DictConfig, whatever the era)."""
    allow_fairseq_checkpoints()
    if not os.path.isfile(str(path)):
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    return checkpoint_utils.load_checkpoint_to_cpu(str(path))


# -- eras ------------------------------------------------------------------------------
def config_form(cfg) -> Optional[str]:
    """The era a stored configuration object belongs to, from its type (None if absent)."""
    if cfg is None:
        return None
    if isinstance(cfg, argparse.Namespace):
        return "argparse"
    if isinstance(cfg, DictConfig):
        return "dictconfig"
    if isinstance(cfg, dict):
        return "dict"
    raise TypeError(f"not a fairseq configuration: {type(cfg).__name__}")


def checkpoint_era(state: Dict[str, Any]) -> str:
    """``argparse``, ``dictconfig`` or ``dict``, of a state as stored (:func:`read_checkpoint`;
    fairseq's loader turns every era into a DictConfig)."""
    if state.get("cfg") is not None:
        return config_form(state["cfg"])
    if state.get("args") is not None:
        return "argparse"
    raise ValueError("no configuration stored (neither 'cfg' nor 'args')")


def nested_pretraining_config(state: Dict[str, Any]):
    """A fine-tuned checkpoint's ``w2v_args`` as stored (None for a pre-trained one)."""
    cfg = state.get("cfg")
    if cfg is not None:
        model = cfg.get("model")
        return getattr(model, "w2v_args", None) if isinstance(model, argparse.Namespace) else (
            model.get("w2v_args") if model is not None else None)
    return getattr(state.get("args"), "w2v_args", None)


# -- configurations ----------------------------------------------------------------------
# Strings fairseq's models pass to Python's eval() when they are built (wav2vec 2.0's
# feature encoder, wav2vec's aggregator): a stored config could run code through them
# even when its pickle is safe, so they are parsed here, never evaluated.
EVALUATED_FIELDS = ("conv_feature_layers", "conv_aggregator_layers")
_MAX_LAYERS = 10_000


def parse_layer_spec(text: str) -> list:
    """A conv layer list as fairseq writes it (``"[(512, 10, 5)] + [(512, 3, 2)] * 4"``),
    computed from its syntax tree: lists and tuples of numbers, ``+`` and ``*`` only."""

    def value(node):
        if isinstance(node, ast.Constant) and type(node.value) in (int, float, bool):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            return -value(node.operand)
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [value(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Mult) and any(isinstance(x, int) and x > _MAX_LAYERS for x in (left, right)):
                raise ValueError("a repetition too large for a layer list")
            result = left + right if isinstance(node.op, ast.Add) else left * right
            if isinstance(result, list) and len(result) > _MAX_LAYERS:
                raise ValueError("too many layers")
            return result
        raise ValueError(f"{type(node).__name__} is not allowed in a layer list")

    try:
        layers = value(ast.parse(text, mode="eval").body)
    except (SyntaxError, TypeError, ValueError, RecursionError) as e:
        raise ValueError(f"{text!r} is not a list of layer tuples ({e})") from None
    if not isinstance(layers, list) or not all(isinstance(t, tuple) for t in layers):
        raise ValueError(f"{text!r} is not a list of layer tuples")
    return layers


def _check_evaluated_fields(model: DictConfig, where: str, path: str) -> None:
    for name in EVALUATED_FIELDS:
        text = model.get(name)
        if isinstance(text, str):
            try:
                parse_layer_spec(text)
            except ValueError as e:
                raise UnsafeCheckpointError(
                    f"{path}: refused to load: {where}{name} = {text[:200]!r} is not a layer list "
                    f"({e}). fairseq passes this string to Python's eval() when it builds the "
                    "model, so a file could run code through it. Fix the value in a trusted copy "
                    "of the config, e.g. \"[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2\""
                ) from None


def _group_dataclass(group: str, name: Optional[str]):
    from fairseq.models import ARCH_MODEL_NAME_REGISTRY, MODEL_DATACLASS_REGISTRY
    from fairseq.tasks import TASK_DATACLASS_REGISTRY

    if not name:
        return None
    if group == "task":
        return TASK_DATACLASS_REGISTRY.get(name)
    return MODEL_DATACLASS_REGISTRY.get(name) or MODEL_DATACLASS_REGISTRY.get(ARCH_MODEL_NAME_REGISTRY.get(name))


def _from_namespace(ns: argparse.Namespace, dc) -> DictConfig:
    """A Namespace group (flat: every argument of its run) as a config of ``dc``'s fields,
    the way fairseq's ``build_model`` reads one (``from_namespace``)."""
    values = OmegaConf.to_container(OmegaConf.structured(dc.from_namespace(ns)), enum_to_str=True)
    values["_name"] = getattr(ns, "_name", None)
    return OmegaConf.create(values, flags={"allow_objects": True})  # w2v_args may hold more


def _drop_unknown(node: DictConfig, dc, prefix: str) -> List[str]:
    fields = {f.name: f for f in dataclasses.fields(dc)}
    dropped = []
    with open_dict(node):
        for key in list(node.keys()):
            if key not in fields:
                del node[key]
                dropped.append(prefix + str(key))
                continue
            f = fields[key]
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            child = node._get_node(key)
            if dataclasses.is_dataclass(default) and isinstance(child, DictConfig):
                dropped += _drop_unknown(child, type(default), f"{prefix}{key}.")
    return dropped


def _normalize(cfg: DictConfig, prefix: str, path: str) -> List[str]:
    dropped = []
    with open_dict(cfg):
        for group in ("task", "model"):
            node = cfg.get(group)
            name = node.get("_name") if isinstance(node, DictConfig) else getattr(node, "_name", None)
            dc = _group_dataclass(group, name)
            if dc is None:
                continue
            if isinstance(node, argparse.Namespace):  # flat by nature: nothing to report
                cfg[group] = _from_namespace(node, dc)
            elif isinstance(node, DictConfig):
                dropped += _drop_unknown(node, dc, f"{prefix}{group}.")
        model = cfg.get("model")
        if isinstance(model, DictConfig):
            _check_evaluated_fields(model, f"{prefix}model.", path)
        w2v = model.get("w2v_args") if isinstance(model, DictConfig) else None
        if isinstance(w2v, argparse.Namespace):  # as fairseq's Wav2VecEncoder converts it
            with open_dict(model):
                model.w2v_args = convert_namespace(w2v)
            w2v = model.w2v_args
        if isinstance(w2v, DictConfig):
            dropped += _normalize(w2v, f"{prefix}model.w2v_args.", path)
    return dropped


def _unknown_args(args: argparse.Namespace, cfg: DictConfig) -> List[str]:
    """Arguments of a 2020 Namespace that no group of today's config has (fairseq's
    converter ignores them)."""
    from fairseq.registry import REGISTRIES

    # the registry choices, and what fairseq's own _upgrade_state_dict adds to old args
    known = {"arch", "task", "criterion", "optimizer", "lr_scheduler", *REGISTRIES,
             "max_source_positions", "max_target_positions"}
    for group in cfg.values():
        if isinstance(group, argparse.Namespace):  # a legacy component: every argument is its
            return []
        if isinstance(group, DictConfig):
            known.update(group.keys())
    return sorted(k for k in vars(args) if not k.startswith("_") and k not in known and k != "w2v_args")


_reported = set()


def normalize_config(cfg: DictConfig, path: str = "checkpoint", args=None) -> DictConfig:
    """In place: Namespace groups (``task``, ``model``, a nested ``w2v_args``) become
    configs, and fields the registered dataclasses do not know are dropped, with one
    warning per file that names them. A layer list fairseq would ``eval`` that is not one
    raises :class:`UnsafeCheckpointError`."""
    dropped = _normalize(cfg, "", path)
    if args is not None:
        dropped += [f"args.{k}" for k in _unknown_args(args, cfg)]
    if dropped and (path, tuple(dropped)) not in _reported:
        _reported.add((path, tuple(dropped)))
        shown = ", ".join(dropped[:40]) + (f" and {len(dropped) - 40} more" if len(dropped) > 40 else "")
        logger.warning(
            f"{path}: ignoring {len(dropped)} stored config field(s) that today's fairseq does "
            f"not know (written by an older fairseq; not needed to build the model): {shown}"
        )
    return cfg


def stored_config(state: Dict[str, Any], path: str = "checkpoint") -> DictConfig:
    """The whole training configuration of a checkpoint of any era, as one normalised
    DictConfig (a copy; ``args`` converted the way fairseq converts them)."""
    check_config_strings(state, path)
    cfg = state.get("cfg")
    if cfg is None and state.get("args") is not None:
        cfg = convert_namespace(state["args"])
    if cfg is None:
        raise ValueError(f"{path}: no configuration stored (neither 'cfg' nor 'args')")
    cfg = OmegaConf.create(cfg, flags={"allow_objects": True})
    return normalize_config(cfg, path, args=state.get("args"))


def stored_model_config(state: Dict[str, Any], path: str = "checkpoint") -> DictConfig:
    """The model settings a checkpoint was trained with (any era)."""
    model = stored_config(state, path).get("model")
    if model is None:
        raise ValueError(f"{path}: no model configuration stored (neither 'cfg' nor 'args')")
    return model
