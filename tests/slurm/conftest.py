"""A real one-node Slurm cluster for the Slurm tests: ``scripts/slurm-cluster start``
(Debian's slurm-wlm and munge, daemons run as root, no systemd), up for the session.

A cluster that is already up (``scripts/slurm-cluster status`` succeeds) is used as it is
and left running; one this fixture started is stopped at the end. Without root, the Slurm
packages or the executor plugin the tests are skipped with the reason, unless ``CI`` is
set (or ``HARMTRACE_SLURM=1``): then that is a failure, as for the real-server tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.required import unavailable

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "slurm-cluster"


def _unavailable(reason: str) -> None:
    unavailable("HARMTRACE_SLURM", "the Slurm tests", reason)


@dataclass(frozen=True)
class Cluster:
    conf: Path
    """The slurm.conf the daemons read (clients find it at /etc/slurm/slurm.conf too)."""
    jobcomp: Path
    """One line per finished job (JobCompType=jobcomp/filetxt): what `sacct -c` reads."""

    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}


def _config_value(env: dict[str, str], key: str) -> str:
    out = subprocess.run(
        ["scontrol", "show", "config"], env=env, capture_output=True, text=True, check=True
    ).stdout
    for line in out.splitlines():
        name, _, value = line.partition("=")
        if name.strip() == key:
            return value.strip()
    raise KeyError(key)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Cluster]:
    if os.geteuid() != 0:
        _unavailable("scripts/slurm-cluster starts the daemons as root; not root here")
    missing = [
        t for t in ("slurmctld", "slurmd", "munged", "sbatch", "sacct") if not shutil.which(t)
    ]
    if missing:
        _unavailable(
            f"no {', '.join(missing)} (scripts/setup-system test installs slurm-wlm, munge)"
        )
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        _unavailable("snakemake-executor-plugin-slurm is not installed (pip install -e '.[dev]')")
    state = Path(os.environ.get("HARMTRACE_SLURM_DIR", "/tmp/harmtrace-slurm"))
    env = {**os.environ, "HARMTRACE_SLURM_DIR": str(state), "SLURM_CONF": str(state / "slurm.conf")}
    already_up = (
        subprocess.run([SCRIPT, "status"], env=env, capture_output=True, check=False).returncode
        == 0
    )
    if not already_up:
        res = subprocess.run(
            [SCRIPT, "start"], env=env, capture_output=True, text=True, check=False
        )
        if res.returncode != 0:
            _unavailable(f"scripts/slurm-cluster start failed:\n{res.stdout}{res.stderr}")
    try:
        yield Cluster(state / "slurm.conf", Path(_config_value(env, "JobCompLoc")))
    finally:
        if not already_up:
            subprocess.run([SCRIPT, "stop"], env=env, capture_output=True, check=False)
