"""Steering profiles: resolution, validation, re-scoring and flag-rate changes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harmtrace.trees.aggregate import Weights, design_from_trees
from harmtrace.trees.steering import (
    BUILTIN_PROFILES,
    ProfileError,
    ProfileSpec,
    flag_rate_changes,
    profile_specs,
    resolve_profiles,
    steer,
)
from tests.unit.test_tree_aggregate import L2, record


def fitted() -> Weights:
    w = Weights.neutral(
        ("harm:Security Risks", "harm:Violence & Extremism", "harm:Privacy", "benefit"),
        tuple(f"{s}:{c}" for s in ("harm", "benefit") for c in ("physical", "liberty")),
    )
    return Weights.from_flat({**w.flat(), "discount": 0.8, "intercept": -0.5})


def test_builtin_profiles_resolve_as_documented():
    ws = resolve_profiles(fitted(), BUILTIN_PROFILES)
    assert list(ws) == ["fitted", "lenient", "strict"]
    assert ws["strict"].action["benefit"] == 0.5 and ws["strict"].discount == 1.0
    assert ws["strict"].threshold == 0.4
    assert ws["lenient"].action["benefit"] == 2.0 and ws["lenient"].discount == pytest.approx(0.4)
    assert ws["lenient"].threshold == 0.6
    assert ws["fitted"] == fitted()


def test_user_profiles_with_patterns_and_bases():
    specs = profile_specs(
        {
            "no_benefits": {"set": {"action.benefit": 0}},
            "privacy_first": {
                "base": "no_benefits",
                "scale": {"action.harm:Privacy": 3, "category.harm:*": 2},
                "threshold": 0.4,
            },
        }
    )
    ws = resolve_profiles(fitted(), specs)
    p = ws["privacy_first"]
    assert p.action["benefit"] == 0 and p.action["harm:Privacy"] == 3
    assert p.category["harm:physical"] == 2 and p.category["benefit:physical"] == 1
    assert p.threshold == 0.4


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ({"x": {"scale": {"action.nothing": 2}}}, "matches no weight"),
        ({"x": {"set": {"extent.minor": 5}}}, "must not decrease"),
        ({"x": {"scale": {"discount": 3}}}, "discount"),
        ({"x": {"base": "y"}, "y": {"base": "x"}}, "cycle"),
        ({"x": {"base": "nope"}}, "unknown base"),
        ({"x": {"scale": {"action.benefit": -1}}}, ">= 0"),
    ],
)
def test_bad_profiles_are_refused_with_the_reason(specs, message):
    with pytest.raises(ProfileError, match=message):
        resolve_profiles(fitted(), profile_specs(specs))


def test_profile_names_and_fitted_are_protected():
    with pytest.raises(ProfileError, match="lowercase"):
        profile_specs({"Bad-Name": {}})
    with pytest.raises(ProfileError, match="cannot be redefined"):
        profile_specs({"fitted": {"threshold": 0.2}})
    with pytest.raises(ProfileError, match="trees.profiles.x"):
        profile_specs({"x": {"unknown_key": 1}})
    assert isinstance(profile_specs({"x": ProfileSpec()})["x"], ProfileSpec)


def test_steering_rescores_without_regenerating():
    recs = [
        record(0, harms=[("Privacy", "liberty", "major", "high", False)]),
        record(1, harms=[("Privacy", "liberty")], benefits=[("liberty",)]),
        record(2, status="failed"),
    ]
    d = design_from_trees(recs, L2)
    w = Weights.neutral(d.actions, d.categories)
    base = Weights.from_flat({**w.flat(), "discount": 0.5, "intercept": -0.6})
    ws = resolve_profiles(base, BUILTIN_PROFILES)
    out = steer(d, ws)
    # tree 0: one downstream harm: fitted 0.5, strict (no discount) 1.0, lenient 0.25
    assert out["score_fitted"].tolist()[:2] == [0.5, 0.0]
    assert out["score_strict"][0] == 1.0 and out["score_lenient"][0] == 0.25
    # tree 1: harm 1 minus benefit 1 (fitted), benefit halved (strict), doubled (lenient)
    assert out["score_strict"][1] == 0.5 and out["score_lenient"][1] == -1.0
    p = 1 / (1 + np.exp(0.6 - 0.5))
    assert out["prob_fitted"][0] == pytest.approx(p)
    assert out["label_fitted"][0] == (p >= 0.5) and out["label_strict"][0]
    assert out.loc[2].isna().all()


def test_flag_rate_changes_against_fitted():
    t = pd.DataFrame(
        {
            "dataset": ["a", "a", "a", "b"],
            "label_fitted": pd.array([True, False, None, False], dtype="boolean"),
            "label_strict": pd.array([True, True, None, True], dtype="boolean"),
        }
    )
    r = flag_rate_changes(t, ["fitted", "strict"]).set_index(["dataset", "profile"])
    assert r.loc[("a", "fitted"), "rate"] == 0.5 and r.loc[("a", "fitted"), "n_failed"] == 1
    assert r.loc[("a", "strict"), "change"] == 0.5
    assert r.loc[("b", "strict"), "change"] == 1.0 and r.loc[("b", "fitted"), "change"] == 0
