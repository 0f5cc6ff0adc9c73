"""Every recipe YAML is checked against the dataclasses fairseq would build it into,
so a stale or misspelt key fails here rather than on a cluster."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

import xlsr_plugin  # noqa: F401  (registers our dataclasses)
from fairseq.dataclass.configs import FairseqConfig
from fairseq.models import MODEL_DATACLASS_REGISTRY
from fairseq.registry import REGISTRIES
from fairseq.tasks import TASK_DATACLASS_REGISTRY

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").rglob("*.yaml"))
NAMED = {"task": TASK_DATACLASS_REGISTRY, "model": MODEL_DATACLASS_REGISTRY}


def _dataclass_for(group, node):
    if group in NAMED or group in REGISTRIES:
        name = node.get("_name")
        registry = NAMED.get(group) or REGISTRIES[group]["dataclass_registry"]
        assert name in registry, f"{group}._name={name!r} is not registered"
        return registry[name]
    field = FairseqConfig.__dataclass_fields__.get(group)
    assert field is not None, f"unknown top-level group {group!r}"
    return field.type


def test_recipes_exist():
    names = {p.relative_to(p.parents[1]).as_posix() for p in RECIPES}
    for required in ("pretraining/tiny.yaml", "pretraining/xlsr_base.yaml",
                     "pretraining/xlsr_large.yaml", "pretraining/monolingual_base.yaml",
                     "pretraining/english_base.yaml"):
        assert required in names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipe_matches_registered_dataclasses(path):
    cfg = OmegaConf.load(path)
    for group, node in cfg.items():
        if group in ("defaults", "hydra"):
            continue
        schema = OmegaConf.structured(_dataclass_for(group, node))
        OmegaConf.merge(schema, node)  # raises on a key the dataclass does not have
