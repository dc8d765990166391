"""kill -9 in the middle of a run, rerun, and get exactly what an uninterrupted run gives.

The default workflow profile (profiles/default, loaded by Snakemake itself) sets
rerun-incomplete, and `rule all` requests every final product, so a half-written or
missing output is always noticed. A killed Snakemake leaves its lock behind;
`scripts/unlock-stale` (run by `make reproduce`) removes it when no Snakemake is alive
in the folder, which is what the rerun here does too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.workflow.helpers import env_for, snakemake

pytestmark = pytest.mark.workflow

PRODUCTS = [
    "results/models/embedded/manifest.json",
    "results/models/embedded/oof_scores.parquet",
    "results/numbers/grader.json",
    "results/tables/grader--oof_metrics.tex",
    "results/judgments/embedded/openai-moderation.parquet",
    "results/judgments/embedded/hh-rlhf-harmless.parquet",
    "results/numbers/01_transitions.json",
]
"""Targets of the interrupted run: the grader and what the first analysis needs from it
(a narrow target keeps each crash-and-rerun cycle short)."""


@pytest.mark.parametrize("delay", [4.0, 30.0])
def test_kill_9_then_rerun_gives_identical_products(built, mirror, delay):
    before = {p: (built / p).read_bytes() for p in PRODUCTS}
    proc = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--forcerun", "train_grader",
         *PRODUCTS],
        cwd=built,
        env=env_for(built, mirror),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    env = {**env_for(built, mirror), "SNAKEMAKE": f"{sys.executable} -m snakemake"}
    subprocess.run(["bash", "scripts/unlock-stale"], cwd=built, env=env, check=True)
    snakemake(built, "--cores", "2", *PRODUCTS, mirror=mirror)
    after = {p: (built / p).read_bytes() for p in PRODUCTS}
    assert [p for p in PRODUCTS if before[p] != after[p]] == []
    again = snakemake(built, "-n", "--cores", "1", *PRODUCTS, mirror=mirror)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_a_live_run_keeps_its_lock(built, mirror):
    lock = built / ".snakemake" / "locks"
    lock.mkdir(parents=True, exist_ok=True)
    (lock / "0.input.lock").write_text("held")
    env = {**env_for(built, mirror), "SNAKEMAKE": "false"}
    sleeper = subprocess.Popen(
        ["bash", "-c", "exec -a snakemake-live sleep 30"], cwd=built, start_new_session=True
    )
    try:
        res = subprocess.run(
            ["bash", "scripts/unlock-stale"], cwd=built, env=env, capture_output=True, text=True
        )
    finally:
        os.killpg(sleeper.pid, signal.SIGKILL)
        (lock / "0.input.lock").unlink()
    assert res.returncode == 0 and "is running here" in res.stderr
