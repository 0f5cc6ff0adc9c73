"""Bad fine-tuning input is refused before training, with file, line and symbol named;
and the fine-tuning recipes only use keys the registered dataclasses have."""

import dataclasses
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import OmegaConf
from fairseq.criterions import CRITERION_DATACLASS_REGISTRY
from fairseq.dataclass.configs import FairseqConfig
from fairseq.models import MODEL_DATACLASS_REGISTRY
from fairseq.optim import OPTIMIZER_DATACLASS_REGISTRY
from fairseq.optim.lr_scheduler import LR_SCHEDULER_DATACLASS_REGISTRY
from fairseq.tasks import TASK_DATACLASS_REGISTRY

import xlsr_plugin  # noqa: F401
from conftest import REPO
from manifests.formats import ManifestError
from test_finetuning import SR, write_tone_split
from xlsr_plugin.models.xlsr_ctc import NormalizeMismatchError, XlsrCtcConfig, XlsrCtcModel
from xlsr_plugin.scoring.scorers import CerScorerConfig, PerScorerConfig
from xlsr_plugin.tasks.xlsr_finetuning import (
    XlsrFinetuningConfig,
    XlsrFinetuningTask,
)
from xlsr_plugin.data.validation import (
    LabelLengths, check_label_lengths, ctc_min_frames, default_feature_frames, feature_frames_of,
)


@pytest.fixture
def data(tmp_path):
    data = tmp_path / "data"
    write_tone_split(data, "train", "aa", 6)
    (data / "dict.phn.txt").write_text("".join(f"{p} 1\n" for p in "aeiou"))
    return data


def setup(data, **kw):
    cfg = XlsrFinetuningConfig(data=str(data), labels="phn", seed=1, tpu=False, train_subset="train", **kw)
    return XlsrFinetuningTask.setup_task(OmegaConf.structured(cfg))


def test_clean_data_loads_with_targets(data):
    task = setup(data)
    task.load_dataset("train")
    batch = task.dataset("train").collater([task.dataset("train")[i] for i in range(2)])
    assert batch["target"].shape[0] == 2 and batch["lang"].tolist() == [0, 0]


def test_missing_symbols_are_listed_with_counts(data):
    phn = data / "train_aa.phn"
    lines = phn.read_text().splitlines()
    lines[2] += " x x"
    lines[4] += " x ts"
    phn.write_text("\n".join(lines) + "\n")
    with pytest.raises(ManifestError) as e:
        setup(data).load_dataset("train")
    msg = str(e.value)
    assert "train_aa.phn: 2 symbol(s) not in" in msg
    assert "'x' x3 (first at line 3)" in msg and "'ts' x1 (first at line 5)" in msg


def test_label_and_manifest_line_counts_must_agree(data):
    phn = data / "train_aa.phn"
    phn.write_text("\n".join(phn.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(ManifestError, match=r"train_aa.phn has 5 lines but .*train_aa.tsv lists 6"):
        setup(data).load_dataset("train")


def test_missing_labels_or_dictionary(data):
    (data / "train_aa.phn").unlink()
    with pytest.raises(FileNotFoundError, match="train_aa.phn not found"):
        setup(data).load_dataset("train")
    (data / "dict.phn.txt").unlink()
    with pytest.raises(FileNotFoundError, match="dict.phn.txt not found"):
        setup(data).target_dictionary
    with pytest.raises(ValueError, match="task.labels"):
        XlsrFinetuningTask.setup_task(XlsrFinetuningConfig(data=str(data), seed=1, tpu=False, train_subset="train"))


def test_one_language_uses_its_own_dictionary(data):
    """One language: dict.phn.<lang>.txt; several: the joint one; a one-language run in a
    folder of several languages without its own dictionary is refused, with the fix."""
    write_tone_split(data, "train", "bb", 4)
    with pytest.raises(FileNotFoundError) as e:
        setup(data, languages="aa").target_dictionary
    msg = str(e.value)
    assert "dict.phn.aa.txt not found" in msg and "(bb)" in msg
    assert f"task.target_dictionary={data / 'dict.phn.txt'}" in msg
    task = setup(data, languages="aa", target_dictionary=str(data / "dict.phn.txt"))  # a file: as it is
    assert task.dictionary_path() == data / "dict.phn.txt"

    (data / "dict.phn.aa.txt").write_text("".join(f"{p} 1\n" for p in "uoiea"))
    task = setup(data, languages="aa")
    assert task.dictionary_path() == data / "dict.phn.aa.txt"
    assert task.target_dictionary.symbols[4:] == list("uoiea")
    assert setup(data).dictionary_path() == data / "dict.phn.txt"  # aa and bb: joint


def test_audio_too_short_for_its_labels(data):
    tsv = data / "train_aa.tsv"
    lines = tsv.read_text().splitlines()
    name = lines[3].split("\t")[0]
    import soundfile as sf

    sf.write(Path(lines[0]) / name, torch.zeros(1600).numpy(), SR)  # 0.1 s = 4 frames
    lines[3] = f"{name}\t1600"
    tsv.write_text("\n".join(lines) + "\n")
    with pytest.raises(ManifestError, match=r"train_aa.tsv:4 / .*train_aa.phn:3: 1600 samples = 4 frames"):
        setup(data).load_dataset("train")
    with pytest.raises(ManifestError, match="longer than task.max_sample_size"):
        setup(data, max_sample_size=2000).load_dataset("train")


def test_ctc_frame_arithmetic():
    assert default_feature_frames(torch.tensor([16000])).item() == 49  # 20 ms frames, 25 ms receptive field
    assert ctc_min_frames("a a b".split()) == 4  # a blank between the repeated a's


def test_frames_are_asked_of_the_model():
    """A model whose feature encoder strides twice as far makes half the frames: an
    utterance that fits the standard encoder can be too short for it."""
    from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Config, Wav2Vec2Model

    cfg = Wav2Vec2Config(conv_feature_layers="[(8, 10, 10)] + [(8, 3, 2)] * 4 + [(8, 2, 2)] * 2",
                         encoder_layers=1, encoder_embed_dim=16, encoder_ffn_embed_dim=16,
                         encoder_attention_heads=1, final_dim=8, latent_vars=4, conv_pos=4, conv_pos_groups=2)
    frames_of = feature_frames_of(Wav2Vec2Model(cfg))
    assert frames_of(torch.tensor([16000])).item() == 24
    lengths = LabelLengths.of("x.phn", "x.tsv", ["a e " * 15], [16000], [0])  # 30 labels
    check_label_lengths(lengths, default_feature_frames, None)  # 49 frames: enough
    with pytest.raises(ManifestError, match=r"x.tsv:2 / x.phn:1: 16000 samples = 24 frames, but its 30 labels"):
        check_label_lengths(lengths, frames_of, None)


def test_normalize_mismatch_is_explained(data, tmp_path):
    ckpt = tmp_path / "pretrained.pt"
    torch.save({"cfg": {"task": {"_name": "xlsr_pretraining", "normalize": True}, "model": {}}, "model": {}}, ckpt)
    task = setup(data)
    cfg = XlsrCtcConfig(w2v_path=str(ckpt), normalize=False, data=str(data))
    with pytest.raises(NormalizeMismatchError, match=r"normalize=True .* task.normalize=False. Set task.normalize=true"):
        XlsrCtcModel.build_model(cfg, task)


GROUP_REGISTRIES = {
    "task": TASK_DATACLASS_REGISTRY, "model": MODEL_DATACLASS_REGISTRY,
    "criterion": CRITERION_DATACLASS_REGISTRY, "optimizer": OPTIMIZER_DATACLASS_REGISTRY,
    "lr_scheduler": LR_SCHEDULER_DATACLASS_REGISTRY,
}


@pytest.mark.parametrize("recipe", sorted((REPO / "recipes" / "finetuning").glob("*.yaml")), ids=lambda p: p.stem)
def test_recipe_keys_exist(recipe):
    cfg = yaml.safe_load(recipe.read_text())
    top = {f.name: f for f in dataclasses.fields(FairseqConfig)}
    for group, values in cfg.items():
        assert group in top, f"{recipe.name}: unknown group {group}"
        if group in GROUP_REGISTRIES:
            dc = GROUP_REGISTRIES[group][values["_name"]]
        else:
            dc = top[group].type
        names = {f.name for f in dataclasses.fields(dc)} | {"_name"}
        stale = set(values) - names
        assert not stale, f"{recipe.name}: {group} has no {sorted(stale)}"
    assert cfg["task"]["_name"] == "xlsr_finetuning" and cfg["model"]["_name"] == "xlsr_ctc"
    assert cfg["criterion"]["_name"] == "xlsr_ctc"


@pytest.mark.parametrize("dc", [XlsrFinetuningConfig, XlsrCtcConfig, PerScorerConfig, CerScorerConfig])
def test_new_fields_have_help(dc):
    parents = [b for b in dc.__mro__[1:] if dataclasses.is_dataclass(b)]
    inherited = {f.name for b in parents if not b.__module__.startswith("xlsr_plugin") for f in dataclasses.fields(b)}
    for f in dataclasses.fields(dc):
        if f.name not in inherited or dc is XlsrCtcConfig and f.name == "w2v_path":
            assert len(f.metadata.get("help", "")) > 20, f"{dc.__name__}.{f.name} lacks help"
