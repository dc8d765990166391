"""Shared fixtures: where the offline mirror lives and a fetched-data cache per session;
which tests share a worker when `make test` runs them on two (pytest-xdist)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.devdata import mirror_root

ROOT = Path(__file__).resolve().parents[1]

WORKER_GROUPS = ("slurm", "realserver")
"""Test folders whose tests all run on one xdist worker: the Slurm cluster and the
`transformers serve` server start once, not once per worker."""

SHARED_BUILD = ("test_code_reruns.py", "test_crash_recovery.py", "test_end_to_end.py",
                "test_include_order.py", "test_user_labels.py")  # fmt: skip
"""The modules of tests/workflow that use the one pilot build (``tests/workflow/conftest.py::
built``): one worker, in collection order (the crash tests last). The other DAG tests
(dry runs, small projects of their own) spread like any test, mostly beside the build,
whose jobs leave a core idle about a tenth of the time; the Slurm runs mostly wait."""


def _scope(nodeid: str) -> str:
    parts = nodeid.split("/", 2)
    if len(parts) == 3 and parts[0] == "tests":
        if parts[1] in WORKER_GROUPS:
            return parts[1]
        if parts[1] == "workflow" and parts[2].split("::")[0] in SHARED_BUILD:
            return "shared-build"
    return nodeid


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadscope`` with the scopes of :func:`_scope` (``loadgroup``'s marks do not
    reach the node ids under pytest 9.2, whose ``nodeid`` no longer reads the ``_nodeid``
    that xdist 3.8 sets)."""
    from xdist.scheduler import LoadScopeScheduling

    class ByScope(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _scope(nodeid)

    return ByScope(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the pilot build outside :data:`SHARED_BUILD` would build it again
    on the other worker: refuse it at collection, naming the test."""
    stray = [
        item.nodeid
        for item in items
        if "built" in getattr(item, "fixturenames", ()) and _scope(item.nodeid) == item.nodeid
    ]
    if stray:
        raise pytest.UsageError(f"add their modules to tests/conftest.py:SHARED_BUILD: {stray}")


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
