"""Every recipe YAML is checked against the dataclasses fairseq would build it into,
so a stale or misspelt key fails here rather than on a cluster; every value names its
source (recipes/SOURCES.md), and values taken from a fairseq recipe equal that recipe as
fairseq installs it; one-language recipes refuse to start without task.languages."""

import functools
import re
from pathlib import Path

import fairseq
import pytest
from omegaconf import OmegaConf

import xlsr_plugin  # noqa: F401  (registers our dataclasses)
from fairseq import tasks
from fairseq.dataclass.configs import FairseqConfig
from fairseq.models import MODEL_DATACLASS_REGISTRY
from fairseq.registry import REGISTRIES
from fairseq.tasks import TASK_DATACLASS_REGISTRY

ROOT = Path(__file__).resolve().parents[2] / "recipes"
RECIPES = sorted(ROOT.rglob("*.yaml"))
NAMED = {"task": TASK_DATACLASS_REGISTRY, "model": MODEL_DATACLASS_REGISTRY}

# fairseq's own recipes, as installed with it (fairseq-fixed ships examples/; a fairseq
# without them skips the comparisons)
WAV2VEC = Path(fairseq.__file__).parent / "examples" / "wav2vec"
FAIRSEQ_FILES = {
    "vox_1h": "config/finetuning/vox_1h.yaml",
    "vox_10h": "config/finetuning/vox_10h.yaml",
    "vox_100h": "config/finetuning/vox_100h.yaml",
    "vox_960h": "config/finetuning/vox_960h.yaml",
    "xlsr_ft": "xlsr/config/finetune.yaml",
    "w2v_base": "config/pretraining/wav2vec2_base_librispeech.yaml",
    "w2v_large": "config/pretraining/wav2vec2_large_librivox.yaml",
}
OTHER_TAGS = {"xlsr_readme", "#2997", "#3526", "paper", "plugin", "site", "toy", "unverified"}
# recipes that follow one fairseq recipe: every value it sets must be the recipe's
# effective value, unless the recipe sets that key with another source tag
FOLLOWS = {
    "finetuning/mls_1h.yaml": "vox_1h", "finetuning/mls_10h.yaml": "vox_10h",
    "finetuning/mls_100h.yaml": "vox_100h", "finetuning/mls_full.yaml": "vox_960h",
    "finetuning/commonvoice_phonemes.yaml": "vox_1h", "finetuning/multilingual.yaml": "vox_1h",
    "finetuning/babel_chars.yaml": "xlsr_ft",
    "pretraining/xlsr_large.yaml": "w2v_large", "pretraining/xlsr_base.yaml": "w2v_base",
    "pretraining/english_base.yaml": "w2v_base", "pretraining/monolingual_base.yaml": "w2v_base",
}
SINGLE_LANGUAGE = {
    "finetuning/commonvoice_phonemes.yaml", "finetuning/babel_chars.yaml", "finetuning/mls_1h.yaml",
    "finetuning/mls_10h.yaml", "finetuning/mls_100h.yaml", "finetuning/mls_full.yaml",
    "pretraining/monolingual_base.yaml", "pretraining/english_base.yaml", "finetuning/demo.yaml",
}
VALUE_LINE = re.compile(r"^  (\w+):\s*(.*?)\s*(?:#\s*(.*))?$")
TAG = re.compile(r"\[([^\]]+)\]")


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _dataclass_for(group, node):
    if group in NAMED or group in REGISTRIES:
        name = node.get("_name")
        registry = NAMED.get(group) or REGISTRIES[group]["dataclass_registry"]
        assert name in registry, f"{group}._name={name!r} is not registered"
        return registry[name]
    field = FairseqConfig.__dataclass_fields__.get(group)
    assert field is not None, f"unknown top-level group {group!r}"
    return field.type


def effective(cfg, group):
    """``group`` of a recipe (ours or fairseq's) merged over its registered dataclass."""
    node = cfg[group]
    return OmegaConf.to_container(OmegaConf.merge(OmegaConf.structured(_dataclass_for(group, node)), node))


def same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return a == b


def traced_values(path: Path):
    """``(group, key, tags, line)`` of every value line of a recipe."""
    group, out = None, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if re.match(r"^\w+:\s*$", line):
            group = line.rstrip(":").strip()
        elif (m := VALUE_LINE.match(line)) and group is not None:
            out.append((group, m.group(1), TAG.findall(m.group(3) or ""), line))
    return out


def fairseq_recipe(tag):
    path = WAV2VEC / FAIRSEQ_FILES[tag]
    if not path.is_file():
        pytest.skip(f"{path} is not installed with this fairseq")
    return OmegaConf.load(path)


@functools.lru_cache(maxsize=None)
def fairseq_group(tag, group) -> dict:
    """``group`` of fairseq's recipe ``tag`` with fairseq's defaults for what it leaves out."""
    return effective(fairseq_recipe(tag), group)


def test_recipes_exist():
    names = {_name(p) for p in RECIPES}
    for required in ("pretraining/tiny.yaml", "pretraining/xlsr_base.yaml",
                     "pretraining/xlsr_large.yaml", "pretraining/monolingual_base.yaml",
                     "pretraining/english_base.yaml"):
        assert required in names
    assert set(FOLLOWS) | SINGLE_LANGUAGE <= names


@pytest.mark.parametrize("path", RECIPES, ids=_name)
def test_recipe_matches_registered_dataclasses(path):
    cfg = OmegaConf.load(path)
    for group, node in cfg.items():
        if group in ("defaults", "hydra"):
            continue
        schema = OmegaConf.structured(_dataclass_for(group, node))
        OmegaConf.merge(schema, node)  # raises on a key the dataclass does not have


@pytest.mark.parametrize("path", RECIPES, ids=_name)
def test_every_value_names_its_source(path):
    values = traced_values(path)
    loaded = OmegaConf.load(path)
    assert len(values) == sum(len(loaded[g]) for g in loaded), "a value line the check did not parse"
    for group, key, tags, line in values:
        assert tags, f"{_name(path)}: {line.strip()!r} has no [source] tag (recipes/SOURCES.md)"
        unknown = set(tags) - OTHER_TAGS - set(FAIRSEQ_FILES)
        assert not unknown, f"{_name(path)}: {line.strip()!r}: unknown tag(s) {unknown}"


@pytest.mark.parametrize("path", RECIPES, ids=_name)
def test_values_tagged_with_a_fairseq_recipe_equal_it(path):
    cfg = OmegaConf.to_container(OmegaConf.load(path))
    readme = (WAV2VEC / "xlsr" / "README.md")
    for group, key, tags, line in traced_values(path):
        for tag in tags:
            if tag in FAIRSEQ_FILES:
                theirs = fairseq_group(tag, group)[key]
                assert same(cfg[group][key], theirs), f"{_name(path)}: {line.strip()!r}, but {tag} has {theirs!r}"
            elif tag == "xlsr_readme" and readme.is_file():
                assert re.search(rf"\| {cfg[group][key]}\s*$", readme.read_text(), re.M), line


@pytest.mark.parametrize("name", sorted(FOLLOWS))
def test_recipe_follows_its_fairseq_recipe(name):
    """Every value the fairseq recipe sets is this recipe's effective value (defaults of
    the plugin's dataclasses included), unless this recipe sets the key under another tag."""
    tag = FOLLOWS[name]
    theirs = OmegaConf.to_container(fairseq_recipe(tag))
    ours = OmegaConf.load(ROOT / name)
    other_source = {(g, k) for g, k, tags, _ in traced_values(ROOT / name) if tag not in tags}
    differ = []
    for group, values in theirs.items():
        mine = effective(ours, group)
        for key, value in values.items():
            if (group, key) not in other_source and not same(mine.get(key), value):
                differ.append(f"{group}.{key}: {mine.get(key)!r} (fairseq {tag}: {value!r})")
    assert not differ, f"{name} differs from {tag} without saying why: " + "; ".join(differ)


def test_xlsr53_values_from_the_authors():
    """fairseq#2997 / #3526: XLSR-53 is LibriVox LARGE with lr 0.001 and dropout 0.0;
    fine-tuning on 10 h follows vox_10h (lr 1e-4, not XLS-R's 3e-4)."""
    large = OmegaConf.load(ROOT / "pretraining/xlsr_large.yaml")
    assert large.optimization.lr == [0.001] and effective(large, "model")["dropout"] == 0.0
    assert OmegaConf.load(ROOT / "finetuning/mls_10h.yaml").optimization.lr == [0.0001]


@pytest.mark.parametrize("path", RECIPES, ids=_name)
def test_one_language_recipes_require_task_languages(path):
    """fairseq merges a recipe over the task's defaults, which turns an unset ??? into
    null: a ??? languages means nothing without single_language."""
    task = OmegaConf.load(path).task
    required = OmegaConf.is_missing(task, "languages")
    if _name(path) in SINGLE_LANGUAGE:
        assert task.get("single_language") is True
        assert required or len(str(task.languages).split(",")) == 1
    else:
        assert not task.get("single_language", False)
    if required:
        assert task.get("single_language") is True, f"{_name(path)}: languages ??? without single_language"


def _task_of(recipe: str, data: Path, *overrides: str):
    """The recipe's task group, built as fairseq-hydra-train builds it (the same merge)."""
    cfg = OmegaConf.merge(OmegaConf.structured(FairseqConfig), OmegaConf.load(ROOT / recipe),
                          OmegaConf.from_dotlist([f"task.data={data}", *overrides]))
    return cfg.task


@pytest.mark.parametrize("recipe", ["pretraining/monolingual_base.yaml", "finetuning/mls_10h.yaml",
                                    "finetuning/commonvoice_phonemes.yaml"])
def test_one_language_recipe_refuses_a_folder_of_several(shared_multilingual_data, recipe):
    data, split = shared_multilingual_data, "dataset.train_subset=train"  # mls_10h reads train-10h
    with pytest.raises(ValueError) as e:
        tasks.setup_task(_task_of(recipe, data, split))
    msg = str(e.value)
    assert str(data) in msg and "aa, bb, cc" in msg and "task.languages=aa" in msg
    task = tasks.setup_task(_task_of(recipe, data, split, "task.languages=bb"))
    assert task.languages == ["bb"]
    with pytest.raises(ValueError, match="names 2 languages"):
        tasks.setup_task(_task_of(recipe, data, split, "task.languages=aa,bb"))
    # a task rebuilt from a checkpoint (the pre-training task inside xlsr_ctc) trains
    # nothing; a checkpoint stores null, never ???
    rebuilt = tasks.setup_task(_task_of(recipe, data, split, "task.languages=null"), from_checkpoint=True)
    assert rebuilt.languages == ["aa", "bb", "cc"]


def test_multilingual_recipes_still_take_every_language(shared_multilingual_data):
    task = tasks.setup_task(_task_of("finetuning/multilingual.yaml", shared_multilingual_data))
    assert task.languages == ["aa", "bb", "cc"]
    english = tasks.setup_task(_task_of("pretraining/english_base.yaml", shared_multilingual_data,
                                        "task.languages=cc"))
    assert english.languages == ["cc"]
