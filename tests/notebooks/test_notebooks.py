"""Notebooks stay thin: tagged parameters first, no stored outputs, logic imported."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
import yaml

from harmtrace.config import enabled_analyses

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_first_code_cell_holds_tagged_parameters(path: Path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert all("parameters" not in c.metadata.get("tags", []) for c in code[1:])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_without_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_no_function_or_class_definitions(path: Path):
    """Logic belongs in harmtrace (unit tested); a notebook only loads, calls and plots."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            lines = cell.source.splitlines()
            assert not any(ln.lstrip().startswith(("def ", "class ", "lambda")) for ln in lines)


def test_there_is_a_transitions_notebook():
    assert any(p.name == "01_transitions.ipynb" for p in NOTEBOOKS)


ANALYSIS = [
    "01_transitions.ipynb",
    "02_category_asymmetry.ipynb",
    "03_relevance.ipynb",
    "04_grader_validity.ipynb",
]
PARAMETERS = {
    "grader",
    "datasets",
    "alpha",
    "n_boot",
    "seed",
    "numbers_out",
    "tables_dir",
    "figures_dir",
    "records_dir",
    "judgments_dir",
}


@pytest.mark.parametrize("name", ANALYSIS)
def test_analysis_notebooks_take_every_parameter(name: str):
    """Grader, datasets, alpha, bootstrap iterations, seed and output places are parameters."""
    path = NOTEBOOKS[0].parent / name
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    assigned = {
        t.id
        for node in ast.parse(cell.source).body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    assert PARAMETERS <= assigned, f"{name} lacks parameters {PARAMETERS - assigned}"
    # relative paths are resolved from the project root, so JupyterLab (cwd notebooks/)
    # and papermill (cwd root) read the same results/
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "project_path(numbers_out)" in code


def _defaults(path: Path) -> dict:
    """The values the tagged parameters cell assigns (literals only)."""
    import ast

    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    out = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def _injected(producer: str, spec: dict) -> dict:
    """What the generic notebook rule injects (workflow/rules/common.smk)."""
    stem = spec["notebook"]
    return {
        **spec.get("parameters", {}),
        "producer": producer,
        "grader": spec["grader"],
        "datasets": spec["datasets"],
        "records_dir": "results/records",
        "judgments_dir": "results/judgments",
        "tables_dir": f"results/tables/{stem}",
        "figures_dir": f"results/figures/{stem}",
        "numbers_out": f"results/numbers/{stem}.json",
    }


CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
ENTRIES = enabled_analyses(CONFIG)  # datasets_from resolved as the workflow does


@pytest.mark.parametrize("producer", sorted(ENTRIES))
def test_defaults_match_what_the_workflow_injects(producer: str):
    """Run as-is from JupyterLab, a notebook does what the DAG does with the default config."""
    spec = ENTRIES[producer]
    defaults = _defaults(ROOT / "notebooks" / f"{spec['notebook']}.ipynb")
    injected = _injected(producer, spec)
    assert {k: defaults.get(k) for k in injected} == injected


def test_the_injected_parameters_are_the_rule_s():
    """The test's copy of the injection matches the rule's (kept in common.smk)."""
    text = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    for key in ("producer", "grader", "datasets", "records_dir", "judgments_dir"):
        assert f'"{key}":' in text
    for key in ("tables_dir", "figures_dir", "numbers_out"):
        assert f'"{key}":' in text


def test_every_notebook_has_a_config_entry():
    stems = {spec["notebook"] for spec in ENTRIES.values()}
    assert {p.stem for p in NOTEBOOKS} <= stems
