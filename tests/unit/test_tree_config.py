"""The trees: block of the workflow config: schema, cross-field checks, notebook entry."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml

from harmtrace.config import ConfigError
from harmtrace.trees.config import check_trees_config

ROOT = Path(__file__).resolve().parents[2]
CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
DATASETS = CONFIG["data"]["datasets"]


def test_default_config_is_valid_and_consistent():
    jsonschema.validate(CONFIG, SCHEMA)
    t = check_trees_config(CONFIG, DATASETS)
    assert t.generators == ("embedded",)
    assert set(t.fit_datasets) <= set(t.datasets) <= set(DATASETS)
    assert t.fit["bootstrap"] == CONFIG["trees"]["fit"]["bootstrap"]


def test_every_schema_key_is_described():
    def walk(node, where):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                assert node.get("additionalProperties") is False, where
                for key, sub in node["properties"].items():
                    assert sub.get("description"), f"{where}.{key} has no description"
                    walk(sub, f"{where}.{key}")
            for key in ("additionalProperties", "items"):
                if isinstance(node.get(key), dict):
                    walk(node[key], where)

    walk(SCHEMA["properties"]["trees"], "trees")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.update(generators=["nope"]), "unknown generator 'nope'"),
        (lambda t: t["generator"]["embedded"].update(top_k=0), "trees.generator.embedded.top_k"),
        (lambda t: t.update(datasets=["simplesafetytests", "unknown-set"]), "'unknown-set'"),
        (lambda t: t["fit"].update(benign=["hh-rlhf-harmless"]), "trees.fit.benign"),
        (lambda t: t["generator"].update(openai={"model": "m"}), "not in trees.generators"),
        (lambda t: t.update(profiles={"Bad": {}}), "lowercase"),
        (lambda t: t["fit"].update(lam=-1), "trees.fit"),
    ],
)
def test_problems_are_listed(edit, message):
    cfg = copy.deepcopy(CONFIG)
    edit(cfg["trees"])
    with pytest.raises(ConfigError, match=message):
        check_trees_config(cfg, DATASETS)


def test_offline_generator_needs_a_grader_the_workflow_trains():
    cfg = copy.deepcopy(CONFIG)
    cfg["grader"] = {}
    cfg["grade"]["graders"] = ["openai"]
    cfg["study"]["grader"] = None
    with pytest.raises(ConfigError, match="builds on the grader the workflow trains"):
        check_trees_config(cfg, DATASETS)


def test_no_trees_block_means_no_tree_jobs():
    cfg = copy.deepcopy({k: v for k, v in CONFIG.items() if k != "trees"})
    cfg["analysis"]["harmbenefit"]["enabled"] = False
    assert check_trees_config(cfg, DATASETS).generators == ()


def test_trees_turned_off_need_the_notebook_05_entry_off_too():
    cfg = copy.deepcopy(CONFIG)
    cfg["trees"]["enabled"] = False
    cfg["trees"]["datasets"] = ["not-configured"]  # not checked: the stage is off
    with pytest.raises(
        ConfigError,
        match=r"analysis\.harmbenefit: notebook 05_harm_benefit "
        r"needs the trees stage.*set analysis\.harmbenefit\.enabled: false",
    ):
        check_trees_config(cfg, DATASETS)
    cfg["analysis"]["harmbenefit"]["enabled"] = False
    off = check_trees_config(cfg, DATASETS)
    assert off.generators == () and off.datasets == ()


def test_notebook_entry_matches_the_trees_block():
    entry = CONFIG["analysis"]["harmbenefit"]
    params = entry["parameters"]
    trees = CONFIG["trees"]
    assert params["generator"] == trees["generators"][0]
    assert params["harmful"] == trees["fit"]["harmful"]
    assert params["benign"] == trees["fit"]["benign"]
    assert set(entry["datasets"]) <= set(trees["datasets"])
