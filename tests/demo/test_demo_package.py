"""The demo is a package of its own: it starts without fairseq or torch, the plugin does not
load it, and an installed wheel carries the stage scripts and recipes it runs."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _python(code, **kwargs):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, **kwargs)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout


def test_demo_imports_neither_fairseq_nor_torch_nor_the_plugin():
    """What ``xlsr-demo --help`` and ``xlsr-synth --help`` import before they can answer."""
    _python("import sys, xlsr_demo.pipeline, xlsr_demo.synth, xlsr_demo.report\n"
            "loaded = {m.split('.')[0] for m in sys.modules} & {'fairseq', 'torch', 'xlsr_plugin'}\n"
            "assert not loaded, loaded")


def test_wheel_carries_stage_scripts_recipes_and_plugin(tmp_path):
    """Built as a wheel and unpacked where no checkout is near, the demo resolves its stage
    scripts, the recipes they read and the plugin's ``--user-dir`` to files of the wheel."""
    src = tmp_path / "src"
    shutil.copytree(REPO, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "results*",
        "outputs", "multirun", "*.pt"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    wheel, = (tmp_path / "dist").glob("xlsr_plugin-*.whl")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site), PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")

    stages = Path(_python("from pathlib import Path; from xlsr_demo import pipeline\n"
                          "plan = pipeline.plan(pipeline.FULL, Path('/nonexistent'))\n"
                          "scripts = {job.script for jobs in plan.values() for job in jobs}\n"
                          "assert all((pipeline.STAGE_SCRIPTS / s).is_file() for s in scripts), scripts\n"
                          "print(pipeline.STAGE_SCRIPTS)", cwd=elsewhere, env=env).strip())
    assert stages == site.resolve() / "xlsr_demo" / "recipes" / "demo"

    out = subprocess.run(["bash", "-c", 'source "$1/paths.sh" && echo "$recipes" && echo "$plugin"', "_", stages],
                         cwd=elsewhere, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    recipes, plugin = map(Path, out.stdout.split())
    assert recipes == site.resolve() / "xlsr_demo" / "recipes"
    assert (recipes / "pretraining" / "demo.yaml").is_file() and (recipes / "finetuning" / "demo.yaml").is_file()
    assert plugin == site.resolve() / "xlsr_plugin" and (plugin / "__init__.py").is_file()
