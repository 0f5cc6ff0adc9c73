"""Loading a checkpoint never runs code, at any entry point, in any checkpoint era.

Every file here carries a payload: a pickled object whose ``__reduce__`` would create a
trace file if it were ever unpickled (the test first proves that it would, with
``weights_only=False``). Each entry point that reads a checkpoint must refuse the file
with an error that names it, and leave no trace. Entry points that share a loader
function are called in-process over every era; the fairseq CLIs run once each (one era
each, in this process). ``XLSR_TRUST_CHECKPOINTS=1`` is the explicit opt-in past the
allow-list, with a warning.
"""

import logging
import os
import sys
from pathlib import Path

import pytest
import torch
from fairseq import checkpoint_utils, options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from omegaconf import OmegaConf

from conftest import PLUGIN, TINY_MODEL_ARGS, make_multilingual_data, pretrain_command

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugin"))
from eras import ERAS, make_checkpoint  # noqa: E402  (tests/plugin/eras.py)

from xlsr_plugin.checkpoint import load_checkpoint, read_checkpoint  # noqa: E402
from xlsr_tools import analyze, checkpoint as checkpoint_cli, extract  # noqa: E402


class Payload:
    def __init__(self, trace: Path):
        self.trace = trace

    def __reduce__(self):
        return (os.system, (f"touch {self.trace}",))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Data, the trace path, and a checkpoint with the payload in every era."""
    root = tmp_path_factory.mktemp("untrusted")
    data = make_multilingual_data(root / "data")
    args = options.parse_args_and_arch(options.get_training_parser(), [
        str(data), "--user-dir", str(PLUGIN), "--task", "xlsr_pretraining", "--arch", "xlsr_base",
        "--criterion", "xlsr_wav2vec", *TINY_MODEL_ARGS])
    cfg = convert_namespace_to_omegaconf(args)
    model = tasks.setup_task(cfg.task).build_model(cfg.model)
    clean = root / "clean.pt"
    torch.save({"args": None, "cfg": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
                "model": model.state_dict(), "extra_state": {},
                "optimizer_history": [{"criterion_name": "Wav2vecCriterion", "optimizer_name": "Adam",
                                       "lr_scheduler_state": {}, "num_updates": 0}]}, clean)
    trace = root / "trace"
    evil = {}
    for era in ERAS:
        path = make_checkpoint(clean, root / f"{era}.pt", era)
        state = torch.load(path, weights_only=False)
        state["extra_state"]["note"] = Payload(trace)  # written last: wherever it sits, it's refused
        if era == "argparse":
            state["args"].post_process = Payload(trace)  # and inside the configuration
        torch.save(state, path)
        evil[era] = path
    assert not trace.exists()
    return data, trace, evil


def test_the_payload_would_run(files, tmp_path):
    """Without the allow-list (torch's weights_only=False), loading leaves the trace."""
    _, trace, evil = files
    torch.load(evil["dict"], weights_only=False)
    assert trace.exists()
    trace.unlink()


def refused(call, path: Path, trace: Path, capsys, cli: bool = False) -> None:
    """``call()`` refuses ``path``: it raises (a console script: returns 2 and prints an
    error, no traceback), with the file's name."""
    try:
        code = call()
    except Exception as e:  # noqa: BLE001  (whatever the entry point raises, it must name the file)
        assert not cli, f"a traceback, not an error message: {e!r}"
        message = str(e)
    else:
        assert code == 2, "loaded"
        message = capsys.readouterr().err
    assert path.name in message and ("refused to load" in message or "Unsupported global" in message), message
    assert not trace.exists(), "the payload ran"


def in_process_entry_points(data: Path, out: Path):
    """name -> function(checkpoint) that loads it as that entry point does."""
    return {
        # model.init_checkpoint, xlsr-extract / xlsr-analyze (representations.load_encoder), to-hf
        "load_checkpoint": lambda p: load_checkpoint(str(p)),
        # fairseq's own loader, wrapped: --path, model.w2v_path, restore_file / checkpoint_last.pt
        "fairseq load_checkpoint_to_cpu": lambda p: checkpoint_utils.load_checkpoint_to_cpu(str(p)),
        # model.w2v_path's first read (xlsr_ctc), xlsr-checkpoint info / clean
        "read_checkpoint": lambda p: read_checkpoint(str(p), mmap=True),
        "xlsr-checkpoint info": lambda p: checkpoint_cli.main(["info", str(p)]),
        "xlsr-checkpoint clean": lambda p: checkpoint_cli.main(["clean", str(p), str(out / f"{p.stem}.clean.pt")]),
        "xlsr-checkpoint to-hf": lambda p: checkpoint_cli.main(["to-hf", str(p), str(out / f"{p.stem}.hf")]),
        "xlsr-extract": lambda p: extract.main([str(p), str(data / "dev_aa.tsv"), "--out", str(out / p.stem),
                                                "--num-workers", "0", "--no-progress"]),
        "xlsr-analyze codes": lambda p: analyze.main(["codes", str(p), str(data), "--out", str(out / p.stem),
                                                      "--split", "dev", "--num-workers", "0", "--no-progress"]),
    }


ENTRY_POINTS = list(in_process_entry_points(Path("."), Path(".")))


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("era", ERAS)
def test_entry_point_refuses_a_payload(files, entry, era, tmp_path, capsys):
    data, trace, evil = files
    if entry == "xlsr-checkpoint to-hf":
        pytest.importorskip("transformers")
    load = in_process_entry_points(data, tmp_path)[entry]
    refused(lambda: load(evil[era]), evil[era], trace, capsys, cli=entry.startswith("xlsr-"))


def test_from_hf_refuses_a_pickled_weight_file(files, tmp_path, capsys):
    """xlsr-checkpoint from-hf reads a transformers directory: a pytorch_model.bin with a
    payload is refused too (by transformers' own weights_only loading)."""
    transformers = pytest.importorskip("transformers")
    _, trace, _ = files
    hf = tmp_path / "hf"
    config = transformers.Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                          intermediate_size=64, conv_dim=(32,), conv_stride=(5,),
                                          conv_kernel=(10,), num_feat_extract_layers=1,
                                          architectures=["Wav2Vec2ForPreTraining"])
    config.save_pretrained(hf)
    torch.save({"wav2vec2.masked_spec_embed": Payload(trace)}, hf / "pytorch_model.bin")
    code = checkpoint_cli.main(["from-hf", str(hf), str(tmp_path / "out.pt")])
    err = capsys.readouterr().err
    assert code != 0 and "pytorch_model.bin" in err, err
    assert not trace.exists()


def fairseq_main(program: str, argv) -> None:
    """``fairseq-train`` / ``fairseq-generate`` in this process: their ``main`` on the config
    their command line gives (what the console script runs, without a new interpreter)."""
    from fairseq_cli import generate, train

    parser = options.get_training_parser() if program == "fairseq-train" else options.get_generation_parser()
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(parser, [str(a) for a in argv]))
    (train if program == "fairseq-train" else generate).main(cfg)


def test_fairseq_clis_refuse_a_payload(files, tmp_path, capsys):
    """fairseq's own entry points, eras spread over them: fine-tuning's model.w2v_path,
    fairseq-generate's --path, and resuming from a checkpoint_last.pt in save_dir (a
    subprocess run of model.init_checkpoint is in tests/plugin/test_checkpoints.py)."""
    data, trace, evil = files
    (data / "dict.phn.txt").write_text("a 1\n")
    for tsv in data.glob("*.tsv"):
        tsv.with_suffix(".phn").write_text("a\n" * (len(tsv.read_text().splitlines()) - 1))
    resume = tmp_path / "resume"
    resume.mkdir()
    (resume / "checkpoint_last.pt").write_bytes(evil["dictconfig_ns"].read_bytes())
    runs = {
        evil["argparse"]: ["fairseq-train", data, "--user-dir", PLUGIN, "--task", "xlsr_finetuning",
                           "--labels", "phn", "--arch", "xlsr_ctc", "--w2v-path", evil["argparse"],
                           "--criterion", "xlsr_ctc", "--max-update", "1", "--save-dir", tmp_path / "ft",
                           "--valid-subset", "dev", "--cpu",
                           "--optimizer", "adam", "--lr", "0.001", "--max-tokens", "64000", "--num-workers", "0"],
        evil["dictconfig"]: ["fairseq-generate", data, "--user-dir", PLUGIN, "--task", "xlsr_finetuning",
                             "--labels", "phn", "--path", evil["dictconfig"], "--gen-subset", "dev_aa",
                             "--max-tokens", "64000", "--num-workers", "0", "--cpu"],
        resume / "checkpoint_last.pt": pretrain_command(data, resume, "--max-update", "1", "--cpu"),
    }
    for path, (program, *argv) in runs.items():
        refused(lambda: fairseq_main(program, argv), path, trace, capsys)


def test_explicit_opt_in_loads_with_a_warning(files, monkeypatch, caplog, tmp_path):
    """XLSR_TRUST_CHECKPOINTS=1 unpickles without the allow-list (here the payload runs:
    that is what the opt-in means), and says so, naming the file."""
    _, trace, evil = files
    monkeypatch.setenv("XLSR_TRUST_CHECKPOINTS", "1")
    caplog.set_level(logging.WARNING)
    state = load_checkpoint(str(evil["dict"]))
    assert "model" in state and trace.exists()
    assert f"{evil['dict']}: XLSR_TRUST_CHECKPOINTS=1: unpickled without" in caplog.text
    plain = tmp_path / "plain.pt"  # a plain copy, written under the opt-in, loads without it
    assert checkpoint_cli.main(["clean", str(evil["dict"]), str(plain)]) == 0
    trace.unlink()
    monkeypatch.delenv("XLSR_TRUST_CHECKPOINTS")
    assert read_checkpoint(str(plain))["model"].keys() == state["model"].keys() and not trace.exists()
    with pytest.raises(Exception, match="XLSR_TRUST_CHECKPOINTS=1"):  # the refusal names the opt-in
        load_checkpoint(str(evil["dict"]))
    assert not trace.exists()
