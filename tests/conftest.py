"""Shared fixtures: where the offline mirror lives and a fetched-data cache per session;
which tests share a worker when `make test` runs them on two (pytest-xdist)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.devdata import mirror_root

ROOT = Path(__file__).resolve().parents[1]

WORKER_GROUPS = {"workflow": "dag", "slurm": "slurm", "realserver": "server"}
"""Test folder -> the one xdist worker its tests run on (``--dist loadgroup``): the DAG
tests share one build (``tests/workflow/conftest.py::built``) and run in their order; the
Slurm cluster and the `transformers serve` server are started once, not once per worker.
Everything else spreads over both workers, mostly beside the DAG tests, whose jobs leave a
core idle about a tenth of the time and whose Slurm runs mostly wait."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.relative_to(ROOT / "tests").parts[0]
        if folder in WORKER_GROUPS:
            item.add_marker(pytest.mark.xdist_group(WORKER_GROUPS[folder]))


@pytest.fixture(scope="session")
def mirror() -> Path:
    try:
        path = mirror_root()
    except FileNotFoundError:
        path = None
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs the benchmark mirror: set HARMTRACE_DATA_MIRROR")
        pytest.skip("no benchmark mirror: set HARMTRACE_DATA_MIRROR")
    return path


@pytest.fixture(scope="session")
def raw_dir(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All mirrored datasets fetched once per test session."""
    from harmtrace.data.fetch import fetch_dataset
    from harmtrace.data.registry import load_registry

    raw = tmp_path_factory.mktemp("raw")
    for spec in load_registry().values():
        if spec.mirrored:
            fetch_dataset(spec, raw, mirror)
    return raw
