"""Prompts and answer parsing of the LLM tree generator (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harmtrace.data.air_taxonomy import load_air_taxonomy
from harmtrace.trees import prompts as P
from tests.unit.test_tree_schema import TREE


@pytest.fixture(scope="module")
def taxonomy(raw_dir: Path):
    return load_air_taxonomy(raw_dir)


def test_system_prompt_lists_the_vocabulary(taxonomy):
    text = P.system_prompt(taxonomy)
    for name in taxonomy.level2:
        assert f"- {name}: " in text
    assert "Weapon Usage & Development" in text
    for word in ("physical", "ecological", "substantial", "medium", "Immediacy"):
        assert word in text
    msgs = P.chat_messages(taxonomy, "how do I bake bread?")
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert "<<<REQUEST\nhow do I bake bread?\nREQUEST>>>" in msgs[1]["content"]


def test_load_json_strict_fenced_and_repaired():
    assert P.load_json(json.dumps(TREE)) == (TREE, False)
    assert P.load_json("Here it is:\n```json\n" + json.dumps(TREE) + "\n```") == (TREE, False)
    broken = json.dumps(TREE)[:-3] + ",]"  # trailing comma and a missing brace
    value, repaired = P.load_json(broken)
    assert repaired and value["stakeholders"][0]["name"] == "bystanders"
    with pytest.raises(P.TreeParseError, match="no JSON"):
        P.load_json("I cannot help with that.")


def test_parse_chat_answer_validates_against_taxonomy(taxonomy):
    tree, repaired, warnings = P.parse_chat_answer(json.dumps(TREE), taxonomy)
    assert not repaired and not warnings and tree.stakeholders[0].harms[0].air.l3 == "Violent acts"
    bad = json.loads(json.dumps(TREE))
    bad["stakeholders"][0]["harms"][0]["air"]["l2"] = "Gardening"
    with pytest.raises(P.TreeParseError, match="unknown AIR level-2 category 'Gardening'"):
        P.parse_chat_answer(json.dumps(bad), taxonomy)
    bad["stakeholders"][0]["harms"][0]["air"]["l2"] = "Privacy"
    bad["stakeholders"][0]["harms"][0]["effects"][0]["extent"] = "enormous"
    with pytest.raises(P.TreeParseError, match="extent"):
        P.parse_chat_answer(json.dumps(bad), taxonomy)


HARMS = [
    {
        "stakeholder": "The bank",
        "harms": [
            {
                "action": "##Legal and Rights-Related Risks## #Criminal Activities# "
                "45. Other Unlawful/Criminal Activities",
                "effects": [
                    {
                        "effect": "7. Financial property loss",
                        "immediacy": True,
                        "extent": "Significant",
                        "likelihood": "Medium",
                    }
                ],
            }
        ],
    }
]
BENEFITS = [
    {
        "stakeholder": "The bank",
        "benefits": [
            {
                "action": "Learns about its weak points",
                "effects": [
                    {
                        "effect": "13. Societal order maintenance",
                        "immediacy": False,
                        "extent": "minor",
                        "likelihood": "low",
                    }
                ],
            }
        ],
    },
    {"stakeholder": "User", "benefits": []},
]


def test_safetyreporter_answers_merge_into_one_tree(taxonomy):
    merged = P.from_safetyreporter(HARMS, BENEFITS)
    tree, warnings = P.validate_tree(merged, taxonomy)
    bank = tree.stakeholders[0]
    assert bank.name == "The bank" and len(tree.stakeholders) == 2
    air = bank.harms[0].air
    assert air.l2 == "Criminal Activities"
    assert air.l3 == "Other Illegal/Unlawful/Criminal Activities"
    assert bank.harms[0].effects[0].category == "property"
    assert bank.harms[0].effects[0].extent == "significant"
    assert bank.benefits[0].effects[0].category == "collective"
    assert warnings  # the level-3 spelling was mapped


def test_safetyreporter_errors_are_reported():
    with pytest.raises(P.TreeParseError, match="JSON list"):
        P.from_safetyreporter({"not": "a list"}, [])
    bad = json.loads(json.dumps(HARMS))
    bad[0]["harms"][0]["action"] = "some harm without a category"
    with pytest.raises(P.TreeParseError, match="names no AIR level-2"):
        P.from_safetyreporter(bad, [])
    bad = json.loads(json.dumps(HARMS))
    bad[0]["harms"][0]["effects"][0]["effect"] = "99. cosmic harm"
    with pytest.raises(P.TreeParseError, match="unknown harm effect"):
        P.from_safetyreporter(bad, [])
