"""``xlsr-checkpoint info`` and ``clean``: what a wav2vec 2.0 / XLSR checkpoint is, and a
plain copy of it for release.

``info`` reads a checkpoint of any era (``xlsr_plugin.checkpoint``: 2020 argparse,
the early-2021 pickled ``DictConfig``, plain dicts) without building the model and
reports its era, architecture, dimensions, the ``normalize`` fine-tuning must use,
its size, updates and, for a fine-tuned model, the pre-trained model it nests and its
output dictionary.

``clean`` writes the same model as a plain file: tensors and a plain-dict config
(``args`` None, no Namespace, DictConfig or numpy object; a nested ``w2v_args`` too),
without optimizer state, RNG states or meters. torch loads it with
``weights_only=True`` and no allow-list at all; fairseq and this plugin fine-tune,
continue and decode from it as from the original.

``clean --stock-fairseq`` also renames this plugin's components to fairseq's own
(``xlsr_base``/``xlsr_large`` -> ``wav2vec2``, ``xlsr_ctc`` -> ``wav2vec_ctc``, the tasks
and criterions likewise), keeping only the fields fairseq's dataclasses have: a file
that stock fairseq, transformers' conversion script and other fairseq clients load
without ``--user-dir``. The computation is the same (the plugin's models subclass
fairseq's; what is dropped is training bookkeeping: language sampling, seeded masks, the
stored dictionary check).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import re
import sys
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional

from manifests.formats import atomic_write

ERA_NOTES = {
    "argparse": "argparse: hyper-parameters as an argparse.Namespace (fairseq 2020)",
    "dictconfig": "dictconfig: cfg pickled as an omegaconf DictConfig (fairseq late 2020 - early 2021)",
    "dict": "dict: cfg as plain dicts (fairseq 2021 on)",
}


@dataclass
class CheckpointInfo:
    path: str
    era: str
    finetuned: bool
    w2v_args_era: Optional[str]  # how a fine-tuned file stores its pre-trained config
    w2v_path: Optional[str]
    model: Optional[str]  # the registered model (cfg.model._name)
    arch: Optional[str]  # the 2020 --arch, where stored
    task: Optional[str]
    layers: Optional[int]
    embed_dim: Optional[int]
    ffn_dim: Optional[int]
    heads: Optional[int]
    conv_layers: Optional[int]
    conv_feature_layers: Optional[str]
    extractor_mode: Optional[str]  # "default" = group norm (BASE), "layer_norm" (LARGE, XLSR-53)
    layer_norm_first: Optional[bool]
    normalize: bool
    parameters: int
    num_updates: Optional[int]
    dictionary_size: Optional[int]
    optimizer_state: bool

    def summary(self) -> str:
        rows = [
            ("file", self.path),
            ("era", ERA_NOTES.get(self.era, self.era)),
            ("kind", "fine-tuned (CTC)" if self.finetuned else "pre-trained"),
        ]
        if self.finetuned:
            rows += [("pre-trained config", f"nested w2v_args, stored as {self.w2v_args_era}"),
                     ("pre-trained from", self.w2v_path or "-")]
        rows += [
            ("model", f"{self.model}" + (f" (arch {self.arch})" if self.arch and self.arch != self.model else "")),
            ("task", self.task or "-"),
            ("transformer", f"{self.layers} layers, embed {self.embed_dim}, ffn {self.ffn_dim}, {self.heads} heads, "
                            + ("pre-LN (layer_norm_first)" if self.layer_norm_first else "post-LN")),
            ("feature encoder", f"{self.conv_layers} conv layers, "
                                + ("layer norm" if self.extractor_mode == "layer_norm" else "group norm")
                                + f" ({self.extractor_mode}): {self.conv_feature_layers}"),
            ("normalize", f"{str(self.normalize).lower()} (fine-tune with task.normalize={str(self.normalize).lower()})"),
            ("parameters", f"{self.parameters:,}"),
            ("updates", "-" if self.num_updates is None else f"{self.num_updates:,}"),
        ]
        if self.finetuned:
            rows.append(("dictionary", "-" if self.dictionary_size is None else f"{self.dictionary_size} symbols"))
        rows.append(("optimizer state", "stored" if self.optimizer_state else "none"))
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _finetuned_dictionary_size(state, model_cfg) -> Optional[int]:
    symbols = model_cfg.get("target_symbols")
    if symbols:
        return len(symbols.split())
    proj = state["model"].get("w2v_encoder.proj.weight")
    if proj is not None:
        return int(proj.shape[0])
    dictionary = (state.get("task_state") or {}).get("target_dictionary")
    return len(dictionary) if dictionary is not None else None


def checkpoint_info(path) -> CheckpointInfo:
    """Read ``path`` (config and tensor shapes; the weights are memory-mapped) and describe it."""
    from xlsr_plugin.checkpoint import (
        checkpoint_era, config_form, nested_pretraining_config, parse_layer_spec, read_checkpoint,
        stored_config,
    )

    path = str(path)
    state = read_checkpoint(path, mmap=True)
    cfg = stored_config(state, path)
    model_cfg = cfg.model
    finetuned = model_cfg.get("w2v_args") is not None
    pre = model_cfg.w2v_args if finetuned else cfg
    pre_model, pre_task = pre.get("model") or {}, pre.get("task") or {}
    conv = pre_model.get("conv_feature_layers")
    history = state.get("optimizer_history") or [{}]
    args = state.get("args")
    return CheckpointInfo(
        path=path,
        era=checkpoint_era(state),
        finetuned=finetuned,
        w2v_args_era=config_form(nested_pretraining_config(state)) if finetuned else None,
        w2v_path=model_cfg.get("w2v_path") if finetuned else None,
        model=model_cfg.get("_name"),
        arch=getattr(args, "arch", None),
        task=(cfg.get("task") or {}).get("_name"),
        layers=pre_model.get("encoder_layers"),
        embed_dim=pre_model.get("encoder_embed_dim"),
        ffn_dim=pre_model.get("encoder_ffn_embed_dim"),
        heads=pre_model.get("encoder_attention_heads"),
        conv_layers=len(parse_layer_spec(conv)) if isinstance(conv, str) else None,
        conv_feature_layers=conv,
        extractor_mode=pre_model.get("extractor_mode"),
        layer_norm_first=pre_model.get("layer_norm_first"),
        normalize=bool(pre_task.get("normalize", pre_model.get("normalize", False))),
        parameters=sum(t.numel() for t in state["model"].values() if getattr(t, "is_floating_point", lambda: False)()),
        num_updates=history[-1].get("num_updates"),
        dictionary_size=_finetuned_dictionary_size(state, model_cfg) if finetuned else None,
        optimizer_state=state.get("last_optimizer_state") is not None,
    )


# -- clean --------------------------------------------------------------------------------
PLAIN = (str, int, float, bool, type(None))


def _plain(obj, where: str):
    """``obj`` with numpy scalars as Python numbers, tuples as lists; anything else that
    is not a tensor or plain data is an error naming where it is."""
    import numpy as np
    import torch

    if isinstance(obj, PLAIN) or isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _plain(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise TypeError(f"{where}: a {type(obj).__module__}.{type(obj).__qualname__} is left after cleaning")


def _iterator_state(extra_state) -> Dict[str, Any]:
    itr = (extra_state or {}).get("train_iterator") or {}
    return {"epoch": int(itr.get("epoch", 1) or 1), "iterations_in_epoch": 0, "shuffle": True}


def clean_state(state: Dict[str, Any], path: str = "checkpoint") -> Dict[str, Any]:
    """The release form of a checkpoint of any era (see the module docstring)."""
    import torch
    from omegaconf import OmegaConf

    from xlsr_plugin.checkpoint import stored_config

    cfg = OmegaConf.to_container(stored_config(state, path), resolve=True, enum_to_str=True)
    weights = {}
    for k, v in state["model"].items():
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"{path}: model.{k} is a {type(v).__name__}, not a tensor")
        weights[k] = v
    last = (state.get("optimizer_history") or [{}])[-1]
    best = (last.get("lr_scheduler_state") or {}).get("best")
    clean = {
        "args": None,
        "cfg": cfg,
        "model": weights,
        "criterion": None,
        # what fairseq's loader and trainer read: the names, the update count, a scheduler state
        "optimizer_history": [{
            "criterion_name": str(last.get("criterion_name", "")),
            "optimizer_name": str(last.get("optimizer_name", "")),
            "lr_scheduler_state": {"best": None if best is None else float(best)},
            "num_updates": int(last.get("num_updates", 0) or 0),
        }],
        "task_state": {},
        "extra_state": {"train_iterator": _iterator_state(state.get("extra_state"))},
        "last_optimizer_state": None,
    }
    return _plain(clean, "checkpoint")


def _stock_names():
    """This plugin's registered names -> (fairseq's name, fairseq's config dataclass)."""
    from fairseq.criterions.ctc import CtcCriterionConfig
    from fairseq.criterions.wav2vec_criterion import Wav2VecCriterionConfig
    from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Config
    from fairseq.models.wav2vec.wav2vec2_asr import Wav2Vec2CtcConfig
    from fairseq.tasks.audio_finetuning import AudioFinetuningConfig
    from fairseq.tasks.audio_pretraining import AudioPretrainingConfig

    return {
        "model": {"xlsr_base": ("wav2vec2", Wav2Vec2Config), "xlsr_large": ("wav2vec2", Wav2Vec2Config),
                  "xlsr_ctc": ("wav2vec_ctc", Wav2Vec2CtcConfig)},
        "task": {"xlsr_pretraining": ("audio_pretraining", AudioPretrainingConfig),
                 "xlsr_finetuning": ("audio_finetuning", AudioFinetuningConfig)},
        "criterion": {"xlsr_wav2vec": ("wav2vec", Wav2VecCriterionConfig), "xlsr_ctc": ("ctc", CtcCriterionConfig)},
    }


# tensors of this plugin's models that fairseq's have not (xlsr_ctc's dictionary check)
PLUGIN_BUFFERS = ("dictionary_checksum",)


def stock_config(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """A plain config with this plugin's component names replaced by fairseq's and the
    fields fairseq's dataclasses do not have left out (recursively into ``w2v_args``)."""
    from dataclasses import fields

    cfg = dict(cfg)
    for group, names in _stock_names().items():
        section = cfg.get(group)
        if not isinstance(section, dict) or section.get("_name") not in names:
            continue
        name, dataclass_ = names[section["_name"]]
        known = {f.name for f in fields(dataclass_)}
        section = {k: v for k, v in section.items() if k in known}
        section["_name"] = name
        if isinstance(section.get("w2v_args"), dict):
            section["w2v_args"] = stock_config(section["w2v_args"])
        cfg[group] = section
    if isinstance(cfg.get("common"), dict):
        cfg["common"] = dict(cfg["common"], user_dir=None)
    return cfg


def clean_checkpoint(src, out, stock_fairseq: bool = False) -> Dict[str, Any]:
    """Write the release form of ``src`` to ``out`` atomically; returns what was written.

    A target dictionary pickled in ``task_state`` (fairseq's fine-tuned files) is not
    kept in the file: it is written beside it as ``<out>.dict.txt`` (fairseq reads
    ``dict.<labels>.txt`` from ``task.data``)."""
    import torch

    from xlsr_plugin.checkpoint import read_checkpoint

    src, out = str(src), str(out)
    state = read_checkpoint(src)
    clean = clean_state(state, src)
    symbols = (clean["cfg"].get("model") or {}).get("target_symbols")  # xlsr_ctc's output symbols
    if stock_fairseq:
        clean["cfg"] = stock_config(clean["cfg"])
        clean["model"] = {k: v for k, v in clean["model"].items() if k not in PLUGIN_BUFFERS}
    with atomic_write(out, "wb") as f:  # a temporary file, renamed when torch.save is done
        torch.save(clean, f)
    dictionary = (state.get("task_state") or {}).get("target_dictionary")
    if dictionary is not None:
        dictionary.save(out + ".dict.txt")
    elif stock_fairseq and (clean["cfg"].get("model") or {}).get("_name") == "wav2vec_ctc":
        if symbols:  # fairseq's wav2vec_ctc does not store them: fairseq reads dict.<labels>.txt
            from fairseq.data import Dictionary

            d = Dictionary()  # its own 4 specials first, as the plugin's fine-tuning had them
            if symbols.split()[: d.nspecial] != d.symbols[: d.nspecial]:
                raise ValueError(f"{src}: its symbols do not start with fairseq's specials")
            with atomic_write(out + ".dict.txt") as f:
                f.writelines(f"{s} 1\n" for s in symbols.split()[d.nspecial:])
    return clean



# -- command line ---------------------------------------------------------------------------
def _errors(command: str, run):
    def wrapped(args) -> int:
        try:
            if not os.path.isfile(args.checkpoint):  # before importing fairseq (seconds)
                raise FileNotFoundError(f"{args.checkpoint}: no such checkpoint file")
            return run(args)
        except (FileNotFoundError, FileExistsError, ValueError, TypeError, pickle.UnpicklingError) as e:
            print(f"xlsr-checkpoint {command}: error: {e}", file=sys.stderr)
            return 2

    return wrapped


@contextlib.contextmanager
def _quiet():
    """fairseq's argparse converter composes with hydra, which warns about its own API."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def run_info(args) -> int:
    with _quiet():
        info = checkpoint_info(args.checkpoint)
    print(json.dumps(asdict(info), indent=2) if args.json else info.summary())
    return 0


def run_clean(args) -> int:
    if os.path.abspath(args.checkpoint) == os.path.abspath(args.out):
        raise ValueError(f"{args.out}: write the clean copy to another file than {args.checkpoint}")
    if os.path.exists(args.out) and not args.force:
        raise FileExistsError(f"{args.out} exists: pass --force to replace it")
    with _quiet():
        clean = clean_checkpoint(args.checkpoint, args.out, stock_fairseq=args.stock_fairseq)
    n = sum(t.numel() for t in clean["model"].values())
    before, after = os.path.getsize(args.checkpoint), os.path.getsize(args.out)
    print(f"{args.out}: {len(clean['model'])} tensors ({n:,} values), plain config, no optimizer "
          f"state ({before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB)")
    if os.path.exists(args.out + ".dict.txt"):
        print(f"{args.out}.dict.txt: its output dictionary (fairseq reads dict.<labels>.txt from task.data: "
              "copy it there to decode)")
    return 0


def register(sub) -> None:
    """Add the ``info`` and ``clean`` subparsers (each sets ``run``)."""
    info = sub.add_parser("info", help="era, architecture, dimensions, normalize, size, updates, dictionary",
                          description=__doc__.split("\n\n")[1].replace("\n", " "))
    info.add_argument("checkpoint", help="a fairseq wav2vec 2.0 / XLSR checkpoint (.pt), any era")
    info.add_argument("--json", action="store_true", help="print the fields as one JSON object")
    info.set_defaults(run=_errors("info", run_info))

    clean = sub.add_parser("clean", help="a plain, safe copy for release (no optimizer state, plain config)",
                           description=re.sub(r"\s+", " ", __doc__.split("\n\n")[2]))
    clean.add_argument("checkpoint", help="the checkpoint to clean, any era")
    clean.add_argument("out", help="where to write the clean copy (written atomically)")
    clean.add_argument("--force", action="store_true", help="replace OUT if it exists")
    clean.add_argument("--stock-fairseq", action="store_true",
                       help="name fairseq's own components (wav2vec2, wav2vec_ctc, audio_pretraining, ...) "
                       "so that fairseq and its clients load the file without --user-dir")
    clean.set_defaults(run=_errors("clean", run_clean))


def main(argv=None) -> int:  # ``python -m xlsr_tools.inspect`` (the console script is xlsr-checkpoint)
    parser = argparse.ArgumentParser(prog="xlsr-checkpoint")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
