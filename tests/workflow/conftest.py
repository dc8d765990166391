"""Fixtures for workflow tests: a scratch project, and one full DAG run shared by modules."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.workflow.helpers import SMALL, copy_project, edit_config, snakemake

NUMBERS_TEX = "results/paper/numbers.tex"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, mirror: Path) -> Path:
    """The whole DAG up to the paper's macros (no TeX needed), on the mirror."""
    project = copy_project(tmp_path_factory.mktemp("e2e") / "project")
    edit_config(project, SMALL)
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    snakemake(project, "--cores", "2", "--omit-from", "paper", mirror=mirror)
    assert (project / NUMBERS_TEX).is_file()
    return project
