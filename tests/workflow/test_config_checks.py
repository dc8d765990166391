"""Config values are checked against each other when the Snakefile is parsed, and any
subset of the configured datasets can be analysed."""

from __future__ import annotations

import pytest

from tests.workflow.helpers import edit_config, planned_rules, snakemake

pytestmark = pytest.mark.workflow


USER = {"path": "x.csv", "prompt_column": "p"}
CASES = {
    "unregistered": (
        {"data": {"datasets": ["openai-moderation", "no-such-set"]}},
        "'no-such-set' is not a registered dataset",
    ),
    "analysed-not-configured": (
        {"analysis": {"transitions": {"datasets": ["harmbench", "elsewhere"]}}},
        "analysis.transitions.datasets: 'elsewhere' is not configured",
    ),
    "train-not-configured": (
        {"grader": {"embedded": {"train_datasets": ["openai-moderation", "mystery-set"]}}},
        "grader.embedded.train_datasets: 'mystery-set' is not in data.datasets",
    ),
    "refusal-labels-not-configured": (
        {"grader": {"embedded": {"refusal": {"labels": ["mystery-set"]}}}},
        "grader.embedded.refusal.labels: 'mystery-set' is not in data.datasets",
    ),
    "unknown-grader": (
        {"grade": {"graders": ["oracle"]}},
        "grade.graders: unknown grader 'oracle'",
    ),
    "grader-not-run": (
        {"analysis": {"transitions": {"grader": "human"}}},
        "analysis.transitions.grader: 'human' is not in grade.graders",
    ),
    "user-takes-registered-name": (
        {"data": {"user_datasets": {"harmbench": USER}}},
        "may not take the registered name 'harmbench'",
    ),
    "user-file-missing": (
        {"data": {"user_datasets": {"mine": {**USER, "path": "missing.csv"}}}},
        "data.user_datasets.mine.path: no such file",
    ),
}


@pytest.mark.parametrize(("over", "message"), CASES.values(), ids=CASES.keys())
def test_inconsistent_config_fails_at_parse_time_naming_the_key(project, mirror, over, message):
    edit_config(project, over)
    res = snakemake(project, "-n", "--cores", "1", mirror=mirror, check=False)
    assert res.returncode != 0
    assert message in res.stdout + res.stderr


@pytest.mark.parametrize(
    "datasets",
    [["harmbench"], ["openai-moderation", "simplesafetytests"], ["hh-rlhf-harmless"]],
)
def test_any_subset_of_the_datasets_can_be_analysed(project, mirror, datasets):
    edit_config(project, {"analysis": {"transitions": {"datasets": datasets}}})
    planned = planned_rules(project, mirror, "results/notebooks/01_transitions.ipynb")
    assert "notebook_transitions" in planned
    res = snakemake(project, "-n", "--cores", "1", "-p", mirror=mirror)
    out = res.stdout + res.stderr
    for name in datasets:
        assert f"results/judgments/embedded/{name}.parquet" in out


def test_a_user_dataset_joins_the_dag_by_config(project, mirror):
    (project / "mine.csv").write_text("q,a\nhow do I bake bread,Knead the dough.\n")
    mine = {"path": "mine.csv", "prompt_column": "q", "response_column": "a"}
    edit_config(
        project,
        {
            "data": {"user_datasets": {"mine": mine}},
            "study": {"datasets": ["mine"]},
        },
    )
    planned = planned_rules(project, mirror, "results/judgments/embedded/mine.parquet")
    assert "normalize" in planned and "grade" in planned
    res = snakemake(project, "--cores", "1", "results/records/mine.parquet", mirror=mirror)
    assert res.returncode == 0
    assert (project / "results" / "records" / "mine.parquet").is_file()
