"""Fixtures for workflow tests: a scratch project, and one full DAG run shared by modules."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.workflow.helpers import PILOT, copy_project, edit_config, snakemake

NUMBERS_TEX = "results/paper/numbers.tex"
LAST = ("test_crash_recovery.py",)
"""Modules that run after the others on the shared project: the crash tests retrain the
grader (same bytes, newer files), which would make the next full run redo everything
downstream of it (about 4 minutes of CI)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name in LAST)  # stable: other orders are kept


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, mirror: Path) -> Path:
    """The whole DAG up to the paper's macros (no TeX needed), on the mirror."""
    project = copy_project(tmp_path_factory.mktemp("e2e") / "project")
    edit_config(project, PILOT)
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    snakemake(project, "--cores", "2", "--omit-from", "paper", mirror=mirror)
    assert (project / NUMBERS_TEX).is_file()
    return project
