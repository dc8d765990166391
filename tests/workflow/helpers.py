"""Run snakemake on a temporary copy of the project, so tests never touch results/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COPY = ("Snakefile", "environment.yml", "config", "workflow", "notebooks", "paper")


def copy_project(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def snakemake(workdir: Path, *args: str, mirror: Path | None = None, check: bool = True):
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["MPLBACKEND"] = "Agg"
    if mirror is not None:
        env["HARMTRACE_DATA_MIRROR"] = str(mirror)
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and res.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}")
    return res
