"""The data stage for real: fetch from the mirror and normalize, in a temporary copy."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.workflow.helpers import snakemake

pytestmark = pytest.mark.workflow

COUNTS = {
    "openai-moderation": 1680,
    "simplesafetytests": 100,
    "harmbench": 200,
    "air-bench-2024": 80,
    "hh-rlhf-harmless": 4624,
}


def test_dry_run_plans_the_data_stage(project, mirror):
    res = snakemake(project, "-n", "--cores", "1", "records", mirror=mirror)
    for rule in ("fetch", "normalize"):
        assert rule in res.stdout


def test_lint_is_clean(project):
    res = snakemake(project, "--lint", check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_records_targets_write_expected_counts(project, mirror):
    """The shipped sets in full through fetch and normalize (the model study's answer
    records, which need generation, are built by the end-to-end run on a sample)."""
    targets = [f"results/records/{name}.parquet" for name in COUNTS]
    snakemake(project, "--cores", "2", *targets, mirror=mirror)
    for name, n in COUNTS.items():
        df = pd.read_parquet(project / "results" / "records" / f"{name}.parquet")
        assert len(df) == n, name
        assert (project / "results" / "logs" / "normalize" / f"{name}.log").exists()
    again = snakemake(project, "-n", "--cores", "1", *targets, mirror=mirror)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_invalid_config_is_rejected(project, mirror):
    cfg = project / "config" / "config.yaml"
    cfg.write_text(cfg.read_text() + "\nunknown_key: 1\n")
    res = snakemake(project, "-n", "--cores", "1", mirror=mirror, check=False)
    assert res.returncode != 0
    assert "unknown_key" in res.stdout + res.stderr
