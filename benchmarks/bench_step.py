"""One pre-training step (forward, backward, optimizer) of ``xlsr_base`` / ``xlsr_large``
against transformers' ``Wav2Vec2ForPreTraining`` with the same dimensions, batch and masks.

Both models are built from one fairseq config: the plugin's registered architecture
(``XlsrBaseConfig`` / ``XlsrLargeConfig``, what ``recipes/pretraining/xlsr_*.yaml`` train)
and, for transformers, the ``Wav2Vec2Config`` that ``xlsr-checkpoint to-hf`` would write for
it (``xlsr_tools.hf_mapping.hf_settings``). Layer drop is set to 0 on both sides so that
every step runs every layer (the same FLOPs each repeat); dropout stays as configured. Each
step gets one batch of random audio and one time mask drawn with fairseq's
``compute_mask_indices``, used by both models; fairseq samples its negatives inside its
forward (on the device), transformers' are drawn once per batch with its
``_sample_negative_indices`` outside the timed step (its data collator does that in
data-loader workers). Loss: fairseq's ``wav2vec`` criterion with XLSR's weights (InfoNCE + 0.1 x
diversity + 10 x feature penalty); transformers' own (contrastive + 0.1 x diversity). Both
take a step of ``torch.optim.Adam`` (foreach).

Steps alternate (fairseq, transformers, fairseq, ...) after a warm-up step each; reported
are medians and the ratio fairseq / transformers (< 1: fairseq faster). FLOPs per step come
from ``torch.utils.flop_counter.FlopCounterMode`` (matmuls, convolutions, attention; forward
and backward); achieved GFLOP/s is that count over the median step time, against the
machine's peak:

* CPU (fp32): threads x 8 fp32 lanes (AVX2, 256 bit) x 2 FMA units x 2 FLOPs x the clock
  read from /proc/cpuinfo ("cpu MHz"). AMD Zen 4 runs AVX-512 as two 256-bit halves, so
  the same count holds there; ``--peak-gflops`` overrides it.
* CUDA: ``--peak-tflops`` (default 989, H100/H200 SXM dense bf16); the ratio is MFU.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` during each model's step, less
what was resident before it, plus that model's own parameters and optimizer state; on
CPU each model runs two steps in a fresh process and its peak RSS is reported, with the
growth over the RSS after building (``--no-memory`` skips these runs).

``--profile N`` prints the top N operators of one step of each model (torch.profiler).

Candidates (``--candidates``) are other ways of running the fairseq model, timed in the
same alternation as ``fs-<name>``: ``compile`` (``torch.compile`` of the model),
``bf16`` (CPU autocast to bfloat16; the contrastive logits stay fp32, see
``compute_preds`` in ``xlsr_plugin/models/xlsr.py``). Measured, and neither kept as an
option: benchmarks/BENCHMARKS.md says why.

    .venv/bin/python benchmarks/bench_step.py --sizes base --seconds 5 --batch 2 --repeats 5
    python benchmarks/bench_step.py --device cuda --dtype bf16 --sizes large --batch 8 --seconds 15
"""

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

SAMPLE_RATE = 16000
# a model small enough for the test (same structure as BASE / LARGE)
TINY = dict(encoder_layers=2, encoder_embed_dim=64, encoder_ffn_embed_dim=128, encoder_attention_heads=2,
            final_dim=32, latent_vars=16, conv_pos=16, conv_pos_groups=4, num_negatives=10,
            conv_feature_layers="[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2")
LOSS_WEIGHTS = [0.1, 10.0]  # the xlsr_wav2vec criterion's (recipes/pretraining/xlsr_*.yaml)


# -- models ------------------------------------------------------------------------------


def _stand_in_for_audio_io():
    """The plugin's package imports soundfile (audio header checks) and editdistance (error
    rates), which a step on random tensors never calls. Where they are not installed (a GPU
    machine with torch, fairseq and transformers only), modules that fail on first use
    stand in for them, so that the models import."""
    import importlib.util
    import types

    for name in ("soundfile", "editdistance"):
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            stub = types.ModuleType(name)

            def missing(attr, name=name):
                raise AttributeError(f"{name} is not installed: {name}.{attr} cannot be used (bench_step.py "
                                     "does not need it)")

            stub.__getattr__ = missing
            sys.modules[name] = stub


def fairseq_config(size: str, **overrides):
    """The registered ``xlsr_<size>`` config, layer drop 0, with ``overrides``."""
    _stand_in_for_audio_io()
    from xlsr_plugin.models.xlsr import XlsrBaseConfig, XlsrLargeConfig

    cfg = {"base": XlsrBaseConfig, "tiny": XlsrBaseConfig, "large": XlsrLargeConfig}[size]()
    for name, value in dict(encoder_layerdrop=0.0, **overrides).items():
        if not hasattr(cfg, name):
            raise ValueError(f"{name} is no field of the fairseq model config")
        setattr(cfg, name, value)
    return cfg


def build_fairseq(cfg):
    from xlsr_plugin.models.xlsr import XlsrBaseModel

    return XlsrBaseModel(cfg)  # the class only adds seeded masks; the network is the config's


def hf_config(cfg):
    """transformers' ``Wav2Vec2Config`` for the fairseq config (what ``to-hf`` writes)."""
    import transformers
    from omegaconf import OmegaConf

    from xlsr_tools.hf_mapping import hf_settings

    notes = []
    settings = hf_settings(OmegaConf.to_container(OmegaConf.structured(cfg)), "bench_step", notes)
    return transformers.Wav2Vec2Config(**settings, diversity_loss_weight=LOSS_WEIGHTS[0])


def build_hf(cfg):
    import transformers

    config = hf_config(cfg)
    config._attn_implementation = "sdpa"
    return transformers.Wav2Vec2ForPreTraining(config)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def frames_for(model_cfg, samples: int) -> int:
    from xlsr_tools.hf_mapping import parse_conv_layers

    for _, k, s in parse_conv_layers(model_cfg.conv_feature_layers):
        samples = (samples - k) // s + 1
    return samples


def make_batch(cfg, batch: int, samples: int, device, seed: int = 0):
    """Random audio and one fairseq time mask (B, T) for both models."""
    from fairseq.data.data_utils import compute_mask_indices

    gen = torch.Generator().manual_seed(seed)
    wav = torch.randn(batch, samples, generator=gen).to(device)
    frames = frames_for(cfg, samples)
    mask = compute_mask_indices((batch, frames), None, cfg.mask_prob, cfg.mask_length, min_masks=2,
                                require_same_masks=True, seed=seed, epoch=0, indices=torch.arange(batch))
    return wav, torch.from_numpy(mask).to(device)


# -- steps -------------------------------------------------------------------------------


class Runner:
    """One model, its optimizer and its step."""

    def __init__(self, name, impl, cfg, device, dtype, candidate=None):
        self.name, self.impl, self.cfg, self.device, self.dtype = name, impl, cfg, device, dtype
        self.candidate = candidate
        torch.manual_seed(0)
        self.model = (build_fairseq(cfg) if impl == "fairseq" else build_hf(cfg)).to(device).train()
        self.params = n_params(self.model)
        if candidate == "compile":  # the criterion calls model(...) and the model's helpers
            self.model.forward = torch.compile(self.model.forward)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-5, foreach=True)
        if impl == "fairseq":
            from fairseq.criterions.wav2vec_criterion import Wav2vecCriterion

            self.criterion = Wav2vecCriterion(None, infonce=True, loss_weights=list(LOSS_WEIGHTS))

    def autocast(self):
        if self.dtype == "bf16" or self.candidate == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def loss(self, wav, mask):
        with self.autocast():
            if self.impl == "fairseq":
                sample = {"id": torch.arange(wav.size(0)),
                          "net_input": {"source": wav, "padding_mask": None, "mask_indices": mask}}
                return self.criterion(self.model, sample)[0]
            out = self.model(wav, mask_time_indices=mask, sampled_negative_indices=self.negatives(mask))
            return out.loss

    def negatives(self, mask):
        """transformers' negatives for ``mask``, drawn once (its data collator draws them,
        in data-loader workers, not in the training step)."""
        from transformers.models.wav2vec2.modeling_wav2vec2 import _sample_negative_indices

        if getattr(self, "_negatives_for", None) is not mask:
            neg = _sample_negative_indices(tuple(mask.shape), self.model.config.num_negatives,
                                           mask_time_indices=mask.cpu().numpy())
            self._negatives_for, self._negatives = mask, torch.from_numpy(neg).to(mask.device)
        return self._negatives

    def step(self, wav, mask):
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(wav, mask)
        loss.backward()
        self.optimizer.step()
        return loss.detach()


def step_flops(runner, wav, mask) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        runner.optimizer.zero_grad(set_to_none=True)
        runner.loss(wav, mask).backward()
    runner.optimizer.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def cpu_peak_gflops(threads: int):
    """(GFLOP/s, how it was computed) for ``threads`` cores: cores x fp32 lanes per FMA x
    2 FMA units x 2 FLOPs (multiply, add) x clock. Lanes: 8 with AVX2 (256 bit), and with
    AVX-512 on AMD Zen 4 (family 25, which runs 512-bit instructions as two 256-bit
    halves); 16 with AVX-512 on AMD Zen 5 (family 26, full-width units) and on Intel."""
    info = {}
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
            if not line.strip():
                break  # the first processor is enough
    except OSError:
        pass
    if "cpu MHz" not in info:
        return None, "no clock in /proc/cpuinfo (give --peak-gflops)"
    mhz, flags = float(info["cpu MHz"]), set(info.get("flags", "").split())
    amd_256 = info.get("vendor_id") == "AuthenticAMD" and int(info.get("cpu family", 0)) < 26
    lanes = 16 if "avx512f" in flags and not amd_256 else 8 if "avx2" in flags else 4
    peak = threads * lanes * 2 * 2 * mhz / 1000
    return peak, (f"{threads} cores x {lanes} fp32 lanes x 2 FMA units x 2 FLOPs x {mhz:.0f} MHz "
                  f"(/proc/cpuinfo: {info.get('vendor_id')} family {info.get('cpu family')}, "
                  f"avx2={'avx2' in flags}, avx512f={'avx512f' in flags})")


# -- memory (CPU: a fresh process per model) ---------------------------------------------


def child_memory(args) -> None:
    size, impl, candidate = args.child
    device = torch.device("cpu")
    cfg = fairseq_config(size, **(TINY if size == "tiny" else {}))
    wav, mask = make_batch(cfg, args.batch, int(args.seconds * SAMPLE_RATE), device)
    runner = Runner(impl, impl, cfg, device, args.dtype, None if candidate == "-" else candidate)
    before = _status_kib("VmRSS")
    for _ in range(2):
        runner.step(wav, mask)
    print(json.dumps({"rss_built_mib": before / 1024, "rss_peak_mib": _status_kib("VmHWM") / 1024}))


def _status_kib(key: str) -> int:
    """A /proc/self/status field in KiB. (Not getrusage's ru_maxrss: Linux carries it over
    from the parent through fork and exec, so a child would report the parent's peak.)"""
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/self/status")


def cpu_memory(args, size, impl, candidate):
    cmd = [sys.executable, __file__, "--child", size, impl, candidate or "-", "--batch", str(args.batch),
           "--seconds", str(args.seconds), "--threads", str(args.threads), "--dtype", args.dtype]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise SystemExit(f"memory run {size} {impl} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- main --------------------------------------------------------------------------------


def bench_size(args, size, device):
    cfg = fairseq_config(size, **(TINY if size == "tiny" else {}))
    samples = int(args.seconds * SAMPLE_RATE)
    wav, mask = make_batch(cfg, args.batch, samples, device)
    names = ["fairseq", "transformers"] + [f"fs-{c}" for c in args.candidates]
    runners = {}
    for name in names:
        impl = "transformers" if name == "transformers" else "fairseq"
        candidate = name[3:] if name.startswith("fs-") else None
        runners[name] = Runner(name, impl, cfg, device, args.dtype, candidate)
    flops = {name: step_flops(r, wav, mask) for name, r in runners.items() if r.candidate != "compile"}
    times = {name: [] for name in names}
    gpu_peak = {name: 0 for name in names}
    for name, r in runners.items():  # warm-up (and compilation)
        for _ in range(args.warmup):
            r.step(wav, mask)
    sync(device)
    for rep in range(args.repeats):
        order = names if rep % 2 == 0 else names[::-1]
        for name in order:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            sync(device)
            start = time.perf_counter()
            runners[name].step(wav, mask)
            sync(device)
            times[name].append(time.perf_counter() - start)
            if device.type == "cuda":
                gpu_peak[name] = max(gpu_peak[name], torch.cuda.max_memory_allocated())
    results = {}
    for name in names:
        med = statistics.median(times[name])
        fl = flops.get(name, flops["fairseq"])
        row = {"params": runners[name].params, "step_s": med, "times_s": times[name], "gflop_per_step": fl / 1e9,
               "achieved_gflops": fl / med / 1e9, "audio_s_per_s": args.batch * args.seconds / med}
        if device.type == "cuda":
            row["peak_mem_mib"] = gpu_peak[name] / 2**20
        results[name] = row
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        sort = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
        for name, r in runners.items():
            try:  # a profiler problem must not cost the timings
                with profile(activities=activities) as prof:
                    r.step(wav, mask)
                    sync(device)
                print(f"\n{size} {name}: one step, top operators\n"
                      + prof.key_averages().table(sort_by=sort, row_limit=args.profile, max_name_column_width=36))
            except Exception as e:  # noqa: BLE001
                print(f"\n{size} {name}: no profile ({type(e).__name__}: {e})")
    del runners
    if device.type == "cpu" and args.memory:
        for name in names:
            impl = "transformers" if name == "transformers" else "fairseq"
            mem = cpu_memory(args, size, impl, name[3:] if name.startswith("fs-") else None)
            results[name]["peak_mem_mib"] = mem["rss_peak_mib"]
            results[name]["step_mem_mib"] = mem["rss_peak_mib"] - mem["rss_built_mib"]
    return {"size": size, "frames": int(mask.shape[1]), "masked": int(mask.sum()), "results": results}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", default=["base", "large"], choices=["tiny", "base", "large"])
    p.add_argument("--quick", action="store_true", help="base only, 2 x 2 s, 3 repeats, no memory runs")
    p.add_argument("--batch", type=int, default=2, help="utterances per step")
    p.add_argument("--seconds", type=float, default=5.0, help="seconds of audio per utterance")
    p.add_argument("--repeats", type=int, default=5, help="timed steps per model (interleaved)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per model first")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"], help="bf16: autocast, both models")
    p.add_argument("--candidates", nargs="*", default=[], choices=["compile", "bf16"])
    p.add_argument("--peak-tflops", type=float, default=989.0, help="CUDA peak (dense bf16 H100/H200 SXM)")
    p.add_argument("--peak-gflops", type=float, help="CPU peak (default: from /proc/cpuinfo)")
    p.add_argument("--no-memory", dest="memory", action="store_false", help="CPU: skip the memory runs")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="after timing, profile one step of each model and print its top N operators")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.child:
        return child_memory(args)
    if args.quick:
        args.sizes, args.seconds, args.repeats, args.memory = ["base"], 2.0, 3, False
    device = torch.device(args.device)
    if device.type == "cuda":
        peak, how = args.peak_tflops * 1000, f"--peak-tflops {args.peak_tflops} ({torch.cuda.get_device_name()})"
    elif args.peak_gflops:
        peak, how = args.peak_gflops, "--peak-gflops"
    else:
        peak, how = cpu_peak_gflops(args.threads)
    import fairseq
    import transformers

    meta = {"device": str(device), "dtype": args.dtype, "threads": args.threads, "batch": args.batch,
            "seconds": args.seconds, "repeats": args.repeats, "peak_gflops": peak, "peak_how": how,
            "torch": torch.__version__, "fairseq": fairseq.__version__, "transformers": transformers.__version__,
            "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:]))}
    print(f"# {meta['command']}\n# torch {torch.__version__}, fairseq {fairseq.__version__}, "
          f"transformers {transformers.__version__}; peak {peak or float('nan'):.0f} GFLOP/s: {how}")
    sizes = []
    for size in args.sizes:
        out = bench_size(args, size, device)
        sizes.append(out)
        print(f"\n{size}: {args.batch} x {args.seconds:g} s, {out['frames']} frames each, {out['masked']} of "
              f"{args.batch * out['frames']} masked, "
              f"{args.dtype} on {device} ({args.threads} threads), median of {args.repeats} interleaved steps")
        print(f"{'model':<14} {'params M':>9} {'step s':>8} {'audio s/s':>9} {'GFLOP':>8} {'GFLOP/s':>8} "
              f"{'of peak':>8} {'peak MiB':>9} {'ratio':>7}")
        ref = out["results"]["transformers"]["step_s"]
        for name, r in out["results"].items():
            share = r["achieved_gflops"] / peak if peak else float("nan")
            r["of_peak"], r["ratio_vs_transformers"] = share, r["step_s"] / ref
            print(f"{name:<14} {r['params'] / 1e6:>9.2f} {r['step_s']:>8.3f} {r['audio_s_per_s']:>9.2f} "
                  f"{r['gflop_per_step']:>8.1f} {r['achieved_gflops']:>8.1f} {share:>8.1%} "
                  f"{r.get('peak_mem_mib', float('nan')):>9.0f} {r['step_s'] / ref:>7.2f}")
        base = out["results"]["fairseq"]["step_s"]
        for name in out["results"]:
            if name.startswith("fs-"):
                out["results"][name]["ratio_vs_fairseq"] = out["results"][name]["step_s"] / base
                print(f"{name} / fairseq: {out['results'][name]['step_s'] / base:.2f}x")
    if args.json:
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps({"meta": meta, "sizes": sizes}, indent=1))
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
