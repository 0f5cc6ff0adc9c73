"""Numerical faults in training: inf/NaN batches are skipped and counted, the quantiser and
the contrastive logits stay fp32 under autocast, and a collapsed codebook is reported.

fairseq-train's ``--bf16`` means TPU training (fairseq: "use bfloat16; implies --tpu"),
so bf16 is exercised here the way the plugin's code meets it on a GPU with AMP: under
``torch.autocast('cpu', dtype=torch.bfloat16)``, calling the task's ``train_step``
directly. One end-to-end ``fairseq-train`` run (fp32, CPU) gets a NaN loss injected.
"""

import copy
import logging
import math
import os
import subprocess

import pytest
import torch
from fairseq import checkpoint_utils, options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq.logging import metrics
from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Model
from omegaconf import open_dict

from conftest import BIN, PLUGIN, REPO, TINY_MODEL_ARGS, make_multilingual_data, pretrain_command
from xlsr_plugin.tasks.step_guards import SKIPPED, TooManyNonFiniteBatches


class Optimizer:
    """What the task's ``train_step`` asks of fairseq's optimizer (fp32/bf16: no scaler)."""

    scaler = None

    def __init__(self, model):
        self.model = model

    def backward(self, loss):
        loss.backward()

    def zero_grad(self):
        for p in self.model.parameters():
            p.grad = None


INJECT_NAN = (
    "import sys; from fairseq_cli.train import cli_main  # first: it sets up logging\n"
    "from xlsr_plugin.criterions.xlsr_wav2vec import XlsrWav2vecCriterion as C\n"
    "forward, calls = C.forward, []\n"
    "def nan_third(self, model, sample, reduce=True):\n"
    "    loss, size, log = forward(self, model, sample, reduce)\n"
    "    calls.append(model.training)\n"
    "    return (loss * float('nan'), size, log) if sum(calls) == 3 and model.training else (loss, size, log)\n"
    "C.forward = nan_third\n"
    "sys.argv[0] = 'fairseq-train'; cli_main()\n"
)


@pytest.fixture(scope="module")
def injected_nan_run(tmp_path_factory):
    """fairseq-train, 5 updates, the 3rd batch's loss NaN: started in the background by
    the first test (through ``setup``), checked by the last, so that it runs beside the
    in-process tests. (save dir, process)"""
    root = tmp_path_factory.mktemp("nan_run")
    data = make_multilingual_data(root / "data")
    args = pretrain_command(data, root / "save", "--max-update", "5", "--disable-validation")[1:]
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    run = subprocess.Popen([str(BIN / "python"), "-c", INJECT_NAN, *map(str, args)], cwd=REPO, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield root / "save", run
    if run.poll() is None:
        run.kill()
        run.communicate()


@pytest.fixture(scope="module")
def setup(tmp_path_factory, injected_nan_run):
    data = make_multilingual_data(tmp_path_factory.mktemp("numerics") / "data")

    args = options.parse_args_and_arch(options.get_training_parser(), [
        str(data), "--user-dir", str(PLUGIN), "--task", "xlsr_pretraining", "--arch", "xlsr_base",
        "--criterion", "xlsr_wav2vec", *TINY_MODEL_ARGS, "--max-sample-size", "16000",
        "--language-batches", "one", "--seed", "1"])
    base = convert_namespace_to_omegaconf(args)

    def build(**task_options):
        """Task (with ``task_options`` set), tiny model, criterion and 4 training batches."""
        cfg = copy.deepcopy(base)
        with open_dict(cfg):
            cfg.task.update(task_options)
        task = tasks.setup_task(cfg.task)
        task.load_dataset("train")
        torch.manual_seed(1)
        model = task.build_model(cfg.model)
        criterion = task.build_criterion(cfg.criterion)
        ds = task.dataset("train")
        ds.set_epoch(1)
        batches = ds.batch_by_size(ds.ordered_indices(), max_tokens=40000)
        samples = [ds.collater([ds[int(i)] for i in b]) for b in batches[:4]]
        return task, model, criterion, samples

    return build


def nan_after(criterion, calls):
    """``criterion``, whose loss is NaN on the listed calls (0-based)."""
    seen = []

    def forward(model, sample):
        loss, size, log = criterion(model, sample)
        seen.append(1)
        return (loss * float("nan"), size, log) if len(seen) - 1 in calls else (loss, size, log)

    return forward


def step(task, model, criterion, sample, update=0):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return task.train_step(sample, model, criterion, Optimizer(model), update)


def test_nan_loss_under_bf16_autocast_is_skipped_and_counted(setup, caplog):
    task, model, criterion, samples = setup(max_nonfinite_skips=1)
    bad = nan_after(criterion, {0, 2})
    Optimizer(model).zero_grad()
    loss, size, log = step(task, model, bad, samples[0])
    assert log[SKIPPED] == 1 and size == 0 and task.nonfinite.skips == 1
    assert log["loss"] == 0 and log["_xlsr:batches"] == 0  # same keys, nothing counted
    assert all(p.grad is None for p in model.parameters())  # no backward pass
    assert "batch skipped (1 so far)" in caplog.text

    loss, size, log = step(task, model, bad, samples[1], update=1)  # the run goes on
    assert log[SKIPPED] == 0 and size > 0 and math.isfinite(float(loss))
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)

    with metrics.aggregate() as agg:
        task.reduce_metrics([dict(log, **{SKIPPED: 1}), log], criterion)
    assert agg.get_smoothed_values()["nonfinite_skips"] == 1
    assert task.state_dict()["nonfinite_skips"] == 1  # stored in checkpoints

    with pytest.raises(TooManyNonFiniteBatches, match=r"update 3: loss is nan.*\(language:index\): [a-c]{2}:\d+.*max_nonfinite_skips=1"):
        step(task, model, bad, samples[2], update=2)


def test_nan_gradient_drops_the_update(setup):
    task, model, criterion, samples = setup()
    first = next(model.parameters())

    def nan_gradient(model, sample):
        loss, size, log = criterion(model, sample)
        return loss + (first.sum() * 0).abs().sqrt(), size, log  # finite loss, NaN gradient

    loss, size, log = step(task, model, nan_gradient, samples[0])
    assert math.isfinite(float(loss.sum())) is True and log[SKIPPED] == 1 and size == 0
    assert all(p.grad is None for p in model.parameters()) and task.nonfinite.skips == 1


def test_quantizer_and_logits_stay_fp32_under_autocast(setup, monkeypatch):
    _, model, _, samples = setup()
    seen = {}

    def hook(module, inputs, out):
        seen["codebook logits"] = out.dtype

    model.quantizer.weight_proj.register_forward_hook(hook)
    gumbel = torch.nn.functional.gumbel_softmax

    def recording(logits, *args, **kwargs):
        seen["gumbel softmax"] = logits.dtype
        return gumbel(logits, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "gumbel_softmax", recording)
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**samples[0]["net_input"])
        contrastive = out["x"].dtype
        projected = model.final_proj(out["x"].new_zeros(1, model.final_proj.in_features)).dtype
    assert projected == torch.bfloat16  # autocast is on: the rest of the model runs in bf16
    assert seen == {"codebook logits": torch.float32, "gumbel softmax": torch.float32}
    assert contrastive == torch.float32

    # fairseq's own classes, under the same autocast, give bf16 codebook logits and logits
    seen.clear()
    model.quantizer.__class__ = model.quantizer.__class__.__bases__[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        stock = Wav2Vec2Model.forward(model, **samples[0]["net_input"])["x"].dtype
    assert stock == torch.float32  # compute_preds is still the plugin's
    assert seen["codebook logits"] == torch.bfloat16


def test_collapsed_codebook_warns_after_the_configured_updates(setup, caplog):
    task, model, criterion, samples = setup(collapse_updates=3)
    with torch.no_grad():  # constant codebook logits: every frame picks the same codes
        model.quantizer.weight_proj.weight.zero_()
        model.quantizer.weight_proj.bias.zero_()
    caplog.set_level(logging.WARNING)
    for update in range(2):
        step(task, model, criterion, samples[update], update)
    assert "codebook collapse" not in caplog.text
    step(task, model, criterion, samples[2], 2)
    assert "codebook collapse? update 3: for the whole model, code perplexity per codebook 1.00" in caplog.text
    assert task.codebook_monitor.warnings >= 1


def test_fairseq_train_survives_an_injected_nan_batch(injected_nan_run):
    """fairseq-train (fp32): the 3rd training batch's loss is made NaN. Stock fairseq stops
    with FloatingPointError; with the plugin the batch is skipped, logged and stored."""
    save, run = injected_nan_run
    out = run.communicate(timeout=300)[0]
    assert run.returncode == 0, out[-6000:]
    assert "FloatingPointError" not in out
    assert "update 3: loss is nan; batch skipped (1 so far)" in out
    assert "nonfinite_skips=1" in out
    state = checkpoint_utils.load_checkpoint_to_cpu(str(save / "checkpoint_last.pt"))
    assert state["optimizer_history"][-1]["num_updates"] == 5
    assert state["task_state"]["nonfinite_skips"] == 1
