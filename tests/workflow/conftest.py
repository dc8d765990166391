"""Fixtures for workflow tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflow.helpers import copy_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")
