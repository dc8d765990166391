"""Shared fixtures: where the offline mirror lives and a fetched-data cache per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.devdata import mirror_root

ROOT = Path(__file__).resolve().parents[1]


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
