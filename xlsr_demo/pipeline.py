"""``xlsr-demo``: the paper's CommonVoice experiment (XLSR-10 vs monolingual, English, none), toy scale.

Conneau et al. (2020, Table 1) pre-train one model on ten CommonVoice languages with
α = 0.5 language sampling (XLSR-10), compare it with monolingual pre-training, with
English-only pre-training (XLSR-English), with the same ten languages sampled as they
come (α = 1, "XLSR-10 unbalanced", the paper's ablation of its one algorithmic addition)
and with no pre-training, fine-tune each with
CTC on one hour of phoneme-labelled speech per language and report phone error rate
(PER) per language; multilingual pre-training
helps most on the low-resource languages. This module runs that experiment end to end
on speech synthesised with espeak-ng, in six stages:

1. ``synth``     ``recipes/demo/01_synth.sh``      CommonVoice-shaped release (``xlsr-synth``)
2. ``manifests`` ``recipes/demo/02_manifests.sh``  manifests, phonemes, α = 0.5 table
3. ``pretrain``  ``recipes/demo/03_pretrain.sh``   XLSR-N (α = 0.5 and α = 1), monolingual
                                                   (low-resource), English, none
4. ``finetune``  ``recipes/demo/04_finetune.sh``   CTC on phonemes, per model and language;
                                                   on the low-resource ones once per seed, each
                                                   seed from its own pre-training (stage 3)
5. ``decode``    ``recipes/demo/05_decode.sh``     ``fairseq-generate --scoring per``
6. ``report``    ``recipes/demo/06_report.sh``     ``table.md``, ``per.png``; the codebook
                                                   analysis of XLSR-N (``codebook/``); the
                                                   linear phone probe of every frozen
                                                   pre-trained model on the low-resource
                                                   languages (``probe/``, ``probe.png``)

Each stage is one of those documented shell scripts, run as a subprocess exactly as a
user would run it. The scripts print every command they run, fully expanded, as a line
``+ CMD ...`` (``show`` in ``paths.sh``); ``<out>/commands.sh`` gets each script call as a
comment followed by those commands (the exact ``fairseq-hydra-train``, ``fairseq-generate``
and ``xlsr-*`` calls, copyable), and ``<out>/demo.log`` all their output. A finished job leaves a marker in ``<out>/.done/`` and is skipped
on the next run; ``--from-stage`` deletes the markers of that stage and later ones.
Independent jobs (one per model and language) run two at a time, one thread each.
The scripts and the recipes they read ship inside this package (``xlsr_demo/recipes``,
package data), so the demo runs from an installed wheel as from a checkout; they find
the plugin's ``--user-dir`` through the ``python`` on ``PATH`` (``recipes/demo/paths.sh``).
This module calls CLIs only: it never imports fairseq or ``xlsr_plugin``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from xlsr_demo import XLSR10

# The recipes are package data (setup.py): xlsr_demo/recipes is a link to the repository's
# recipes/ in a checkout and a copy of it in a wheel; resolved, a checkout's commands.sh
# names the repository's recipes/demo/*.sh, the scripts a user runs by hand.
RECIPES = Path(str(files("xlsr_demo") / "recipes")).resolve()
STAGE_SCRIPTS = RECIPES / "demo"
STAGES = ("synth", "manifests", "pretrain", "finetune", "decode", "report")
MONO, NONE, ENGLISH = "XLSR-Monolingual", "No pre-training", "XLSR-English"
# The α = 1 ablation: pre-training name and the override that makes it (demo.yaml has 0.5)
UNBALANCED_RUN, UNBALANCED_OVERRIDE = "xlsr_a1", "task.sampling_alpha=1.0"
# A line a stage script prints for each command it runs (recipes/demo/paths.sh: show)
SHOWN = "+ "
# Without pre-training there is no learnt feature encoder to keep frozen during fine-tuning
# (recipes/finetuning/demo.yaml): the floor trains it, like the rest of the model.
FINETUNE_EXTRA = {"none": ["model.feature_grad_mult=1.0"]}


@dataclass
class DemoConfig:
    """Everything that decides the numbers; stored in ``<out>/config.json``."""

    languages: Tuple[str, ...]
    low_resource: Dict[str, float]
    minutes: float
    finetune_minutes: float
    pretrain_updates: int
    finetune_updates: int
    english: bool = False  # also XLSR-English: English-only pre-training, on the low-resource languages
    seed: int = 1
    unbalanced: bool = True  # also XLSR-N with α = 1 (task.sampling_alpha=1.0), fine-tuned like XLSR-N
    # runs of XLSR-N, its α = 1 twin and the monolingual models on each low-resource language,
    # with seeds seed, seed+1, ...: each seed pre-trains and fine-tunes anew (everything else: seed)
    seeds: int = 3


# Pre-training: 1200 updates for every pre-trained model (XLSR-10 and each monolingual
# one); fine-tuning: 800 updates, by which the tiny model has left CTC's blank-only stage
# on one minute of speech (recipes/*/demo.yaml say how these were chosen). --quick only
# proves the pipeline runs: its 100 fine-tuning updates end before that, PERs near 100.
FULL = DemoConfig(XLSR10, {"ky": 1.0, "tt": 1.0}, 3.0, finetune_minutes=1.0,
                  pretrain_updates=1200, finetune_updates=800, english=True)
QUICK = DemoConfig(("es", "fr", "ky"), {"ky": 0.5}, 1.5, finetune_minutes=0.5,
                   pretrain_updates=30, finetune_updates=100, seeds=2)


@dataclass
class Job:
    name: str  # done-marker and log name, e.g. "finetune.xlsr_ky"
    script: str
    args: List[str]
    output: Optional[Path] = None  # removed before a (re-)run, so training restarts, not resumes


class Runner:
    """Runs stage scripts, records them, keeps markers and the log, prints progress."""

    def __init__(self, out: Path, jobs: int):
        self.out, self.jobs, self.start = out, jobs, time.monotonic()
        self.done_dir = out / ".done"
        self.done_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1",
                        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        commands = out / "commands.sh"
        if not commands.exists():
            commands.write_text(
                "#!/usr/bin/env bash\n# The commands xlsr-demo ran, fully expanded, in the order the jobs "
                "finished (absolute paths: run from anywhere, with the venv's bin/ on PATH); each\n"
                "# job's stage-script call is the comment above its commands.\nset -euo pipefail\n")

    def elapsed(self) -> str:
        s = int(time.monotonic() - self.start)
        return f"{s // 60:d}:{s % 60:02d}"

    def say(self, msg: str) -> None:
        line = f"[{self.elapsed()}] {msg}"
        print(line, flush=True)
        with self.lock, open(self.out / "demo.log", "a", encoding="utf-8") as log:
            log.write(line + "\n")

    def _run(self, job: Job) -> float:
        command = ["bash", str(STAGE_SCRIPTS / job.script), *job.args]
        text = " ".join(shlex.quote(c) for c in command)
        if job.output is not None and job.output.exists():
            shutil.rmtree(job.output)
        t0 = time.monotonic()
        proc = subprocess.run(command, cwd=self.out, env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        seconds = time.monotonic() - t0
        with self.lock, open(self.out / "demo.log", "a", encoding="utf-8") as log:
            log.write(f"===== {job.name}: {text} (exit {proc.returncode}, {seconds:.1f} s)\n")
            log.write(proc.stdout)
        shown = [line[len(SHOWN):] for line in proc.stdout.splitlines() if line.startswith(SHOWN)]
        with self.lock, open(self.out / "commands.sh", "a", encoding="utf-8") as f:
            f.write(f"\n# {job.name}{'' if proc.returncode == 0 else ' (FAILED)'}: {text}\n")
            f.write("".join(line + "\n" for line in shown))
        if proc.returncode != 0:
            tail = "\n".join(proc.stdout.splitlines()[-25:])
            raise RuntimeError(f"{job.name} failed (exit {proc.returncode}): {text}\n{tail}\n"
                               f"full output in {self.out / 'demo.log'}")
        (self.done_dir / job.name).write_text(text + "\n")
        return seconds

    def stage(self, number: int, jobs: Sequence[Job]) -> None:
        """Run the jobs of one stage (those without a done-marker), ``self.jobs`` at a time."""
        title = f"stage {number}/{len(STAGES)} {STAGES[number - 1]}"
        todo = [j for j in jobs if not (self.done_dir / j.name).exists()]
        if not todo:
            self.say(f"{title}: done earlier, skipped ({len(jobs)} job(s))")
            return
        self.say(f"{title}: {len(todo)} job(s)" + (f", {len(jobs) - len(todo)} done earlier"
                                                     if len(todo) < len(jobs) else ""))
        finished = 0

        def one(job: Job) -> None:
            nonlocal finished
            seconds = self._run(job)
            with self.lock:
                finished += 1
                n = finished
            self.say(f"  {title}: [{n}/{len(todo)}] {job.name} ({seconds:.1f} s)")

        with ThreadPoolExecutor(max_workers=max(1, self.jobs)) as pool:
            for future in [pool.submit(one, j) for j in todo]:
                future.result()

    def clear_from(self, stage: int) -> None:
        for marker in self.done_dir.iterdir():
            if STAGES.index(marker.name.split(".")[0]) + 1 >= stage:
                marker.unlink()


def plan(cfg: DemoConfig, out: Path, jobs: int = 2) -> Dict[int, List[Job]]:
    """The jobs of every stage, as calls of the ``recipes/demo`` scripts (``jobs``: worker
    processes of synthesis and manifests; it does not change any output)."""
    langs, o = list(cfg.languages), str(out)
    low = [lang for lang in langs if lang in cfg.low_resource]
    low_spec = ",".join(f"{lang}:{cfg.low_resource[lang]:g}" for lang in low)
    csv = ",".join(langs)
    # English is spoken and pre-trained on only for XLSR-English: never part of the mix
    extra = ["en"] if cfg.english and "en" not in langs else []
    spoken = ",".join(langs + extra)
    pretrained = {"xlsr": csv, **({UNBALANCED_RUN: csv} if cfg.unbalanced else {}),
                  **{f"mono_{lang}": lang for lang in low}}
    if cfg.english:
        pretrained["english"] = "en"
    # the floor: one update at learning rate 0 writes the seeded initialisation as a checkpoint
    pretrained["none"] = csv
    overrides = {UNBALANCED_RUN: [UNBALANCED_OVERRIDE], "none": ["optimization.lr=[0.0]"]}
    updates = {"none": 1}
    everywhere = ["xlsr"] + ([UNBALANCED_RUN] if cfg.unbalanced else []) + ["none"]
    base = [(p, lang) for p in everywhere for lang in langs] + [(f"mono_{l}", l) for l in low]
    base += [("english", l) for l in low if cfg.english]
    # (pre-trained model, language, seed): seed everywhere; the later seeds for the models of the
    # paper's two directions (XLSR-N, α = 1, monolingual) on the low-resource languages, each seed
    # with a pre-training of its own (folder <model>_s<seed>)
    seeds = [cfg.seed + i for i in range(max(1, cfg.seeds))]
    runs = [(p, lang, cfg.seed) for p, lang in base]
    runs += [(p, lang, s) for s in seeds[1:] for p, lang in base
             if lang in low and (p in ("xlsr", UNBALANCED_RUN) or p.startswith("mono_"))]
    folder = {(p, s): p if s == cfg.seed else f"{p}_s{s}" for p, _, s in runs}
    pre = [Job(f"pretrain.{folder[p, s]}", "03_pretrain.sh",
               [o, folder[p, s], pretrained[p], str(updates.get(p, cfg.pretrain_updates)), str(s),
                *overrides.get(p, [])], out / "pretrain" / folder[p, s])
           for s in seeds for p in pretrained if (p, s) in folder]
    name = {r: f"{folder[r[0], r[2]]}_{r[1]}_s{r[2]}" for r in runs}
    report_models = [(model, [f"{o}/decode/{name[r]}" for r in runs if _model(cfg, r[0]) == model])
                     for model in (multilingual_name(cfg), unbalanced_name(cfg), MONO, ENGLISH, NONE)]
    # the probe of the frozen pre-trained models: on each low-resource language, every pre-training
    # fine-tuned there (all seeds); per model, its pre-training folders
    probed = {lang: list(dict.fromkeys(folder[p, s] for p, l, s in runs if l == lang)) for lang in low}
    probe_models = [(model, list(dict.fromkeys(folder[p, s] for p, l, s in runs
                                               if l in low and _model(cfg, p) == model)))
                    for model, _ in report_models]
    probe_args = [a for lang, folders in probed.items() for a in ("--probe", f"{lang}=" + ",".join(folders))]
    probe_args += [a for model, folders in probe_models if folders
                   for a in ("--probe-model", f"{model}=" + ",".join(folders))]
    return {
        1: [Job("synth", "01_synth.sh", [o, spoken, f"{cfg.minutes:g}", low_spec,
                                         f"{cfg.finetune_minutes:g}", str(cfg.seed), str(jobs)])],
        2: [Job("manifests", "02_manifests.sh", [o, csv, str(jobs), *extra])],
        3: pre,
        4: [Job(f"finetune.{name[r]}", "04_finetune.sh", [o, folder[r[0], r[2]], r[1], str(cfg.finetune_updates),
                                                            str(r[2]), *FINETUNE_EXTRA.get(r[0], [])],
                out / "finetune" / name[r])
            for r in runs],
        5: [Job(f"decode.{name[r]}", "05_decode.sh", [o, name[r], r[1]], out / "decode" / name[r])
            for r in runs],
        6: [Job("report", "06_report.sh", [o, csv, ",".join(low), multilingual_name(cfg), *[
            f"{model}=" + ",".join(dirs) for model, dirs in report_models if dirs],
            *(["--unbalanced", unbalanced_name(cfg)] if cfg.unbalanced else []), "--codebook", "xlsr",
            *probe_args])],
    }


def multilingual_name(cfg: DemoConfig) -> str:
    return f"XLSR-{len(cfg.languages)}"


def unbalanced_name(cfg: DemoConfig) -> str:
    return f"{multilingual_name(cfg)} unbalanced"


def _model(cfg: DemoConfig, pretrained: str) -> str:
    """The table row of a pre-trained model (xlsr, xlsr_a1, mono_ky, ..., none)."""
    named = {"xlsr": multilingual_name(cfg), UNBALANCED_RUN: unbalanced_name(cfg),
             "english": ENGLISH, "none": NONE}
    return named.get(pretrained, MONO if pretrained.startswith("mono_") else pretrained)


def _check_config(cfg: DemoConfig, out: Path, from_stage: Optional[int]) -> None:
    """Refuse to mix outputs of different settings in one folder."""
    path, current = out / "config.json", json.dumps(asdict(cfg), indent=1, sort_keys=True)
    if path.exists() and path.read_text(encoding="utf-8") != current and from_stage != 1:
        raise SystemExit(f"xlsr-demo: error: {out} holds a run with other settings ({path}); "
                         "use another --out, or --from-stage 1 to redo it with these settings")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(current, encoding="utf-8")


def run_demo(out, quick: bool = False, from_stage: Optional[int] = None, languages: Optional[Sequence[str]] = None,
             low_resource: Optional[Dict[str, float]] = None, minutes: Optional[float] = None,
             finetune_minutes: Optional[float] = None, pretrain_updates: Optional[int] = None,
             finetune_updates: Optional[int] = None, english: Optional[bool] = None,
             seed: int = 1, jobs: int = 2, unbalanced: Optional[bool] = None,
             seeds: Optional[int] = None) -> Path:
    """Run the demo into ``out``, skipping finished jobs, or redo from ``from_stage`` on;
    returns the path of ``table.md``."""
    base = QUICK if quick else FULL
    cfg = DemoConfig(
        tuple(languages or base.languages),
        dict(base.low_resource if low_resource is None else low_resource),
        base.minutes if minutes is None else minutes,
        base.finetune_minutes if finetune_minutes is None else finetune_minutes,
        pretrain_updates or base.pretrain_updates, finetune_updates or base.finetune_updates,
        base.english if english is None else english, seed,
        base.unbalanced if unbalanced is None else unbalanced, seeds or base.seeds)
    unknown = set(cfg.low_resource) - set(cfg.languages)
    if unknown:
        raise SystemExit(f"xlsr-demo: error: --low-resource names {sorted(unknown)}, "
                         f"not among --languages {','.join(cfg.languages)}")
    out = Path(out).resolve()
    _check_config(cfg, out, from_stage)
    runner = Runner(out, jobs)
    if from_stage:
        runner.clear_from(from_stage)
    runner.say(f"xlsr-demo{' --quick' if quick else ''}: {asdict(cfg)} -> {out}")
    for number, stage_jobs in plan(cfg, out, jobs).items():
        runner.stage(number, stage_jobs)
    table = out / "table.md"
    runner.say(f"finished in {runner.elapsed()}: {table}, {out / 'per.png'}, "
               f"{out / 'codebook' / 'similarity.png'}, {out / 'commands.sh'}, {out / 'demo.log'}")
    print(table.read_text(encoding="utf-8"))
    return table


def _stage_number(value: str) -> int:
    if value.isdigit() and 1 <= int(value) <= len(STAGES):
        return int(value)
    if value in STAGES:
        return STAGES.index(value) + 1
    raise argparse.ArgumentTypeError(f"{value!r}: give 1-{len(STAGES)} or one of {', '.join(STAGES)}")


def _low_resource(spec: str) -> Dict[str, float]:
    out = {}
    for item in filter(None, spec.split(",")):
        lang, sep, minutes = item.partition(":")
        try:
            out[lang] = float(minutes)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r} is not LANG:MINUTES") from None
    return out


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xlsr-demo",
        description="The XLSR-10 CommonVoice experiment end to end on synthesised speech: "
        "synth, manifests, pretrain, finetune, decode, report (see recipes/demo/README.md).")
    p.add_argument("--out", default="results", help="folder for all outputs, table.md and per.png")
    p.add_argument("--quick", action="store_true",
                   help="3 languages (es, fr, low-resource ky), few updates: about 3 minutes, PERs near 100")
    p.add_argument("--from-stage", type=_stage_number, default=None, metavar="N|NAME",
                   help=f"redo this stage and the later ones ({', '.join(STAGES)}); "
                   "earlier stages are reused")
    p.add_argument("--languages", help="comma-separated languages (default: the XLSR-10 set)")
    p.add_argument("--low-resource", type=_low_resource, metavar="LANG:MIN,...",
                   help="low-resource languages and their pre-training minutes (default ky:1,tt:1)")
    p.add_argument("--minutes", type=float, help="pre-training minutes per other language (default 3)")
    p.add_argument("--finetune-minutes", type=float,
                   help="minutes of fine-tuning data (train-1h, part of train) per language (default 1)")
    p.add_argument("--pretrain-updates", type=int, help="pre-training updates of every pre-trained model (default 1200)")
    p.add_argument("--finetune-updates", type=int, help="fine-tuning updates per run (default 800)")
    p.add_argument("--english", action=argparse.BooleanOptionalAction, default=None,
                   help="also speak English, pre-train XLSR-English on it alone and fine-tune that "
                   "on the low-resource languages (default: on, off with --quick)")
    p.add_argument("--unbalanced", action=argparse.BooleanOptionalAction, default=None,
                   help="also pre-train XLSR-N with α = 1 (languages sampled as they come, the paper's "
                   "ablation of α = 0.5) and fine-tune it like XLSR-N (default: on)")
    p.add_argument("--seeds", type=int, metavar="N",
                   help="pre-train and fine-tune XLSR-N, α = 1 and the monolingual models with N seeds "
                   "(SEED, SEED+1, ...; the corpus stays that of SEED) for the low-resource languages and "
                   "report mean ± sd (default 3; 2 with --quick)")
    p.add_argument("--seed", type=int, default=1, help="seed of synthesis and of the first pre-training "
                   "and fine-tuning")
    p.add_argument("--jobs", type=int, default=2, help="jobs (processes) run at the same time")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    try:
        run_demo(args.out, args.quick, args.from_stage,
                 args.languages.split(",") if args.languages else None, args.low_resource,
                 args.minutes, args.finetune_minutes, args.pretrain_updates, args.finetune_updates,
                 args.english, args.seed, args.jobs, args.unbalanced, args.seeds)
    except RuntimeError as e:
        print(f"xlsr-demo: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
