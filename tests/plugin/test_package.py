"""The package registers its components once, documents every option, and leaves an
environment in which the wider ecosystem (transformers) still imports."""

import dataclasses
import importlib
import subprocess
import sys

import pytest

import xlsr_plugin
from fairseq.criterions import CRITERION_DATACLASS_REGISTRY
from fairseq.models import MODEL_DATACLASS_REGISTRY
from fairseq.tasks import TASK_DATACLASS_REGISTRY

OURS = [
    (TASK_DATACLASS_REGISTRY, "xlsr_pretraining"),
    (MODEL_DATACLASS_REGISTRY, "xlsr_base"),
    (MODEL_DATACLASS_REGISTRY, "xlsr_large"),
    (CRITERION_DATACLASS_REGISTRY, "xlsr_wav2vec"),
]


def test_components_are_registered_and_reimport_is_harmless():
    importlib.reload(xlsr_plugin)  # what a test import followed by --user-dir amounts to
    for registry, name in OURS:
        assert name in registry


def test_user_dir_import_after_package_import():
    code = ("import xlsr_plugin, argparse; from fairseq import utils; "
            f"utils.import_user_module(argparse.Namespace(user_dir={str(xlsr_plugin.__path__[0])!r})); "
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


@pytest.mark.parametrize("registry,name", OURS)
def test_every_field_we_declare_has_help(registry, name):
    dc = registry[name]
    ours = {f.name for f in dataclasses.fields(dc)} - {
        f.name for base in dc.__mro__[1:] if dataclasses.is_dataclass(base)
        and not base.__module__.startswith("xlsr_plugin") for f in dataclasses.fields(base)
    }
    overridden = {n for n in dc.__dict__.get("__annotations__", {})}
    for f in dataclasses.fields(dc):
        if f.name in ours or f.name in overridden:
            assert len(f.metadata.get("help", "")) > 10, f"{name}.{f.name} has no help text"


def test_xlsr_base_follows_the_paper_and_large_the_librivox_settings():
    base, large = MODEL_DATACLASS_REGISTRY["xlsr_base"](), MODEL_DATACLASS_REGISTRY["xlsr_large"]()
    assert (base.encoder_layers, base.encoder_embed_dim, base.encoder_ffn_embed_dim,
            base.encoder_attention_heads) == (12, 768, 3072, 8)
    assert (large.encoder_layers, large.encoder_embed_dim, large.encoder_ffn_embed_dim,
            large.encoder_attention_heads) == (24, 1024, 4096, 16)
    for cfg in (base, large):
        assert (cfg.latent_groups, cfg.latent_vars, cfg.dropout, cfg.quantize_targets) == (2, 320, 0.1, True)
    assert large.layer_norm_first and large.extractor_mode == "layer_norm" and large.final_dim == 768


def test_transformers_still_imports():
    """fairseq-fixed pulls torchaudio, whose library breaks beside torch 2.13; the
    set-up removes it, so `import transformers` (and its torch integration) works."""
    pytest.importorskip("transformers")
    code = "import transformers, torch; from transformers import Wav2Vec2Config; print(transformers.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


def test_plugin_import_registers_components_and_nothing_else():
    """``--user-dir xlsr_plugin`` loads fairseq components: not the demo, not offline tools."""
    out = subprocess.run([sys.executable, "-c", (
        "import sys, xlsr_plugin\n"
        "extra = [m for m in sys.modules if m.split('.')[0] == 'xlsr_demo' or m == 'manifests.ngram']\n"
        "assert not extra, extra")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]

