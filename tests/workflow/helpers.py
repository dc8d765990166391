"""Run snakemake on a temporary copy of the project, so tests never touch results/.

The copy includes ``src/``, and every run puts that copy first on ``PYTHONPATH``, so a
test may edit library code in the copy (to check code-aware reruns) without touching
the checkout.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COPY = (
    "Snakefile",
    "environment.yml",
    "requirements.lock",
    "config",
    "workflow",
    "profiles",
    "notebooks",
    "paper",
    "scripts",
)

SMALL = {
    "grader": {"embedded": {"folds": 3, "compare": {"extractors": ["tfidf"], "seeds": [0]}}},
    "trees": {"fit": {"starts": 1, "bootstrap": 5}},
    "respond": {"max_prompts": 12},
}
"""A faster extractor comparison and tree-weight fit, and the model study on a stable
sample of 12 prompts per set; everything else is the default configuration."""


def copy_project(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        elif src.exists():
            shutil.copy2(src, dest / name)
    shutil.copytree(
        ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    return dest


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(base.get(k) or {}, v) if isinstance(v, dict) else v
    return out


PILOT = merge(SMALL, {"data": {"sample": {"hh-rlhf-harmless": 300, "pyrit-harm": 250}}})
"""SMALL plus stable samples (data.sample) of 300 of HH-RLHF's 2,312 preference pairs and
250 of PyRIT's 712 rated answers: embedding every turn and sentence of the whole sets
were the two largest jobs of the test DAG (109 s for PyRIT's answers on CI)."""


def edit_config(project: Path, over: dict) -> str:
    """Merge ``over`` into the project's config; return the original text to restore."""
    cfg = project / "config" / "config.yaml"
    original = cfg.read_text()
    cfg.write_text(yaml.safe_dump(merge(yaml.safe_load(original), over), sort_keys=False))
    return original


def env_for(workdir: Path, mirror: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["MPLBACKEND"] = "Agg"
    if (workdir / "src").is_dir():
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(workdir / "src"), env.get("PYTHONPATH", "")) if p
        )
    if mirror is not None:
        env["HARMTRACE_DATA_MIRROR"] = str(mirror)
    return env


def snakemake(workdir: Path, *args: str, mirror: Path | None = None, check: bool = True):
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        env=env_for(workdir, mirror),
        capture_output=True,
        text=True,
        check=False,
    )
    if check and res.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}")
    return res


def planned_rules(workdir: Path, mirror: Path, *args: str) -> set[str]:
    """Rule names a dry run would execute."""
    res = snakemake(workdir, "-n", "--cores", "1", *args, mirror=mirror)
    out = res.stdout + res.stderr
    return set(re.findall(r"^(?:local)?rule (\w+):", out, flags=re.M))


BURN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


@contextlib.contextmanager
def busy_cores(n: int = 2, seconds: int = 1800, nice: int = 5) -> Iterator[list[int]]:
    """``n`` processes that keep a core each busy while the block runs (a loaded machine:
    no product may depend on how fast a job runs). Each stops by itself after ``seconds``
    and is killed when the block ends; ``nice`` keeps the machine usable."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BURN.format(seconds=seconds)],
            preexec_fn=lambda: os.nice(nice),
        )
        for _ in range(n)
    ]
    try:
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()


def notebook_cells(path: Path) -> list:
    """An executed notebook's cells without papermill's timings (the only part of it that
    differs between two runs)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [(c["cell_type"], c["source"], c.get("outputs")) for c in cells]
