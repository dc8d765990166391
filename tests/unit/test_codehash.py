from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harmtrace import codehash

SRC = Path(codehash.__file__).resolve().parent


@pytest.fixture
def pkg(tmp_path, monkeypatch):
    """A copy of the package that the hash functions read instead of the real one."""
    root = tmp_path / "harmtrace"
    shutil.copytree(SRC, root, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codehash, "ROOT", root)
    codehash._module_imports.cache_clear()
    codehash._verb.cache_clear()
    yield root
    codehash._module_imports.cache_clear()
    codehash._verb.cache_clear()


def _edit(path: Path) -> None:
    path.write_text(path.read_text() + "\n# edited\n")
    codehash._module_imports.cache_clear()
    codehash._verb.cache_clear()


def test_a_verb_covers_what_it_imports_and_not_other_stages():
    files = codehash.describe(verbs=["fetch"])
    assert "data/fetch.py" in files and "data/registry.yaml" in files
    assert not [f for f in files if f.startswith(("graders/", "stats/", "analysis/"))]
    # the training verbs reach the backend through the registry; rules add its modules
    grading = codehash.describe(verbs=["train-grader"], modules=["harmtrace.graders.embedded"])
    assert "graders/embedded/model.py" in grading and "graders/calibration.py" in grading
    assert not [f for f in grading if f.startswith(("stats/", "analysis/", "report/"))]
    # the grader's evaluation takes its intervals from statsmodels, not harmtrace.stats
    evaluation = codehash.describe(verbs=["evaluate-grader"])
    assert "graders/evaluation.py" in evaluation
    assert not [f for f in evaluation if f.startswith(("stats/", "analysis/"))]


def test_registry_backends_are_added_explicitly():
    plain = codehash.describe(verbs=["grade"])
    assert not [f for f in plain if f.startswith("graders/embedded/")]  # imported by name
    full = codehash.describe(verbs=["grade"], modules=["harmtrace.graders.embedded"])
    assert "graders/embedded/__init__.py" in full and "graders/relevance.py" in full


def test_notebook_imports_are_followed(tmp_path):
    nb = tmp_path / "n.ipynb"
    cells = [
        {"cell_type": "code", "source": ["from harmtrace.stats import newcombe_paired_diff_ci\n"]}
    ]
    nb.write_text(json.dumps({"cells": cells}))
    files = codehash.describe(notebooks=[nb])
    assert "stats/paired.py" in files and "stats/__init__.py" in files


def test_hash_moves_with_imported_code_only(pkg):
    fetch = codehash.code_hash(verbs=["fetch"])
    backend = ["harmtrace.graders.embedded"]
    train = codehash.code_hash(verbs=["train-grader"], modules=backend)
    _edit(pkg / "graders" / "embedded" / "model.py")
    assert codehash.code_hash(verbs=["fetch"]) == fetch
    assert codehash.code_hash(verbs=["train-grader"], modules=backend) != train


def test_editing_one_verb_leaves_its_neighbours_alone(pkg):
    grade = pkg / "cli" / "grade.py"
    before = {v: codehash.code_hash(verbs=[v]) for v in ("flag-rates", "train-grader")}
    text = grade.read_text().replace(
        '"""How often prompts are flagged', '"""How often, per category, prompts are flagged'
    )
    grade.write_text(text)
    codehash._verb.cache_clear()
    assert codehash.code_hash(verbs=["flag-rates"]) != before["flag-rates"]
    assert codehash.code_hash(verbs=["train-grader"]) == before["train-grader"]


def test_unknown_verb_is_a_key_error():
    with pytest.raises(KeyError, match="no harmtrace verb 'nope'"):
        codehash.code_hash(verbs=["nope"])


def test_prompt_templates_in_data_folders_are_hashed():
    from harmtrace.codehash import describe

    files = describe(verbs=["grade"], modules=["harmtrace.graders.openai"])
    assert "graders/prompts/harm.system.v1.j2" in files
    assert "graders/prompts/llamaguard3.v1.yaml" in files
