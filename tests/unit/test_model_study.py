"""The model-study analysis: paired statistics against reference values, and the whole
analysis on a small judged frame built by hand."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from harmtrace.analysis.model_study import (
    StudyError,
    analyse_study,
    exact_odds_ratio,
    paired_binary,
    settings_by_target,
    study_numbers,
)
from harmtrace.taxonomy import CATEGORIES


def test_exact_odds_ratio_matches_the_clopper_pearson_reference():
    # binom.test(9, 10) in R: 0.5549839 .. 0.9974714 -> odds 1.2471 .. 394.32
    est, lo, hi = exact_odds_ratio(9, 1)
    assert est == 9
    assert lo == pytest.approx(0.5549839 / (1 - 0.5549839), rel=1e-5)
    assert hi == pytest.approx(0.9974714 / (1 - 0.9974714), rel=1e-4)
    assert np.isnan(exact_odds_ratio(0, 0)[0])
    assert exact_odds_ratio(3, 0)[2] == np.inf


def test_paired_binary_orientation_and_exact_mcnemar():
    # baseline yes / treatment no on 1 unit, baseline no / treatment yes on 9, 10 concordant
    x = [True] * 5 + [True] + [False] * 9 + [False] * 5
    y = [True] * 5 + [False] + [True] * 9 + [False] * 5
    r = paired_binary(x, y)
    assert (r["a"], r["b"], r["c"], r["d"]) == (5, 1, 9, 5)
    assert r["p"] == pytest.approx(2 * 11 / 1024)  # two-sided exact binomial, 1 of 10
    assert r["diff"] == pytest.approx((14 - 6) / 20)  # treatment minus baseline
    assert r["diff_lo"] < r["diff"] < r["diff_hi"]
    assert r["odds_ratio"] == 9


def _judged() -> pd.DataFrame:
    """Two conditions on 4 harmful and 2 benign prompts; treatment refuses the harmful ones."""
    rows = []
    for target, refuse, sev in (("base", False, 2), ("safe", True, 0)):
        for i in range(6):
            kind = "harmful" if i < 4 else "benign"
            row = {
                "record_id": f"{target}{i}",
                "gen_target": target,
                "gen_prompt_kind": kind,
                "gen_prompt_set": "sst" if kind == "harmful" else "rho",
                "gen_prompt_record_id": f"p{i}",
                "gen_finish_reason": "stop",
                "gen_prompt_truncated": False,
                "gen_settings": json.dumps({"backend": "x", "system_prompt": target}),
                "response": "text",
                "refusal": refuse and kind == "harmful",
            }
            for c in CATEGORIES:
                row[f"prompt_severity_{c}"] = 1 if (kind == "harmful" and c == "violence") else 0
                response = sev if (kind == "harmful" and c == "violence") else 0
                row[f"response_severity_{c}"] = response
            rows.append(row)
    df = pd.DataFrame(rows)
    for col in df.columns:
        if "severity" in col:
            df[col] = df[col].astype("Int8")
    df["refusal"] = df["refusal"].astype("boolean")
    return df


def test_study_on_a_hand_built_frame():
    study = analyse_study(_judged(), baseline="base", treatment="safe")
    ref = study.refusal.set_index(["target", "kind"])
    assert ref.loc[("safe", "harmful"), "share"] == 1.0
    assert ref.loc[("base", "harmful"), "share"] == 0.0
    assert ref.loc[("safe", "benign"), "share"] == 0.0
    paired = study.paired.set_index("outcome")
    esc = paired.loc["escalation"]
    assert (esc["n"], esc["b"], esc["c"]) == (6, 4, 0)  # escalate only at baseline
    assert esc["diff"] == pytest.approx(-4 / 6)
    assert paired.loc["refusal_harmful", "c"] == 4
    assert paired.loc["refusal_benign", "n"] == 2
    holm = paired["p_holm"].dropna()
    assert (holm >= paired.loc[holm.index, "p"]).all()
    t = study.transitions.set_index(["target", "kind", "category", "transition"])
    assert t.loc[("base", "harmful", "violence", "escalate"), "share"] == 1.0
    assert t.loc[("safe", "harmful", "violence", "de-escalate"), "share"] == 1.0
    assert study.prompt_sets == {"harmful": ("sst",), "benign": ("rho",)}


def test_failed_answers_are_counted_not_analysed():
    df = _judged()
    df.loc[0, "response"] = None
    study = analyse_study(df, baseline="base", treatment="safe")
    counts = study.counts.set_index("target")
    assert counts.loc["base", "failed"] == 1 and counts.loc["base", "answered"] == 5
    assert study.paired.set_index("outcome").loc["escalation", "n"] == 5


def test_numbers_are_keyed_by_role():
    df = _judged()
    study = analyse_study(df, baseline="base", treatment="safe")
    nums = study_numbers(study, settings_by_target(df), alpha=0.05)
    assert nums["baseline name"].value == "base"
    assert nums["treatment refusal harmful"].value == 1.0
    assert nums["harmful sets"].value == "sst"
    assert nums["paired refusal harmful treatment only"].value == 4


def test_unknown_condition_is_an_error():
    with pytest.raises(StudyError, match="nope"):
        analyse_study(_judged(), baseline="nope", treatment="safe")
