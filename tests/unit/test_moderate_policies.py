"""Moderation policies: shipped files, validation rules, LLM-only actions, registry."""

from __future__ import annotations

import pytest

from harmtrace.moderate.policies import (
    LEVELS,
    PolicyError,
    PolicySpec,
    get_policy,
    load_registry,
    policy_config_problems,
    policy_with,
    validate_policy,
)
from harmtrace.taxonomy import CATEGORIES


def spec(**changes):
    base = {
        "name": "custom",
        "version": "1",
        "description": "a test policy",
        "actions": {"low": "pass", "medium": "annotate", "high": "block"},
    }
    base.update(changes)
    return base


def test_required_policies_ship_and_parse():
    registry = load_registry()
    for name in ("observe", "block_high", "redact_medium_block_high"):
        assert name in registry
        assert registry[name].name == name
    assert set(registry["observe"].actions.values()) == {"pass"}
    assert registry["block_high"].actions["high"] == "block"
    assert registry["redact_medium_block_high"].actions["medium"] == "redact"


def test_levels_follow_the_taxonomy_names():
    assert LEVELS == ("low", "medium", "high")


def test_severity_default_thresholds_and_category_override():
    p = validate_policy(spec(thresholds={"sexual": {"high": 2}}))
    assert p.category_thresholds("hate") == (1, 2, 3)
    assert p.category_thresholds("sexual") == (1, 2, 2)
    off = validate_policy(spec(thresholds={"violence": {"low": None}}))
    assert off.category_thresholds("violence") == (None, 2, 3)


def test_default_entry_overrides_only_its_keys():
    p = validate_policy(spec(thresholds={"default": {"high": 2}}))
    assert p.category_thresholds("self_harm") == (1, 2, 2)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"thresholds": {"weapons": {"high": 3}}}, "unknown threshold key"),
        ({"thresholds": {"hate": {"low": 3, "medium": 2}}}, "fall as the level rises"),
        ({"thresholds": {"hate": {"high": 1.5}}}, "must be 1, 2 or 3"),
        ({"actions": {"low": "block", "medium": "pass", "high": "pass"}}, "milder"),
        ({"actions": {"low": "pass", "high": "block"}}, "every level"),
        ({"basis": "probability"}, "no built-in default"),
        ({"basis": "probability", "thresholds": {"default": {"high": 1.2}}}, r"\(0, 1\]"),
        ({"redaction": "[{nope}]"}, "redaction"),
        ({"name": "Bad Name"}, "name"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_policies_are_refused_with_the_reason(changes, message):
    with pytest.raises(PolicyError, match=message):
        validate_policy(spec(**changes))


def test_llm_actions_fail_validation_without_a_backend():
    data = spec(actions={"low": "pass", "medium": "rewrite", "high": "regenerate"})
    with pytest.raises(PolicyError, match="no LLM backend is configured"):
        validate_policy(data)
    assert validate_policy(data, llm=object()).requires_llm


def test_get_policy_prefers_user_specs_and_checks_backends():
    user = {
        "strict": spec(name="strict", actions={"low": "block", "medium": "block", "high": "block"})
    }
    assert get_policy("strict", user=user).actions["low"] == "block"
    with pytest.raises(PolicyError, match="unknown policy 'nope'"):
        get_policy("nope")
    with pytest.raises(PolicyError, match="declares name"):
        get_policy("other", user={"other": spec(name="strict")})
    rewriting = {
        "rw": spec(name="rw", actions={"low": "pass", "medium": "rewrite", "high": "block"})
    }
    with pytest.raises(PolicyError, match="LLM"):
        get_policy("rw", user=rewriting)


def test_fingerprint_changes_with_any_field():
    a = validate_policy(spec())
    b = validate_policy(spec(safe_message="Something else."))
    assert a.version == b.version
    assert a.policy_version != b.policy_version
    assert a.policy_version == validate_policy(spec()).policy_version


def test_first_sentence_level_and_action_at():
    p = get_policy("redact_medium_block_high")
    assert p.first_sentence_level == 2
    assert [p.action_at(k) for k in range(4)] == ["pass", "annotate", "redact", "block"]
    assert get_policy("block_high").first_sentence_level == 4


def test_rule_text_names_categories_and_thresholds():
    p = validate_policy(spec(thresholds={"sexual": {"high": 2}}))
    text = p.rule_text(3)
    assert text.startswith("high -> block")
    assert "sexual at severity >= 2" in text
    assert "hate or violence or self_harm at severity >= 3" in text
    assert "any category at severity >= 3" in get_policy("block_high").rule_text(3)


def test_policy_with_sweeps_probability_thresholds():
    base = validate_policy(spec(basis="probability", thresholds={"default": {"high": 0.9}}))
    swept = policy_with(base, thresholds={"default": {"high": 0.5}})
    assert swept.category_thresholds("hate") == (None, None, 0.5)
    assert isinstance(swept, PolicySpec)
    assert all(swept.category_thresholds(c)[2] == 0.5 for c in CATEGORIES)


def test_policy_config_problems_lists_every_problem():
    assert policy_config_problems(["observe", "block_high"], {}) == []
    user = {
        "observe": spec(name="observe"),
        "llm": spec(name="llm", actions={"low": "pass", "medium": "rewrite", "high": "block"}),
        "fine": spec(name="fine"),
    }
    problems = policy_config_problems(["fine", "missing"], user)
    assert len(problems) == 3
    assert any("may not take a shipped name" in p for p in problems)
    assert any("moderate.policies.llm" in p and "LLM" in p for p in problems)
    assert any("unknown policy 'missing'" in p for p in problems)
