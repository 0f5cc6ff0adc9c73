"""Checkpoints in every format fairseq released wav2vec 2.0 / XLSR models in, made in the test.

=================  ===========================  ===============================================
era                written by                   how the configuration is stored
=================  ===========================  ===============================================
``argparse``       fairseq <= 0.10 (2020)       ``args``: one flat ``argparse.Namespace``; no
                                                ``cfg`` (``xlsr_53_56k.pt`` as first released)
``dictconfig``     fairseq master, late 2020 -  ``args`` None, ``cfg``: a pickled omegaconf
                   early 2021                   ``DictConfig`` (the re-uploaded
                                                ``xlsr_53_56k.pt``, fairseq #3042/#3161/#3526)
``dictconfig_ns``  the same                     ... with a group (``cfg.model``) that is still
                                                an ``argparse.Namespace``, as #3526 prints
``dict``           fairseq >= March 2021        ``args`` None, ``cfg``: plain dicts (XLS-R, MMS)
=================  ===========================  ===============================================

Each is made from a checkpoint of this plugin (pre-trained or CTC fine-tuned) under
fairseq's own names (``wav2vec2`` / ``audio_pretraining``, ``wav2vec_ctc`` /
``audio_finetuning``), with the keys fairseq wrote beside the config in that era
(``optimizer_history``, ``extra_state`` with meters, iterator and numpy values,
``last_optimizer_state``; from 2021 on also ``criterion`` and ``task_state``, which holds
a fine-tuned file's target ``Dictionary`` object). The structured configs come from fairseq's own
``convert_namespace_to_omegaconf``, as fairseq itself upgraded argparse files. A
fine-tuned file nests the pre-trained model's configuration under ``w2v_args``, in the
form of its era (a Namespace in 2020, a DictConfig or a dict later).

``extra`` adds fields today's fairseq does not know (``{"task.eval_wer": False}``: the
re-uploaded XLSR-53 file's pre-training task carries fine-tuning keys, s3prl #376).
"""

import argparse
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch
from fairseq.data import Dictionary
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from omegaconf import OmegaConf, open_dict

ERAS = ("argparse", "dictconfig", "dictconfig_ns", "dict")

# the groups a 2020 fairseq command line mixed into one Namespace (a name two groups share
# keeps the first one's value)
GROUPS = ("common", "distributed_training", "dataset", "optimization", "checkpoint",
          "task", "model", "criterion", "optimizer", "lr_scheduler")
PRETRAINED_NAMES = dict(arch="wav2vec2", task="audio_pretraining", criterion="wav2vec",
                        optimizer="adam", lr_scheduler="polynomial_decay")
FINETUNED_NAMES = dict(arch="wav2vec_ctc", task="audio_finetuning", criterion="ctc",
                       optimizer="adam", lr_scheduler="tri_stage")
PLUGIN_ONLY_WEIGHTS = ("dictionary_checksum",)


def flat_args(cfg: Dict[str, Any], names: Dict[str, str]) -> argparse.Namespace:
    """One flat Namespace from a config's groups, as a 2020 command line parsed it."""
    flat = {}
    for group in GROUPS:
        for k, v in (cfg.get(group) or {}).items():
            if k != "_name" and not isinstance(v, dict):  # nested configs are no command-line flag
                flat.setdefault(k, v)
    flat.update(names)
    return argparse.Namespace(**flat)


def _plain(cfg) -> Dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else cfg


def _put(cfg, dotted: str, value) -> None:
    """Set ``a.b.c`` in a DictConfig or dict (whose groups may be Namespaces), unknown keys too."""
    *path, last = dotted.split(".")
    node = cfg
    for p in path:
        node = node[p] if isinstance(node, dict) or OmegaConf.is_config(node) else getattr(node, p)
    if isinstance(node, argparse.Namespace):
        setattr(node, last, value)
    elif OmegaConf.is_config(node):
        with open_dict(node):
            node[last] = value
    else:
        node[last] = value


def _with_namespace_model(cfg, args: argparse.Namespace):
    """``cfg.model`` as the Namespace fairseq's converter made for models without a dataclass."""
    model = argparse.Namespace(**vars(args), _name=args.arch)
    cfg = OmegaConf.create(OmegaConf.to_container(cfg), flags={"allow_objects": True})
    cfg.model = model
    OmegaConf.set_struct(cfg, True)
    return cfg


def era_config(cfg: Dict[str, Any], era: str, names: Dict[str, str]):
    """(args, cfg) as that era stored a plain config ``cfg`` under fairseq's ``names``."""
    args = flat_args(cfg, names)
    if era == "argparse":
        return args, None
    structured = convert_namespace_to_omegaconf(args)  # a struct DictConfig, as fairseq made
    if era == "dictconfig":
        return None, structured
    if era == "dictconfig_ns":
        return None, _with_namespace_model(structured, args)
    if era == "dict":
        return None, OmegaConf.to_container(structured, resolve=True)
    raise ValueError(f"unknown era {era!r}; one of {ERAS}")


def _extra_state(state) -> Dict[str, Any]:
    """The training state beside the weights, as fairseq's ``save_checkpoint`` kept it
    since 0.10: the iterator, the validation score and best score (numpy scalars, as
    meter values came), the source's meters and the training time."""
    extra = dict(state.get("extra_state") or {})
    extra.setdefault("metrics", OrderedDict())
    extra["train_iterator"] = {"epoch": 2, "iterations_in_epoch": 0, "shuffle": True}
    extra["val_loss"] = np.float64(3.25)
    extra["best"] = np.float64(3.25)
    extra["previous_training_time"] = 12.5
    return extra


def make_checkpoint(src, dst, era: str, extra: Optional[Dict[str, Any]] = None) -> Path:
    """Write ``dst``: the checkpoint ``src`` of this plugin in the format of ``era``.

    A CTC fine-tuned ``src`` (``cfg.model.w2v_args`` set) becomes a ``wav2vec_ctc`` file
    whose ``w2v_args`` is stored in the same era's form."""
    state = torch.load(src, map_location="cpu", weights_only=False)
    cfg = _plain(state["cfg"])
    finetuned = cfg["model"].get("w2v_args") is not None
    if finetuned:
        w2v_args, w2v_cfg = era_config(_plain(cfg["model"]["w2v_args"]), era, PRETRAINED_NAMES)
        model = {k: v for k, v in cfg["model"].items() if k not in ("w2v_args", "target_symbols")}
        args, new_cfg = era_config({**cfg, "model": model}, era, FINETUNED_NAMES)
        if args is not None:
            args.w2v_args = w2v_args
        elif OmegaConf.is_config(new_cfg):
            with open_dict(new_cfg):
                new_cfg.model.w2v_args = w2v_cfg if w2v_cfg is not None else w2v_args
        else:
            new_cfg["model"]["w2v_args"] = w2v_cfg
    else:
        args, new_cfg = era_config(cfg, era, PRETRAINED_NAMES)
    for dotted, value in (extra or {}).items():
        if args is None:
            _put(new_cfg, dotted, value)
        else:  # one flat Namespace (and the nested one of w2v_args): the group is no level
            setattr(args.w2v_args if ".w2v_args." in f".{dotted}" else args, dotted.rsplit(".", 1)[-1], value)

    weights = {k: v for k, v in state["model"].items() if k not in PLUGIN_ONLY_WEIGHTS}
    out = {
        "args": args,
        "cfg": new_cfg,
        "model": weights,
        "optimizer_history": [{
            "criterion_name": "CtcCriterion" if finetuned else "Wav2vecCriterion",
            "optimizer_name": "FairseqAdam",
            "lr_scheduler_state": {"best": np.float64(3.25)},
            "num_updates": state["optimizer_history"][-1]["num_updates"],
        }],
        "extra_state": _extra_state(state),
        "last_optimizer_state": state.get("last_optimizer_state"),
    }
    if era == "argparse":
        del out["cfg"]  # 2020 files have no cfg key at all
    elif era == "dict":  # today's trainer.state_dict adds these two
        out.update(criterion=None, task_state={})
        if finetuned:  # audio_finetuning's state: its target Dictionary object, pickled
            labels = cfg["task"].get("labels") or "ltr"
            out["task_state"]["target_dictionary"] = Dictionary.load(
                str(Path(cfg["task"]["data"]) / f"dict.{labels}.txt"))
    torch.save(out, dst)
    return Path(dst)
