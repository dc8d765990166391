"""A library edit replans exactly the jobs that run the edited code (harmtrace.codehash)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflow.helpers import planned_rules

pytestmark = pytest.mark.workflow

TARGET = ("--omit-from", "paper")


def _planned_after_edit(built: Path, mirror: Path, rel: str) -> set[str]:
    path = built / "src" / "harmtrace" / rel
    original = path.read_text()
    path.write_text(original + "\n# an edit\n")
    try:
        return planned_rules(built, mirror, *TARGET)
    finally:
        path.write_text(original)


def test_editing_the_embedded_grader_replans_training_and_everything_downstream(built, mirror):
    planned = _planned_after_edit(built, mirror, "graders/embedded/model.py")
    assert {"train_grader", "evaluate_grader", "grade", "compare_extractors"} <= planned
    assert "validate_relevance" in planned
    assert {"flag_rates", "notebook_transitions", "numbers"} <= planned
    assert not planned & {"fetch", "normalize", "cited_numbers", "data_numbers"}


def test_editing_statistics_replans_the_notebooks_but_not_the_grading(built, mirror):
    planned = _planned_after_edit(built, mirror, "stats/paired.py")
    assert {"notebook_transitions", "notebook_asymmetry", "notebook_validity", "numbers"} <= planned
    assert not planned & {
        "train_grader",
        "evaluate_grader",
        "grade",
        "compare_extractors",
        "fetch",
        "normalize",
    }


def test_editing_one_verb_does_not_replan_the_other_verbs_of_its_module(built, mirror):
    path = built / "src" / "harmtrace" / "cli" / "report.py"
    original = path.read_text()
    path.write_text(original.replace('"""Figures quoted from the seed study', '"""Quoted figures'))
    try:
        planned = planned_rules(built, mirror, *TARGET)
    finally:
        path.write_text(original)
    assert planned == {"cited_numbers", "numbers"}


def test_nothing_replans_without_an_edit(built, mirror):
    assert planned_rules(built, mirror, *TARGET) == set()
