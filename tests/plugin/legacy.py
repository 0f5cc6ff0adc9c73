"""Build checkpoints in the old (pre-hydra) fairseq format, like ``xlsr_53_56k.pt``.

Those files keep their hyper-parameters as one flat ``argparse.Namespace`` under
``args`` (``arch='wav2vec2'``, ``task='audio_pretraining'``), which torch >= 2.6 refuses
to unpickle by default. Tests make one from a tiny checkpoint of this plugin.
"""

import argparse

import numpy as np
import torch
from omegaconf import OmegaConf

GROUPS = ("common", "task", "model", "criterion", "optimization", "dataset", "checkpoint")


def make_legacy_checkpoint(src, dst) -> argparse.Namespace:
    state = torch.load(src, weights_only=False)
    cfg = state["cfg"]
    if OmegaConf.is_config(cfg):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    flat = {}
    for group in GROUPS:
        for k, v in (cfg.get(group) or {}).items():
            if k != "_name":
                flat.setdefault(k, v)
    flat.update(arch="wav2vec2", task="audio_pretraining", criterion="wav2vec")
    args = argparse.Namespace(**flat)
    torch.save(
        {
            "args": args,
            "model": state["model"],
            "optimizer_history": [{"criterion_name": "Wav2vecCriterion", "optimizer_name": "Adam",
                                   "lr_scheduler_state": {}, "num_updates": 0}],
            "extra_state": {"np_rng": np.random.RandomState(0).get_state(), "epoch": 1},
            "last_optimizer_state": None,
        },
        dst,
    )
    return args
