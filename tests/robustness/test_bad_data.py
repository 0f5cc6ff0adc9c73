"""Bad audio, manifests and labels at the tasks' start-up check and during loading
(issue 14): each gives a clear error naming file and line before any step, or a counted
skip named in the log. In-process, through ``load_dataset`` as fairseq-train calls it;
``test_bad_cli.py`` runs the same rows through the console scripts."""

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from omegaconf import OmegaConf

from conftest import write_language
from manifests.formats import ManifestError
from xlsr_plugin.data import validation
from xlsr_plugin.data.multilingual import LanguageAudioDataset
from xlsr_plugin.data.validation import check_manifest
from xlsr_plugin.errors import InputError
from xlsr_plugin.tasks.xlsr_finetuning import XlsrFinetuningConfig, XlsrFinetuningTask
from xlsr_plugin.tasks.xlsr_pretraining import XlsrPretrainingConfig, XlsrPretrainingTask

SR = 16000


def pretraining(data: Path, **kw) -> XlsrPretrainingTask:
    cfg = XlsrPretrainingConfig(data=str(data), seed=1, tpu=False, train_subset="train", **kw)
    return XlsrPretrainingTask.setup_task(OmegaConf.structured(cfg))


def finetuning(data: Path, **kw) -> XlsrFinetuningTask:
    cfg = XlsrFinetuningConfig(data=str(data), labels="ltr", seed=1, tpu=False, train_subset="train", **kw)
    return XlsrFinetuningTask.setup_task(OmegaConf.structured(cfg))


def corpus(tmp_path: Path, n: int = 4, dur: float = 1.0) -> Path:
    data = tmp_path / "data"
    write_language(data, "train", "aa", [dur] * n)
    return data


def replace_line(manifest: Path, lineno: int, text: str) -> None:
    lines = manifest.read_text().splitlines()
    lines[lineno - 1] = text
    manifest.write_text("\n".join(lines) + "\n")


def audio_of(data: Path, i: int) -> Path:
    return data / "audio" / "aa" / f"train_{i}.flac"


# -- the start-up check: refused, with file, line and what to do ------------------------

def _missing(f: Path):
    f.unlink()


def _empty(f: Path):
    f.write_bytes(b"")


def _corrupt(f: Path):
    f.write_bytes(b"fLaC" + os.urandom(64))


def _truncated(f: Path):
    f.write_bytes(f.read_bytes()[:20])


def _rate_8k(f: Path):
    sf.write(f, np.zeros(8000, dtype="float32"), 8000)


@pytest.mark.parametrize("spoil,said", [
    (_missing, "file not found"), (_empty, "file is empty"), (_corrupt, "unreadable audio"),
    (_truncated, "unreadable audio"), (_rate_8k, "sample rate 8000 Hz"),
])
def test_bad_audio_is_refused_at_start_naming_file_and_line(tmp_path, spoil, said):
    data = corpus(tmp_path)
    spoil(audio_of(data, 2))
    with pytest.raises(InputError) as e:
        pretraining(data).load_dataset("train")
    msg = str(e.value)
    assert f"train_aa.tsv:4: {audio_of(data, 2)}: {said}" in msg  # line 4: header + utterances 0, 1
    assert "1 bad line(s)" in msg and "xlsr-manifest" in msg


def test_a_root_line_that_is_no_folder_is_named_as_line_1(tmp_path):
    """At the start-up check; with ``task.skip_manifest_check`` (no file is looked at
    before training), at the first utterance loaded."""
    data = corpus(tmp_path)
    replace_line(data / "train_aa.tsv", 1, str(tmp_path / "moved_away"))
    said = f"train_aa.tsv:1: the audio root '{tmp_path / 'moved_away'}' is not a folder"
    with pytest.raises(InputError) as e:
        pretraining(data).load_dataset("train")
    assert said in str(e.value) and "file not found" not in str(e.value)  # not every line missing
    task = pretraining(data, skip_manifest_check=True)
    task.load_dataset("train")
    with pytest.raises(InputError, match=said):
        task.dataset("train")[0]


def test_stereo_is_counted_and_reported_once(tmp_path, caplog):
    data = corpus(tmp_path)
    for i in (1, 3):
        sf.write(audio_of(data, i), np.zeros((SR, 2), dtype="float32"), SR)
    with caplog.at_level(logging.WARNING):
        pretraining(data).load_dataset("train")
    said = [r.getMessage() for r in caplog.records if "more than one channel" in r.getMessage()]
    assert len(said) == 1
    assert "2 file(s)" in said[0] and f"line 3: {audio_of(data, 1)} (2 channels)" in said[0]
    caplog.clear()
    with caplog.at_level(logging.INFO):  # the next start trusts the stamp, and still says it
        pretraining(data).load_dataset("train")
    said_again = [r.getMessage() for r in caplog.records if "more than one channel" in r.getMessage()]
    assert any("verified earlier" in r.getMessage() for r in caplog.records) and said_again == said


def test_duplicate_lines_are_counted_and_kept(tmp_path, caplog, monkeypatch):
    data = corpus(tmp_path)
    manifest = data / "train_aa.tsv"
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(lines + [lines[1], lines[1], lines[2]]) + "\n")
    with caplog.at_level(logging.WARNING):
        task = pretraining(data)
        task.load_dataset("train")
    assert len(task.dataset("train")) == 7  # nothing refused, nothing dropped
    said = [r.getMessage() for r in caplog.records if "duplicate line(s)" in r.getMessage()]
    assert len(said) == 1 and "3 duplicate line(s)" in said[0] and "train_0.flac x3" in said[0]

    # the next start takes the count from the manifest's stamp instead of counting again
    monkeypatch.setattr(LanguageAudioDataset, "_count_duplicates", lambda self: pytest.fail("counted again"))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        pretraining(data).load_dataset("train")
    assert [r.getMessage() for r in caplog.records if "duplicate line(s)" in r.getMessage()] == said


# -- clips too short for the model --------------------------------------------------------

def test_min_sample_size_names_what_it_skips(tmp_path, caplog):
    data = corpus(tmp_path)
    sf.write(audio_of(data, 1), np.zeros(100, dtype="float32"), SR)
    replace_line(data / "train_aa.tsv", 3, "train_1.flac\t100")
    with caplog.at_level(logging.WARNING):
        task = pretraining(data, min_sample_size=4000)
        task.load_dataset("train")
    assert len(task.dataset("train")) == 3
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "1 clip(s) shorter than task.min_sample_size (4000 samples) skipped" in said
    assert f"line 3: {audio_of(data, 1)} (100 samples)" in said


def test_a_clip_shorter_than_the_receptive_field_is_refused_before_training(tmp_path):
    data = corpus(tmp_path)
    sf.write(audio_of(data, 1), np.zeros(100, dtype="float32"), SR)
    replace_line(data / "train_aa.tsv", 3, "train_1.flac\t100")
    with pytest.raises(InputError) as e:
        pretraining(data).load_dataset("train")
    msg = str(e.value)
    assert f"train_aa.tsv:3: {audio_of(data, 1)}: 100 samples" in msg
    assert "fewer than 400 samples" in msg and "task.min_sample_size=400" in msg


def test_the_model_says_what_it_needs_and_splits_loaded_before_it_are_checked_again(tmp_path):
    """A tiny pre-training model masks spans of 10 frames with p=0.65: a clip of fewer than
    13 frames (4,240 samples) can be masked whole (fairseq: 'the entire sequence is masked'
    at some update). The split was loaded before the model (as fairseq-train loads valid)."""
    from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Config, Wav2Vec2Model

    data = corpus(tmp_path)
    sf.write(audio_of(data, 1), np.zeros(4100, dtype="float32"), SR)
    replace_line(data / "train_aa.tsv", 3, "train_1.flac\t4100")
    task = pretraining(data)
    task.load_dataset("train")  # 4,100 samples is more than one frame: fine without a model
    model = Wav2Vec2Model(Wav2Vec2Config(
        encoder_layers=1, encoder_embed_dim=32, encoder_ffn_embed_dim=32, encoder_attention_heads=1,
        final_dim=16, latent_vars=4, conv_feature_layers="[(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16, 2, 2)] * 2"))
    with pytest.raises(InputError) as e:
        task.learn_size_floor(model)
    msg = str(e.value)
    assert f"train_aa.tsv:3: {audio_of(data, 1)}: 4100 samples" in msg
    assert "13 feature frames" in msg and "task.min_sample_size=4240" in msg


@pytest.mark.parametrize("p,length,frames", [(0.65, 10, 13), (0.1, 2, 5), (0.5, 4, 7), (0.0, 10, 1)])
def test_masked_frames_floor_is_where_a_whole_mask_becomes_impossible(p, length, frames):
    """Against fairseq's own mask sampler: below the floor some draw masks everything."""
    from fairseq.data.data_utils import compute_mask_indices

    assert validation.masked_frames_floor(p, length) == frames
    if frames > 1:
        np.random.seed(0)
        whole = 0
        for _ in range(300):
            try:
                mask = compute_mask_indices((1, frames - 1), None, p, length, min_masks=2)
                whole += int(mask.all())
            except ValueError:  # fairseq-fixed refuses a whole mask
                whole += 1
        assert whole > 0
        for _ in range(300):
            assert not compute_mask_indices((1, frames), None, p, length, min_masks=2).all()


# -- audio that breaks while training: skipped, counted, named; a limit ----------------

def test_nan_and_deleted_files_are_skipped_counted_and_then_stop_the_run(tmp_path, caplog):
    data = corpus(tmp_path, n=5)
    nan = np.full(SR, np.nan, dtype="float32")
    sf.write(audio_of(data, 0), nan, SR, format="WAV", subtype="FLOAT")  # the header check passes
    task = pretraining(data, max_load_failures=2)
    task.load_dataset("train")
    ds = task.dataset("train")
    audio_of(data, 3).unlink()  # deleted after the start-up check
    with caplog.at_level(logging.WARNING):
        items = [ds[i] for i in range(5)]
    assert [it["source"] is None for it in items] == [True, False, False, True, False]
    said = " ".join(r.getMessage() for r in caplog.records)
    assert f"train_aa.tsv:2: {audio_of(data, 0)}: 16000 NaN/Inf sample(s)" in said
    assert f"train_aa.tsv:5: {audio_of(data, 3)}: file not found; utterance skipped, now and whenever it is " \
        "drawn again (load failure 2 of at most 2" in said
    batch = ds.collater(items)
    assert batch["id"].tolist() == [1, 2, 4] and batch["lang"].tolist() == [0, 0, 0]
    assert batch["net_input"]["source"].shape[0] == 3
    # drawn again (a resampled language does, many times an epoch): skipped, not counted again
    assert ds[3]["source"] is None and ds[0]["source"] is None and ds.load_failures == 2
    audio_of(data, 4).unlink()
    with pytest.raises(InputError, match=r"3 utterances failed to load, more than task.max_load_failures=2"):
        ds[4]


def test_a_failed_item_leaves_its_label_behind(tmp_path):
    data = corpus(tmp_path)
    (data / "train_aa.ltr").write_text("a b |\nb a |\na a |\nb b |\n")
    (data / "dict.ltr.txt").write_text("a 1\nb 1\n| 1\n")
    task = finetuning(data)
    task.load_dataset("train")
    ds = task.dataset("train")
    audio_of(data, 1).unlink()
    batch = ds.collater([ds[i] for i in range(4)])
    assert batch["id"].tolist() == [0, 2, 3]
    labels = [task.target_dictionary.string(t[t != task.target_dictionary.pad()]) for t in batch["target"]]
    assert labels == ["a b |", "a a |", "b b |"]


def test_the_load_failure_limit_is_a_count(tmp_path):
    with pytest.raises(InputError, match="task.max_load_failures=-1"):
        pretraining(corpus(tmp_path), max_load_failures=-1)


# -- labels ------------------------------------------------------------------------------

def _labelled(tmp_path, labels: bytes) -> Path:
    data = corpus(tmp_path)
    (data / "train_aa.ltr").write_bytes(labels)
    (data / "dict.ltr.txt").write_text("a 1\nb 1\n| 1\n")
    return data


def test_a_label_line_that_is_not_utf8_is_named(tmp_path):
    data = _labelled(tmp_path, b"a |\nb |\na \xe9 |\nb |\n")
    with pytest.raises(InputError, match=r"train_aa.ltr:3: not UTF-8 .*iconv"):
        finetuning(data).load_dataset("train")


def test_an_empty_label_line_is_refused_before_training(tmp_path):
    data = _labelled(tmp_path, b"a |\n\nb |\n  \n")
    with pytest.raises(InputError) as e:
        finetuning(data).load_dataset("train")
    msg = str(e.value)
    assert "2 empty label line(s), at line(s) 2, 4" in msg and "train_aa.tsv line 3" in msg


def test_an_empty_label_of_a_skipped_clip_is_no_problem(tmp_path):
    data = _labelled(tmp_path, b"a |\n\nb |\nb |\n")
    sf.write(audio_of(data, 1), np.zeros(100, dtype="float32"), SR)
    replace_line(data / "train_aa.tsv", 3, "train_1.flac\t100")
    task = finetuning(data, min_sample_size=1000)
    task.load_dataset("train")
    assert len(task.dataset("train")) == 3


def test_errors_are_input_errors_and_still_manifest_errors(tmp_path):
    """Callers that caught ManifestError still do; hydra prints InputError compactly."""
    from hydra.errors import CompactHydraException

    assert issubclass(InputError, ManifestError) and issubclass(InputError, CompactHydraException)
    path = tmp_path / "train_xx.tsv"
    path.write_text(f"{tmp_path}\nno-tab-here\n")
    with pytest.raises(InputError, match=r"train_xx.tsv:2: expected"):
        check_manifest(path, "xx", SR, progress=False)


# -- a manifest changed between runs ------------------------------------------------------

def _iterator(task):
    task.load_dataset("train")
    return task.get_batch_iterator(task.dataset("train"), max_tokens=20000, seed=1, epoch=1)


def test_resuming_mid_epoch_on_a_changed_manifest_is_refused(tmp_path, caplog):
    data = corpus(tmp_path, n=6)
    itr = _iterator(pretraining(data))
    batches = itr.next_epoch_itr(shuffle=True)
    next(batches)
    saved = itr.state_dict()  # what fairseq stores in checkpoint_last.pt
    assert saved["iterations_in_epoch"] == 1 and set(saved["manifests"]) == {"train_aa.tsv"}

    _iterator(pretraining(data)).load_state_dict(saved)  # unchanged: resumes
    manifest = data / "train_aa.tsv"
    manifest.write_text("\n".join(manifest.read_text().splitlines()[:-1]) + "\n")  # one line fewer
    with pytest.raises(InputError) as e:
        _iterator(pretraining(data)).load_state_dict(saved)
    msg = str(e.value)
    assert "train_aa.tsv changed since the checkpoint" in msg and "after 1 batch(es) of epoch 1" in msg
    assert "checkpoint.reset_dataloader=true" in msg

    at_boundary = dict(saved, epoch=2, iterations_in_epoch=0)
    with caplog.at_level(logging.WARNING):
        _iterator(pretraining(data)).load_state_dict(at_boundary)
    assert any("epoch 2 is drawn from them as they are now" in r.getMessage() for r in caplog.records)
