"""The workflow's moderate block: parse-time checks and what notebook 06 is given."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from harmtrace.config import ConfigError, enabled_analyses
from harmtrace.errors import HarmtraceError
from harmtrace.graders.features import dataset_embeddings, embedding_parts
from harmtrace.moderate.settings import (
    check_moderate_config,
    datasets_with_responses,
    notebook_injection,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
DATASETS = CONFIG["data"]["datasets"]


def test_the_shipped_config_passes():
    s = check_moderate_config(CONFIG, DATASETS)
    assert s.policies == ["observe", "block_high", "redact_medium_block_high"]
    # every shipped dataset with responses, in config order (PyRIT's refusal pairs too)
    assert s.datasets == [
        "air-bench-2024",
        "hh-rlhf-harmless",
        "pyrit-refusal",
        "pyrit-refusal-extra",
        "pyrit-harm",
        "pyrit-objective",
    ]
    assert s.notebook_entries == ["moderation"]


def test_only_datasets_with_responses_are_moderated():
    config = copy.deepcopy(CONFIG)
    config["data"]["user_datasets"] = {
        "pairs": {"path": "x.csv", "prompt_column": "p", "response_column": "r"},
        "prompts": {"path": "y.csv", "prompt_column": "p", "response_column": None},
    }
    names = [*DATASETS, "pairs", "prompts"]
    assert datasets_with_responses(config, names) == [
        "air-bench-2024",
        "hh-rlhf-harmless",
        "pyrit-refusal",
        "pyrit-refusal-extra",
        "pyrit-harm",
        "pyrit-objective",
        "pairs",
    ]


def test_every_problem_is_listed_at_once():
    config = copy.deepcopy(CONFIG)
    config["moderate"].update(
        grader="openai",
        default=["observe", "nope"],
        clock="tomorrow",
        policies={
            "rw": {
                "version": "1",
                "description": "x",
                "actions": {"low": "pass", "medium": "rewrite", "high": "block"},
            }
        },
    )
    config["analysis"]["moderation"]["datasets"] = ["simplesafetytests"]
    config["analysis"]["moderation"]["grader"] = "embedded"  # named, so it must match
    config["analysis"]["moderation"]["parameters"]["model_dir"] = "elsewhere"
    with pytest.raises(ConfigError) as err:
        check_moderate_config(config, DATASETS)
    text = str(err.value)
    for needle in (
        "moderate.grader: 'openai' is not in grade.graders",
        "cannot score single sentences",
        "unknown policy 'nope'",
        "moderate.policies.rw",
        "moderate.clock",
        "analysis.moderation.grader",
        "analysis.moderation.parameters.model_dir: set by the workflow",
        "'simplesafetytests' has no responses",
    ):
        assert needle in text, needle
    assert text.count("moderate.policies.rw") == 1


def test_notebook_is_given_the_traced_policies_and_the_model():
    s = check_moderate_config(CONFIG, DATASETS)
    params, inputs = notebook_injection(
        s, ["observe", "block_medium", "block_high"], "models/x", "results/traces"
    )
    assert params["trace_policies"] == ["observe", "block_high"]
    assert params["model_dir"] == "models/x"
    assert params["judge_dir"] == "results/models/moderation-judge"
    assert inputs == [
        "models/x/model.pkl",
        "results/models/moderation-judge/model.pkl",
        "results/traces/observe/{dataset}.jsonl",
        "results/traces/block_high/{dataset}.jsonl",
    ]
    assert params["embedding_caches"] == []
    params, inputs = notebook_injection(
        s, ["observe"], "models/x", "results/traces", ["emb/m/{dataset}.parquet"], ["a", "b"]
    )
    assert params["embedding_caches"] == ["emb/m/a.parquet", "emb/m/b.parquet"]
    assert inputs[-1] == "emb/m/{dataset}.parquet"


def test_notebook_defaults_equal_the_injection_for_the_default_config():
    """Run as-is, notebook 06 does what the workflow does with the default config."""
    import ast

    import nbformat

    nb = nbformat.read(ROOT / "notebooks" / "06_moderation_policy.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    defaults = {
        n.targets[0].id: ast.literal_eval(n.value)
        for n in ast.parse(cell.source).body
        if isinstance(n, ast.Assign)
    }
    s = check_moderate_config(CONFIG, DATASETS)
    policies = CONFIG["analysis"]["moderation"]["parameters"]["policies"]
    model_dir = CONFIG["grader"]["embedded"].get("model_dir", "results/models/embedded")
    embedding_dir = CONFIG["grader"]["embedded"].get("embedding_dir", "results/embeddings")
    parts = embedding_parts(CONFIG["grader"]["embedded"]["extractor"])
    templates = [str(dataset_embeddings(embedding_dir, p, "{dataset}")) for p in parts]
    (entry,) = s.notebook_entries  # its datasets as the workflow resolves them
    datasets = enabled_analyses(CONFIG)[entry]["datasets"]
    params, _ = notebook_injection(s, policies, model_dir, "results/traces", templates, datasets)
    assert params["embedding_caches"]  # the default reads the moderation jobs' vectors
    assert {k: defaults[k] for k in params} == params


def test_user_policy_reaches_the_cli_as_json():
    config = copy.deepcopy(CONFIG)
    spec = {
        "version": "1",
        "description": "strict",
        "actions": {"low": "block", "medium": "block", "high": "block"},
    }
    config["moderate"]["policies"] = {"strict": spec}
    config["moderate"]["default"] = ["observe", "strict"]
    s = check_moderate_config(config, DATASETS)
    flag, payload = s.policy_spec_args("strict")
    assert flag == "--policy-spec"
    assert json.loads(payload) == {"name": "strict", **spec}
    assert s.policy_spec_args("observe") == []
    outs = [f"t/{p}/d.jsonl" for p in s.policies]
    args = s.policies_args(outs)
    assert args[:4] == ["--policy", s.policies[0], "--out", outs[0]]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--policy"] == s.policies
    assert [args[i + 1] for i, a in enumerate(args) if a == "--out"] == outs
    assert args.count("--policy-spec") == 1 and payload in args
    with pytest.raises(HarmtraceError, match="2 policies, 1 outputs"):
        s.policies_args(outs[:1])


def test_moderation_follows_what_its_grader_grades_and_can_be_turned_off():
    config = copy.deepcopy(CONFIG)
    config["grade"]["graders"] = ["embedded", "human"]
    config["grade"]["datasets"] = {"embedded": ["openai-moderation", "hh-rlhf-harmless"]}
    config["analysis"]["moderation"]["datasets"] = ["air-bench-2024"]
    with pytest.raises(ConfigError, match="'air-bench-2024' is not graded by 'embedded'"):
        check_moderate_config(config, DATASETS)
    config["analysis"]["moderation"]["datasets"] = ["hh-rlhf-harmless"]
    assert check_moderate_config(config, DATASETS).datasets == ["hh-rlhf-harmless"]

    config["moderate"]["enabled"] = False
    with pytest.raises(ConfigError, match=r"set analysis\.moderation\.enabled: false"):
        check_moderate_config(config, DATASETS)
    config["analysis"]["moderation"]["enabled"] = False
    off = check_moderate_config(config, DATASETS)
    assert off.policies == [] and off.datasets == [] and off.notebook_entries == []


def test_with_moderation_completes_the_notebook_entry_without_touching_its_input():
    from harmtrace.config import enabled_analyses
    from harmtrace.moderate.settings import with_moderation

    s = check_moderate_config(CONFIG, DATASETS)
    analyses = enabled_analyses(CONFIG)
    before = copy.deepcopy(analyses)
    out = with_moderation(analyses, s, "results/models/x", "results/traces", "pkg.backend")
    assert analyses == before  # a new mapping: the resolved config is never mutated
    (entry,) = s.notebook_entries
    assert out[entry]["grader"] == s.grader and out[entry]["backend_modules"] == ["pkg.backend"]
    assert out[entry]["parameters"]["model_dir"] == "results/models/x"
    assert "results/models/x/model.pkl" in out[entry]["inputs"]
    others = [name for name in analyses if name != entry]
    assert others and all(out[name] == analyses[name] for name in others)
