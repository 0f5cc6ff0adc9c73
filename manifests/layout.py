"""The one place that names manifest files.

fairseq reads a split ``S`` of an audio task from ``<data>/S.tsv`` (and the labels from
``<data>/S.<labels>``); XLSR keeps one manifest per language, so a split of language
``L`` is the fairseq split ``S_L``. Writers (the ``manifests`` builders) and readers
(the plugin's tasks) both build every name through this module, so they cannot drift.

Split names must not contain ``_`` (it separates split and language); use ``-`` instead
(``train-1h``, ``train-10h``). Language codes may contain ``-`` (``zh-CN``). A split is a
*training* split when it is ``train`` or ``train-<anything>`` (:func:`is_training_split`):
dictionary counts come from those only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import List, Optional, Union

from xlsr_core.labels import LABEL_KINDS  # noqa: F401  (the label file suffixes: ltr, wrd, phn)

PathLike = Union[str, os.PathLike]

# one speaker id per manifest line ("-" if unknown), written by the builders for `stats`
SPEAKER_LABELS = "spk"
REJECTS_SUFFIX = "rejects.tsv"
TRAIN_SPLIT = "train"  # and train-1h, train-10h, train-sub, ...: see is_training_split
VERIFIED_SUFFIX = ".verified"

_SPLIT_RE = re.compile(r"^[A-Za-z0-9.\-]+$")
_LANG_RE = re.compile(r"^[A-Za-z0-9\-]+$")


def check_split(split: str) -> str:
    if not _SPLIT_RE.match(split):
        raise ValueError(
            f"split name {split!r} may only contain letters, digits, '.' and '-' "
            "('_' separates split and language in file names)"
        )
    return split


def check_language(lang: str) -> str:
    if not _LANG_RE.match(lang):
        raise ValueError(
            f"language code {lang!r} may only contain letters, digits and '-'"
        )
    return lang


def subset_name(split: str, lang: Optional[str] = None) -> str:
    """The fairseq subset name (``--valid-subset``, ``--gen-subset``) of a split."""
    check_split(split)
    return split if lang is None else f"{split}_{check_language(lang)}"


def split_subset(subset: str) -> tuple:
    """Inverse of :func:`subset_name`: ``"test_es"`` -> ``("test", "es")``."""
    split, sep, lang = subset.partition("_")
    return (split, lang) if sep else (split, None)


def is_training_split(split: str) -> bool:
    """``train``, ``train-1h``, ``train-10h``, ``train-sub``: labels a model is trained on
    (``dev``, ``test``, ``eval`` are not)."""
    return split == TRAIN_SPLIT or split.startswith(TRAIN_SPLIT + "-")


def manifest_path(data: PathLike, split: str, lang: Optional[str] = None) -> Path:
    return Path(data) / f"{subset_name(split, lang)}.tsv"


def label_path(
    data: PathLike, split: str, lang: Optional[str], labels: str
) -> Path:
    return Path(data) / f"{subset_name(split, lang)}.{labels}"


def dict_path(data: PathLike, labels: str, lang: Optional[str] = None) -> Path:
    """``dict.<labels>.txt`` (joint, what fairseq's audio tasks load) or
    ``dict.<labels>.<lang>.txt`` (one language)."""
    if lang is None:
        return Path(data) / f"dict.{labels}.txt"
    return Path(data) / f"dict.{labels}.{check_language(lang)}.txt"


def dict_languages(data: PathLike, labels: str) -> List[str]:
    """Languages that have a ``dict.<labels>.<lang>.txt`` in ``data``, sorted."""
    prefix, suffix = f"dict.{labels}.", ".txt"
    if not os.path.isdir(data):
        return []
    langs = []
    for entry in sorted(os.listdir(data)):
        lang = entry[len(prefix): -len(suffix)] if entry.startswith(prefix) and entry.endswith(suffix) else ""
        if lang and _LANG_RE.match(lang):
            langs.append(lang)
    return langs


def verified_path(manifest: PathLike) -> Path:
    """The verification stamp beside a manifest: ``train_es.tsv`` -> ``train_es.tsv.verified``
    (its format: ``manifests.formats.write_stamp``)."""
    manifest = Path(manifest)
    return manifest.with_name(f"{manifest.name}{VERIFIED_SUFFIX}")


def rejects_path(data: PathLike, split: str, lang: Optional[str] = None) -> Path:
    return Path(data) / f"{subset_name(split, lang)}.{REJECTS_SUFFIX}"


def discover_languages(data: PathLike, split: str) -> List[str]:
    """Languages that have a ``<split>_<lang>.tsv`` manifest in ``data``, sorted."""
    check_split(split)
    if not os.path.isdir(data):
        return []
    prefix = f"{split}_"
    langs = []
    for entry in sorted(os.listdir(data)):
        if entry.startswith(prefix) and entry.endswith(".tsv"):
            lang = entry[len(prefix) : -len(".tsv")]
            if _LANG_RE.match(lang):
                langs.append(lang)
    return langs
