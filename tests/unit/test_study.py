"""The study block: what each analysis and stage takes from it (harmtrace.study)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from harmtrace.config import ConfigError, check_config
from harmtrace.study import (
    enabled_analyses,
    graded_datasets,
    graders,
    kinds,
    plan_analyses,
    relevance_check_dataset,
    source_datasets,
)
from harmtrace.trees.config import check_trees_config

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def own_data(tmp_path: Path) -> dict:
    """The README's own-labelled-data overlay merged into the defaults (as Snakemake does)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mystudy.csv").write_text("id,prompt,response\n1,a,b\n")
    (tmp_path / "notebooks").mkdir()
    for entry in DEFAULT["analysis"].values():
        (tmp_path / "notebooks" / f"{entry['notebook']}.ipynb").write_text("{}")
    cfg = copy.deepcopy(DEFAULT)
    cfg["data"]["datasets"] = []
    cfg["data"]["user_datasets"] = {
        "mystudy": {
            "path": "data/mystudy.csv",
            "prompt_column": "prompt",
            "response_column": "response",
            "id_column": "id",
        }
    }
    cfg["study"].update(datasets=["mystudy"], targets=[], reference_grader="human")
    return cfg


def test_the_default_study_resolves_to_the_shipped_analyses():
    running = enabled_analyses(DEFAULT)
    answers = ["air-bench-2024", "hh-rlhf-harmless"]
    for name in ("transitions", "asymmetry", "relevance_by_severity", "moderation"):
        assert running[name]["datasets"] == answers
        assert running[name]["grader"] == "embedded"
    assert running["validity"]["datasets"] == [
        "openai-moderation",
        "air-bench-2024",
        "hh-rlhf-harmless",
        "pyrit-refusal",
        "pyrit-refusal-extra",
        "pyrit-harm",
        "pyrit-objective",
    ]
    assert plan_analyses(DEFAULT).left_out == {}


def test_kinds_follow_the_registry_and_the_user_file(tmp_path):
    assert kinds(DEFAULT, "air-bench-2024") == {"answers", "labelled"}
    assert kinds(DEFAULT, "pyrit-harm") == {"labelled"}  # tests the grader, not a model
    assert kinds(DEFAULT, "harmbench") == set()
    assert kinds(DEFAULT, "harmbench--smollm2-plain") == {"model_answers"}
    assert kinds(own_data(tmp_path), "mystudy") == {"answers", "labelled"}


def test_an_own_data_study_needs_no_switching_off(tmp_path, caplog):
    cfg = own_data(tmp_path)
    built = check_config(cfg, tmp_path)
    plan = plan_analyses(cfg)
    assert set(plan.running) == {
        "transitions",
        "asymmetry",
        "relevance_by_severity",
        "validity",
        "moderation",
    }
    assert all(spec["datasets"] == ["mystudy"] for spec in plan.running.values())
    assert "analysis.harmbenefit: left out of this run: its datasets" in caplog.text
    assert "analysis.model_study: left out of this run: no study dataset" in caplog.text
    assert "grade.relevance_check: left out of this run" in caplog.text
    assert relevance_check_dataset(cfg) is None
    # the grader's training sets are built, the shipped benchmarks are not
    assert "openai-moderation" in built and "mystudy" in built
    assert "air-bench-2024" not in built and "hh-rlhf-harmless" not in built
    assert source_datasets(cfg)[-1] == "mystudy"
    # the reference grader reads the labels of the study's own file only
    assert graders(cfg) == ["embedded", "human"]
    assert graded_datasets(cfg, "human") == ["mystudy"]
    validity = plan.running["validity"]
    assert validity["parameters"]["reference_grader"] == "human"
    assert "results/judgments/human/{dataset}.parquet" in validity["inputs"]
    assert check_trees_config(cfg, built).generators == ()
    assert "trees: left out of this run" in caplog.text


def test_an_entry_naming_a_dataset_outside_the_study_is_left_out(caplog):
    cfg = copy.deepcopy(DEFAULT)
    cfg["study"]["datasets"].remove("harmbench")
    check_config(cfg, ROOT)
    assert "harmbenefit" not in enabled_analyses(cfg)
    assert "['harmbench'] are not in the study" in caplog.text


def test_a_user_file_nothing_reads_is_an_error(tmp_path):
    cfg = own_data(tmp_path)
    cfg["study"]["datasets"] = ["openai-moderation"]
    cfg["study"]["reference_grader"] = None
    with pytest.raises(ConfigError, match=r"data\.user_datasets\.mystudy: nothing in the run"):
        check_config(cfg, tmp_path)


def test_study_names_are_checked(tmp_path):
    cfg = own_data(tmp_path)
    cfg["study"].update(datasets=["mystudy", "nope"], grader="oracle", reference_grader="oracle")
    with pytest.raises(ConfigError) as err:
        check_config(cfg, tmp_path)
    text = str(err.value)
    assert "study.datasets: 'nope' is neither registered nor in data.user_datasets" in text
    assert "study.grader: unknown grader 'oracle'" in text
    assert "study.reference_grader: must differ from study.grader" in text


def test_a_reference_grader_must_grade_every_dataset_it_is_compared_on(tmp_path):
    cfg = own_data(tmp_path)
    cfg["study"]["datasets"] = ["mystudy", "openai-moderation"]
    with pytest.raises(ConfigError, match="'openai-moderation' is not graded by the reference"):
        check_config(cfg, tmp_path)


def test_labels_as_the_measurement_check_the_offline_grader_against_them(tmp_path):
    """study.grader human (the README's block): the analyses read the labels, validity
    checks the other grader against them, and the human backend grades the user file only."""
    cfg = own_data(tmp_path)
    cfg["study"].update(grader="human", reference_grader=None)
    check_config(cfg, tmp_path)
    plan = plan_analyses(cfg)
    assert plan.running["transitions"]["grader"] == "human"
    assert plan.running["validity"]["grader"] == "embedded"
    assert plan.running["validity"]["parameters"]["reference_grader"] == "human"
    assert graded_datasets(cfg, "human") == ["mystudy"]
    assert graders(cfg) == ["embedded", "human"]
