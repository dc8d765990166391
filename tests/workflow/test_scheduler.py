"""Snakemake keeps to ``--cores``: the figures measured "on 2 cores" and every rule's
``mem_mb`` budget assume it. Snakemake 9.10 to 9.16 started more jobs than cores once a
job had finished (snakemake#3913: a 2-core run of this workflow had 8 jobs at once); the
lock pins a release without that fault, and this test keeps it out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.workflow

SNAKEFILE = """
rule all:
    input:
        expand("done/{i}", i=range(6)),


rule first:
    output:
        "first",
    threads: 2
    shell:
        "touch {output}"


rule job:
    input:
        "first",
    output:
        "done/{i}",
    shell:
        "mkdir -p running && touch running/{wildcards.i} && ls running | wc -l >> seen"
        " && sleep 1 && rm running/{wildcards.i} && touch {output}"
"""
"""Six one-thread jobs that wait for a two-thread one (the pattern that tripped 9.15);
each writes how many jobs were running when it started."""


@pytest.mark.parametrize("cores", [1, 2])
def test_no_more_jobs_run_at_once_than_cores(tmp_path: Path, cores: int):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", str(cores)],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    seen = [int(n) for n in (tmp_path / "seen").read_text().split()]
    assert len(seen) == 6
    assert max(seen) <= cores, seen
