"""Shared fixtures: where the offline mirror lives and a fetched-data cache per session;
which tests share a worker when `make test` runs them on two (pytest-xdist)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.devdata import mirror_root

ROOT = Path(__file__).resolve().parents[1]

WORKER_GROUPS = ("workflow", "slurm", "realserver")
"""Test folders whose tests all run on one xdist worker, in their collection order: the
DAG tests share one build (``tests/workflow/conftest.py::built``) and the crash tests must
come last; the Slurm cluster and the `transformers serve` server start once, not once per
worker. Every other test is its own unit and goes to whichever worker is free, mostly
beside the DAG tests, whose jobs leave a core idle about a tenth of the time and whose
Slurm runs mostly wait."""


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadscope`` with these scopes (``loadgroup``'s marks do not reach the node
    ids under pytest 9.2, whose ``nodeid`` no longer reads the ``_nodeid`` xdist 3.8 sets)."""
    from xdist.scheduler import LoadScopeScheduling

    class ByFolder(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            parts = nodeid.split("/", 2)
            if len(parts) == 3 and parts[0] == "tests" and parts[1] in WORKER_GROUPS:
                return parts[1]
            return nodeid

    return ByFolder(config, log)


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
