"""Notebook inputs resolve from the project root, so JupyterLab (cwd notebooks/) works."""

from __future__ import annotations

import pytest

from harmtrace.analysis.load import (
    MissingResultsError,
    load_judged,
    load_judgments,
    project_path,
    project_root,
    sample_labels,
)
from harmtrace.errors import HarmtraceError


def _project(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "results" / "records").mkdir(parents=True)
    return tmp_path


def test_relative_paths_resolve_from_the_notebooks_folder(tmp_path, monkeypatch):
    root = _project(tmp_path)
    monkeypatch.chdir(root / "notebooks")
    assert project_root() == root.resolve()
    assert project_path("results/records") == root.resolve() / "results" / "records"
    assert project_path(tmp_path / "abs") == tmp_path / "abs"
    monkeypatch.chdir(root)
    assert project_path("results/records").exists()


def test_missing_results_say_how_to_make_them(tmp_path, monkeypatch):
    root = _project(tmp_path)
    monkeypatch.chdir(root / "notebooks")
    with pytest.raises(MissingResultsError, match="snakemake"):
        load_judged(["my-data"], "human")
    with pytest.raises(HarmtraceError, match="no datasets"):
        load_judged([], "human")
    assert load_judgments(["my-data"], "human") is None


def test_sample_labels():
    assert sample_labels(["a:chosen", "b"]) == {"a:chosen": "a (chosen)", "b": "b"}
