from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from harmtrace.config import (
    ConfigError,
    all_datasets,
    answer_sets,
    check_config,
    enabled_analyses,
    graded_datasets,
    paper_enabled,
    source_datasets,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def test_the_default_config_is_consistent():
    answers = [
        f"{prompt_set}--{target}"
        for prompt_set in sorted(DEFAULT["respond"]["prompt_sets"])
        for target in DEFAULT["study"]["targets"]
    ]
    assert check_config(DEFAULT, ROOT) == [*DEFAULT["data"]["datasets"], *answers]


def test_answer_sets_name_prompt_set_target_and_kind():
    sets = answer_sets(DEFAULT)
    assert sets["harmbench--smollm2-safety"] == ("harmbench", "smollm2-safety", "harmful")
    assert sets["rho-overrefusal--smollm2-plain"][2] == "benign"
    off = copy.deepcopy(DEFAULT)
    off["respond"]["enabled"] = False
    assert answer_sets(off) == {}


def test_answer_sets_do_not_follow_mapping_key_order():
    """A config re-saved with sorted keys must plan the same notebook parameters."""
    shuffled = copy.deepcopy(DEFAULT)
    shuffled["respond"]["prompt_sets"] = dict(reversed(DEFAULT["respond"]["prompt_sets"].items()))
    assert list(answer_sets(shuffled)) == list(answer_sets(DEFAULT))
    assert next(iter(answer_sets(DEFAULT))).startswith(min(DEFAULT["respond"]["prompt_sets"]))


def test_the_model_study_entry_follows_the_study_targets(caplog):
    entry = enabled_analyses(DEFAULT)["model_study"]
    assert entry["datasets"] == list(answer_sets(DEFAULT))
    cfg = copy.deepcopy(DEFAULT)
    cfg["study"]["targets"] = []
    check_config(cfg, ROOT)
    assert "model_study" not in enabled_analyses(cfg)
    assert "analysis.model_study: left out of this run: no study dataset" in caplog.text


def test_respond_problems_are_named():
    cfg = copy.deepcopy(DEFAULT)
    cfg["study"]["targets"] = ["smollm2-plain", "ghost"]
    cfg["respond"]["prompt_sets"] = {"harmbench": "harmful", "mystery": "benign"}
    cfg["targets"]["smollm2-plain"] = {**cfg["targets"]["smollm2-plain"], "bogus": 1}
    cfg["analysis"]["model_study"]["parameters"]["treatment"] = "smollm2-safety"
    with pytest.raises(ConfigError) as err:
        check_config(cfg, ROOT)
    text = str(err.value)
    assert "study.targets: 'ghost' is not defined under `targets`" in text
    assert "respond.prompt_sets: 'mystery' is not configured" in text
    assert "targets.smollm2-plain.bogus" in text
    assert "analysis.model_study.parameters.treatment: 'smollm2-safety' is not in study" in text


def test_a_target_no_prompt_set_is_sent_to_is_an_error():
    cfg = copy.deepcopy(DEFAULT)
    cfg["respond"]["prompt_sets"] = {}
    with pytest.raises(ConfigError, match=r"study\.targets: no prompt set is sent to"):
        check_config(cfg, ROOT)


def test_user_datasets_follow_the_registered_ones(tmp_path):
    cfg = copy.deepcopy(DEFAULT)
    (tmp_path / "mine.csv").write_text("p\nhi\n")
    (tmp_path / "notebooks").mkdir()
    for spec in cfg["analysis"].values():
        (tmp_path / "notebooks" / f"{spec['notebook']}.ipynb").write_text("{}")
    cfg["data"]["user_datasets"] = {"mine": {"path": "mine.csv", "prompt_column": "p"}}
    cfg["respond"]["prompt_sets"]["mine"] = "harmful"
    assert all_datasets(cfg)[len(source_datasets(cfg)) - 1] == "mine"
    assert "mine--smollm2-plain" in check_config(cfg, tmp_path)


def test_every_problem_is_listed_at_once():
    cfg = copy.deepcopy(DEFAULT)
    cfg["data"]["datasets"] = ["harmbench", "nope"]
    cfg["study"]["datasets"].append("mystery")
    cfg["grader"]["embedded"]["train_datasets"].append("typo-set")
    cfg["analysis"]["transitions"]["notebook"] = "99_missing"
    with pytest.raises(ConfigError) as err:
        check_config(cfg, ROOT)
    text = str(err.value)
    assert "'nope' is not a registered dataset" in text
    assert "study.datasets: 'mystery' is neither registered nor in data.user_datasets" in text
    assert "grader.embedded.train_datasets: 'typo-set' is not in data.datasets" in text
    assert "analysis.transitions.notebook: no notebook" in text


def test_what_the_study_and_its_grader_need_is_built_without_listing_it():
    cfg = copy.deepcopy(DEFAULT)
    cfg["data"]["datasets"] = []
    built = check_config(cfg, ROOT)
    needed = [*cfg["study"]["datasets"], *cfg["grader"]["embedded"]["train_datasets"]]
    assert set(needed) <= set(built)
    assert "garak-refusal" in built  # the refusal lexicon
    assert set(answer_sets(cfg)) <= set(built)


def test_grader_blocks_are_checked_by_their_spec():
    cfg = copy.deepcopy(DEFAULT)
    cfg["grader"]["embedded"]["folds"] = 1
    with pytest.raises(ConfigError, match=r"grader\.embedded\.folds"):
        check_config(cfg, ROOT)


def test_embedded_training_refusal_and_transfer_sets_must_fit_together():
    cfg = copy.deepcopy(DEFAULT)
    block = cfg["grader"]["embedded"]
    block["train_datasets"] = ["openai-moderation", "strongreject", "strongreject"]
    block["source_weights"] = {"advbench": 2.0}
    block["refusal"]["lexicon"] = "no-lexicon"
    block["transfer"]["holdout"] = ["harmbench"]
    with pytest.raises(ConfigError) as err:
        check_config(cfg, ROOT)
    text = str(err.value)
    assert "grader.embedded.train_datasets: a dataset is listed twice" in text
    assert (
        "grader.embedded.source_weights: 'advbench' is not in grader.embedded.train_datasets"
        in text
    )
    assert "grader.embedded.refusal.lexicon: 'no-lexicon' is not in data.datasets" in text
    assert (
        "grader.embedded.transfer.holdout: 'harmbench' is not in grader.embedded.train_datasets"
        in text
    )
    assert (
        "grader.embedded.transfer.harm_word_source: 'rho-overrefusal' is not in "
        "grader.embedded.train_datasets" in text
    )


def test_source_weights_must_be_positive():
    cfg = copy.deepcopy(DEFAULT)
    cfg["grader"]["embedded"]["source_weights"] = {"strongreject": 0}
    with pytest.raises(ConfigError, match=r"grader\.embedded\.source_weights"):
        check_config(cfg, ROOT)


def test_a_backend_grades_only_the_datasets_listed_for_it(tmp_path):
    cfg = copy.deepcopy(DEFAULT)
    cfg["grade"]["graders"] = ["embedded", "human"]
    cfg["grade"]["datasets"] = {"human": ["hh-rlhf-harmless"]}
    assert graded_datasets(cfg, "human") == ["hh-rlhf-harmless"]
    assert graded_datasets(cfg, "embedded") == all_datasets(DEFAULT)
    check_config(cfg, ROOT)

    cfg["grade"]["datasets"] = {"human": ["nope"], "oracle": ["harmbench"]}
    cfg["analysis"]["transitions"]["select"] = "answers"
    cfg["analysis"]["transitions"]["grader"] = "human"
    with pytest.raises(ConfigError) as err:
        check_config(cfg, ROOT)
    text = str(err.value)
    assert "grade.datasets.human: 'nope' is not configured" in text
    assert "grade.datasets.oracle: 'oracle' is not in grade.graders" in text
    assert (
        "analysis.transitions.datasets: 'air-bench-2024' is not graded by 'human' "
        "(grade.datasets.human)"
    ) in text


def test_the_relevance_check_needs_the_reference_grader_to_grade_its_dataset():
    cfg = copy.deepcopy(DEFAULT)
    cfg["grade"]["graders"] = ["human", "embedded"]
    cfg["grade"]["datasets"] = {"human": ["hh-rlhf-harmless"]}
    cfg["study"]["grader"] = "human"  # validate_relevance reads the study grader's judgments
    for spec in cfg["analysis"].values():
        spec["enabled"] = False
    with pytest.raises(ConfigError, match="'air-bench-2024' is not graded by the study's grader"):
        check_config(cfg, ROOT)


def test_a_disabled_analysis_is_neither_checked_nor_run():
    cfg = copy.deepcopy(DEFAULT)
    cfg["analysis"]["transitions"].update(enabled=False, datasets=["gone"], notebook="99_x")
    check_config(cfg, ROOT)
    assert "transitions" not in enabled_analyses(cfg)
    assert list(enabled_analyses(DEFAULT)) == list(DEFAULT["analysis"])


def test_the_paper_is_built_unless_turned_off():
    assert paper_enabled(DEFAULT)
    assert not paper_enabled({**DEFAULT, "paper": {"build": False}})
    assert paper_enabled({k: v for k, v in DEFAULT.items() if k != "paper"})


def test_a_dataset_that_no_grader_grades_is_named():
    cfg = copy.deepcopy(DEFAULT)
    cfg["grade"]["datasets"] = {"embedded": ["openai-moderation"]}
    with pytest.raises(ConfigError) as err:
        check_config(cfg, ROOT)
    assert "data: 'harmbench' is graded by no grader" in str(err.value)
    assert "grade.datasets.embedded" in str(err.value)
    assert "'openai-moderation' is graded by no grader" not in str(err.value)


def test_refusal_sets_tested_on_are_configured_and_never_trained_on():
    cfg = copy.deepcopy(DEFAULT)
    refusal = cfg["grader"]["embedded"]["refusal"]
    refusal["evaluate"] = [*refusal["labels"], "no-such-set"]
    with pytest.raises(ConfigError) as err:
        check_config(cfg, ROOT)
    text = str(err.value)
    assert "refusal.evaluate: 'no-such-set' is neither in data.datasets nor registered" in text
    assert "refusal.evaluate: 'pyrit-refusal' is also a training set (refusal.labels)" in text


def test_a_test_only_refusal_set_the_run_does_not_build_is_left_out(caplog):
    from harmtrace.config import refusal_sources

    cfg = copy.deepcopy(DEFAULT)
    cfg["data"]["datasets"].remove("pyrit-refusal-extra")
    cfg["study"]["datasets"].remove("pyrit-refusal-extra")
    datasets = check_config(cfg, ROOT)
    assert "'pyrit-refusal-extra' is not in data.datasets: left out" in caplog.text
    assert refusal_sources(cfg, datasets) == ["pyrit-refusal", "air-bench-2024"]
    assert refusal_sources(DEFAULT, check_config(DEFAULT, ROOT)) == [
        "pyrit-refusal",
        "air-bench-2024",
        "pyrit-refusal-extra",
    ]
