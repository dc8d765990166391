"""Dialogue vs last-turn reading and response-length strata, on hand-made judgments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.contingency_tables import mcnemar

from harmtrace.analysis.sensitivity import (
    MIN_RECORDS,
    dialogue_sensitivity,
    length_strata,
    sensitivity_numbers,
)
from harmtrace.stats import newcombe_paired_diff_ci, trend_test
from harmtrace.taxonomy import CATEGORIES


def judged(prompt, last, response, scope, texts=None, sample="s"):
    n = len(prompt)
    frame = {"sample": sample, "prompt_scope": pd.array(scope, dtype="string")}
    frame["prompt_last_turn_severity"] = pd.array(last, dtype="Int8")
    for c in CATEGORIES:  # the overall severity sits in one category, the rest are 0
        frame[f"prompt_severity_{c}"] = pd.array(prompt if c == "hate" else [0] * n, dtype="Int8")
        frame[f"response_severity_{c}"] = pd.array(
            response if c == "violence" else [0] * n, dtype="Int8"
        )
    frame["response"] = pd.array(texts or ["x"] * n, dtype="string")
    return pd.DataFrame(frame)


def test_dialogue_reading_against_hand_counts():
    # 10 records escalate under both readings, 6 only when the last turn is read (the
    # dialogue raised their prompt), 1 only under the dialogue reading, 13 under neither
    both = ([0] * 10, [0] * 10, [2] * 10)
    only_last = ([2] * 6, [0] * 6, [1] * 6)
    only_dial = ([0], [1], [1])
    neither = ([1] * 13, [1] * 13, [0] * 13)
    parts = (both, only_last, only_dial, neither)
    prompt, last, resp = ([v for p in parts for v in p[i]] for i in range(3))
    scope = ["last_turn"] * 10 + ["dialogue"] * 7 + ["last_turn"] * 13
    res = dialogue_sensitivity(judged(prompt, last, resp, scope))["s"]
    assert res.n == 30 and res.n_dialogue == 7 and res.n_changed == 7
    assert (res.escalation_last_turn.k, res.escalation_dialogue.k) == (16, 11)
    assert (res.from_safe_last_turn.k, res.from_safe_dialogue.k) == (16, 11)
    diff, lo, hi = newcombe_paired_diff_ci(10, 1, 6, 13)
    assert (res.diff, res.diff_lo, res.diff_hi) == pytest.approx((diff, lo, hi))
    assert res.diff == pytest.approx(-5 / 30)
    exact = mcnemar([[10, 1], [6, 13]], exact=True).pvalue
    assert res.mcnemar_p == pytest.approx(exact) and res.mcnemar_p == pytest.approx(0.125)
    lo_w, hi_w = res.escalation_dialogue.lo, res.escalation_dialogue.hi
    assert lo_w < 11 / 30 < hi_w
    nums = sensitivity_numbers({"s": res}, {})
    assert nums["s dialogue changed"].value == 7
    assert nums["s dialogue escalation"].value == pytest.approx(11 / 30)


def test_samples_without_dialogue_or_too_small_are_left_out():
    n = MIN_RECORDS
    assert dialogue_sensitivity(judged([0] * n, [0] * n, [1] * n, ["last_turn"] * n)) == {}
    small = judged([0] * 5, [0] * 5, [1] * 5, ["dialogue"] * 5)
    assert dialogue_sensitivity(small) == {}
    assert dialogue_sensitivity(small.drop(columns=["prompt_scope"])) == {}


def test_length_strata_shares_and_trend():
    rng = np.random.default_rng(0)
    n = 200
    length = rng.permutation(np.arange(1, n + 1))
    medium = (length > 100) & (rng.random(n) < 0.6)  # only long responses are Medium+
    texts = ["w" * int(k) for k in length]
    df = judged([0] * n, [0] * n, list(np.where(medium, 2, 0)), ["last_turn"] * n, texts)
    res = length_strata(df)["s"]
    q = np.minimum((length - 1) // 50, 3)
    for i, sh in enumerate(res.medium_plus):
        assert (sh.k, sh.n) == (int(medium[q == i].sum()), 50)
    assert res.edges == (50, 100, 150)
    table = np.array([[medium[q == i].sum(), (~medium[q == i]).sum()] for i in range(4)])
    ref = trend_test(table, row_scores=np.arange(1, 5), col_scores=np.array([1, 0]))
    assert res.trend_p == pytest.approx(ref.pvalue) and res.trend_p < 1e-6
    flat = judged([0] * n, [0] * n, [0] * n, ["last_turn"] * n, texts)
    assert length_strata(flat)["s"].trend_p == 1.0  # nothing Medium+: no trend to test
    assert length_strata(flat.iloc[:50]) == {}  # too few for four strata
