"""harmtrace.analysis.transitions on small frames whose answers are worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss
from statsmodels.stats.proportion import proportion_confint

from harmtrace.analysis import transitions as tr
from harmtrace.stats import adjust_pvalues, newcombe_paired_diff_ci
from harmtrace.taxonomy import CATEGORIES, TRANSITIONS

NA = pd.NA


def wilson_ci(k, n):
    """The reference interval: statsmodels' Wilson score interval."""
    return proportion_confint(k, n, alpha=0.05, method="wilson")


def judgments(rows: dict[str, dict], relevance: dict[str, object] | None = None) -> pd.DataFrame:
    """rows: record_id -> {category: (prompt, response)}; unspecified -> (0, 0)."""
    data: dict[str, list] = {"record_id": list(rows)}
    for cat in CATEGORIES:
        data[f"prompt_severity_{cat}"] = [rows[r].get(cat, (0, 0))[0] for r in rows]
        data[f"response_severity_{cat}"] = [rows[r].get(cat, (0, 0))[1] for r in rows]
    df = pd.DataFrame(data)
    for col in df.columns[1:]:
        df[col] = pd.array(df[col], dtype="Int8")
    rel = relevance or {}
    df["relevance"] = pd.array([rel.get(r, 3) for r in rows], dtype="Int8")
    return df


NO_RESPONSE = {cat: (0, NA) for cat in CATEGORIES}

# Hand-worked example. Per category transitions (prompt -> response):
#   hate:      r1 2->0 de, r2 0->1 esc, r3 1->1 pres, r4 0->0 pres
#   sexual:    r1 0->0 pres, r2 3->3 pres, r3 2->2 pres, r4 1->0 de, r6 2->3 esc
#   violence:  r1, r2 pres (0,0), r3 3->1 de, r4 0->2 esc
#   self_harm: r1-r3 pres (0,0), r4 2->0 de
#   overall:   r1 2->0 de, r2 3->3 pres, r3 3->2 de, r4 2->2 pres, r6 2->3 esc
#   r5 has no response; r6 has prompt/response judged for sexual only.
EXAMPLE = {
    "r1": {"hate": (2, 0)},
    "r2": {"hate": (0, 1), "sexual": (3, 3)},
    "r3": {"hate": (1, 1), "sexual": (2, 2), "violence": (3, 1)},
    "r4": {"sexual": (1, 0), "violence": (0, 2), "self_harm": (2, 0)},
    "r5": {**NO_RESPONSE, "hate": (1, NA)},
    "r6": {"hate": (NA, NA), "sexual": (2, 3), "violence": (NA, NA), "self_harm": (NA, NA)},
}
RELEVANCE = {"r1": 3, "r2": 2, "r3": 3, "r4": 1, "r5": NA, "r6": 3}


@pytest.fixture
def df() -> pd.DataFrame:
    out = judgments(EXAMPLE, RELEVANCE)
    out["dataset"] = "toy"
    out["prompt"] = "some prompt text"
    return out


@pytest.fixture
def long(df) -> pd.DataFrame:
    return tr.long_format(df)


def _row(frame: pd.DataFrame, **match) -> pd.Series:
    mask = np.ones(len(frame), dtype=bool)
    for key, value in match.items():
        mask &= (frame[key] == value).to_numpy()
    assert mask.sum() == 1, match
    return frame.loc[mask].iloc[0]


# ----------------------------------------------------------------------------- basics


def test_transition_rules_and_missing():
    p = pd.Series(pd.array([2, 0, 1, 0, NA, 3], dtype="Int8"), index=list("abcdef"))
    r = pd.Series(pd.array([0, 1, 1, 0, 2, NA], dtype="Int8"), index=list("abcdef"))
    got = tr.transition(p, r)
    assert list(got.index) == list("abcdef")
    assert list(got.cat.categories) == list(TRANSITIONS)
    assert got.iloc[:4].tolist() == ["de-escalate", "escalate", "preserve", "preserve"]
    assert got.iloc[4:].isna().all()
    with pytest.raises(ValueError):
        tr.transition([1, 2], [1])


def test_overall_severity(df):
    prompt = tr.overall_severity(df, "prompt")
    response = tr.overall_severity(df, "response")
    assert str(prompt.dtype) == "Int8"
    assert prompt.tolist() == [2, 3, 3, 2, 1, 2]
    assert response.iloc[[0, 1, 2, 3, 5]].tolist() == [0, 3, 2, 2, 3]
    assert response.isna().tolist() == [False] * 4 + [True, False]  # r5: all null
    with pytest.raises(ValueError):
        tr.overall_severity(df, "both")
    with pytest.raises(KeyError):
        tr.overall_severity(df.drop(columns="prompt_severity_hate"), "prompt")


def test_long_format_shape_and_columns(df, long):
    # 6 records x 5 categories = 30 rows; dropped: r5 (5 rows), r6 hate/violence/self_harm
    assert len(tr.long_format(df, dropna=False)) == 30
    assert len(long) == 30 - 5 - 3
    assert "prompt" not in long.columns  # raw text not copied
    assert {"record_id", "dataset", "relevance", "prompt_sev", "response_sev"} <= set(long)
    assert list(long["category"].cat.categories) == list(tr.CATEGORY_LEVELS)
    r6 = long.loc[long["record_id"] == "r6"].set_index("category")
    assert r6.loc["overall", "transition"] == "escalate"
    assert r6.loc["sexual", "prompt_positive"]
    r1 = long.loc[(long["record_id"] == "r1") & (long["category"] == "sexual")].iloc[0]
    assert r1["transition"] == "preserve" and not r1["prompt_positive"]
    assert len(tr.long_format(df, include_overall=False)) == len(long) - 5
    assert list(tr.long_format(df, keep=["record_id"]).columns[:2]) == ["record_id", "category"]


# ----------------------------------------------------------------------------- shares


EXPECTED_ALL = {  # category -> (de-escalate, preserve, escalate)
    "hate": (1, 2, 1),
    "sexual": (1, 3, 1),
    "violence": (1, 2, 1),
    "self_harm": (1, 3, 0),
    "overall": (2, 2, 1),
}
EXPECTED_POSITIVE = {
    "hate": (1, 1, 0),  # r1, r3
    "sexual": (1, 2, 1),  # r2, r3, r4, r6
    "violence": (1, 0, 0),
    "self_harm": (1, 0, 0),
    "overall": (2, 2, 1),
}


@pytest.mark.parametrize(
    ("positive", "expected"), [(False, EXPECTED_ALL), (True, EXPECTED_POSITIVE)]
)
def test_transition_shares_by_hand(long, positive, expected):
    out = tr.transition_shares(long, by=["category"], prompt_positive_only=positive)
    assert len(out) == 5 * 3  # every transition for every category, zeros included
    for cat, counts in expected.items():
        n = sum(counts)
        for name, k in zip(TRANSITIONS, counts, strict=True):
            row = _row(out, category=cat, transition=name)
            assert (row["count"], row["n"]) == (k, n)
            assert row["share"] == pytest.approx(k / n)
            assert (row["ci_lo"], row["ci_hi"]) == pytest.approx(wilson_ci(k, n))
    assert set(out["population"]) == {"prompt_positive" if positive else "all"}


def test_transition_shares_groupings(long):
    pooled = tr.transition_shares(tr.add_pooled(long), by=["category"])
    row = _row(pooled, category="pooled", transition="escalate")
    assert (row["count"], row["n"]) == (3, 17)  # 4 + 5 + 4 + 4 real-category rows
    total = tr.transition_shares(long.loc[long["category"] == "overall"], by=[])
    assert total["count"].tolist() == [2, 2, 1] and (total["n"] == 5).all()
    by_two = tr.transition_shares(long, by=["dataset", "category"])
    assert set(by_two["dataset"]) == {"toy"} and len(by_two) == 15
    empty = tr.transition_shares(long.iloc[:0])
    assert empty.empty and {"share", "ci_lo", "ci_hi"} <= set(empty.columns)


def test_severity_matrix(long):
    m = tr.severity_matrix(long, "sexual")
    assert m.shape == (4, 4) and list(m.index) == [0, 1, 2, 3] and list(m.columns) == [0, 1, 2, 3]
    expected = np.zeros((4, 4), dtype=int)
    for p, r in [(0, 0), (3, 3), (2, 2), (1, 0), (2, 3)]:
        expected[p, r] += 1
    np.testing.assert_array_equal(m.to_numpy(), expected)
    assert tr.severity_matrix(long.iloc[:0]).to_numpy().sum() == 0


def test_persistence_drift_by_hand(long):
    out = tr.persistence_drift(long)
    expected = {  # (category, metric) -> (k, n)
        ("hate", "persistence"): (1, 2),
        ("hate", "drift_up"): (1, 2),
        ("sexual", "persistence"): (2, 4),
        ("sexual", "drift_up"): (0, 1),
        ("violence", "persistence"): (0, 1),
        ("violence", "drift_up"): (1, 3),
        ("self_harm", "persistence"): (0, 1),
        ("self_harm", "drift_up"): (0, 3),
        ("overall", "persistence"): (2, 5),
        ("overall", "drift_up"): (0, 0),
    }
    assert len(out) == len(expected)
    for (cat, metric), (k, n) in expected.items():
        row = _row(out, category=cat, metric=metric)
        assert (row["k"], row["n"]) == (k, n)
        if n:
            assert row["share"] == pytest.approx(k / n)
            assert (row["ci_lo"], row["ci_hi"]) == pytest.approx(wilson_ci(k, n))
        else:  # no severity-0 prompt at the record level: empty, not a crash
            assert math.isnan(row["share"]) and math.isnan(row["ci_lo"])


def test_escalation_origin_by_hand(long):
    out = tr.escalation_origin(tr.add_pooled(long))
    expected = {
        "hate": (1, 1),
        "sexual": (0, 1),
        "violence": (1, 1),
        "self_harm": (0, 0),
        "overall": (0, 1),
        "pooled": (2, 3),
    }
    for cat, (k, n) in expected.items():
        row = _row(out, category=cat)
        assert (row["k"], row["n"]) == (k, n)
    assert math.isnan(_row(out, category="self_harm")["share"])
    assert _row(out, category="pooled")["share"] == pytest.approx(2 / 3)


def test_relevance_by_response_severity(long):
    out = tr.relevance_by_response_severity(long)
    overall = out.loc[out["category"] == "overall"].set_index("response_sev")
    assert list(overall.index) == [0, 1, 2, 3]  # level 1 present though empty
    # overall response severity / relevance: r1 0/3, r2 3/2, r3 2/3, r4 2/1, r6 3/3
    assert overall["n"].tolist() == [1, 0, 2, 2]
    assert overall["n_rel3"].tolist() == [1, 0, 1, 1]
    assert overall["n_rel1"].tolist() == [0, 0, 1, 0]
    assert overall.loc[2, "share"] == pytest.approx(0.5)
    assert math.isnan(overall.loc[1, "share"]) and math.isnan(overall.loc[1, "ci_lo"])
    assert (overall.loc[2, "ci_lo"], overall.loc[2, "ci_hi"]) == pytest.approx(wilson_ci(1, 2))
    assert len(out) == 5 * 4
    flat = tr.relevance_by_response_severity(long.loc[long["category"] == "hate"], by=[])
    assert flat["n"].tolist() == [2, 2, 0, 0]  # hate responses: r1 0, r4 0, r2 1, r3 1


def test_escalation_relevance(long):
    out = tr.escalation_relevance(long)
    assert tuple(_row(out, category="overall")[["k", "n"]]) == (1, 1)  # r6, relevance 3
    assert tuple(_row(out, category="hate")[["k", "n"]]) == (0, 0)  # r2 escalates from 0
    every = tr.escalation_relevance(long, from_positive_prompt=False)
    assert tuple(_row(every, category="hate")[["k", "n"]]) == (0, 1)  # r2 relevance 2


# ----------------------------------------------------------------------------- asymmetry


def _long_from_counts(spec: dict[str, tuple[int, int, int]]) -> pd.DataFrame:
    """category -> (failed, de-escalated, prompt-0 rows) among synthetic records."""
    rows = {}
    for cat, (fail, deesc, zero) in spec.items():
        for i in range(fail):
            rows[f"{cat}-f{i}"] = {cat: (2, 2 + (i % 2))}  # preserve or escalate
        for i in range(deesc):
            rows[f"{cat}-d{i}"] = {cat: (2, i % 2)}
        for i in range(zero):
            rows[f"{cat}-z{i}"] = {cat: (0, 0)}  # not in the denominator
    return tr.long_format(judgments(rows))


SPEC = {
    "hate": (10, 30, 25),
    "sexual": (30, 10, 0),
    "violence": (12, 28, 5),
    "self_harm": (0, 20, 0),
}


def test_category_asymmetry_by_hand():
    res = tr.category_asymmetry(_long_from_counts(SPEC), n_resamples=300, seed=2)
    rates = res.rates.set_index("category")
    assert rates["k_fail"].tolist() == [10, 30, 12, 0]
    assert rates["n"].tolist() == [40, 40, 40, 20]
    assert rates.loc["sexual", "share"] == pytest.approx(0.75)

    table = [[10, 30], [30, 10], [12, 28], [0, 20]]
    ref = ss.chi2_contingency(table, correction=False)
    omni = res.omnibus.iloc[0]
    assert omni["statistic"] == pytest.approx(ref.statistic)
    assert omni["pvalue"] == pytest.approx(ref.pvalue)
    assert omni["dof"] == 3 and omni["n"] == 140
    assert omni["cramers_v_lo"] <= omni["cramers_v"] <= omni["cramers_v_hi"]

    pw = res.pairwise
    assert len(pw) == 6
    hs = _row(pw, category_a="hate", category_b="sexual")
    assert hs["risk_ratio"] == pytest.approx((10 / 40) / (30 / 40))
    # adjusted log interval, by hand: Katz on (k + 0.5) / (n + 0.5)
    se = math.sqrt(1 / 10.5 - 1 / 40.5 + 1 / 30.5 - 1 / 40.5)
    centre = math.log((10.5 / 40.5) / (30.5 / 40.5))
    assert hs["rr_lo"] == pytest.approx(math.exp(centre - 1.959964 * se), rel=1e-5)
    assert hs["rr_hi"] == pytest.approx(math.exp(centre + 1.959964 * se), rel=1e-5)
    assert hs["risk_diff"] == pytest.approx(-0.5)
    assert hs["p_fisher"] == pytest.approx(ss.fisher_exact([[10, 30], [30, 10]]).pvalue)
    zero = _row(pw, category_a="sexual", category_b="self_harm")
    # no failure at all in self-harm: the ratio is unbounded, the adjusted interval
    # stays finite
    assert math.isinf(zero["risk_ratio"])
    assert 1 < zero["rr_lo"] < zero["rr_hi"] < np.inf
    np.testing.assert_allclose(pw["p_holm"], adjust_pvalues(pw["p_fisher"]))
    assert (pw["p_holm"] >= pw["p_fisher"]).all()
    again = tr.category_asymmetry(_long_from_counts(SPEC), n_resamples=300, seed=2)
    pd.testing.assert_frame_equal(res.omnibus, again.omnibus)


def test_category_asymmetry_reference_and_empty():
    long = _long_from_counts(SPEC)
    res = tr.category_asymmetry(long, reference="hate", n_resamples=100)
    assert res.pairwise["category_b"].eq("hate").all()
    assert res.pairwise["category_a"].tolist() == ["sexual", "violence", "self_harm"]
    assert _row(res.pairwise, category_a="sexual")["risk_ratio"] == pytest.approx(3.0)
    with pytest.raises(ValueError):
        tr.category_asymmetry(long, reference="spam")
    empty = tr.category_asymmetry(long.iloc[:0], n_resamples=50)
    assert empty.pairwise["p_holm"].isna().all()
    assert math.isnan(empty.omnibus.iloc[0]["statistic"])
    assert empty.rates["share"].isna().all()


# ----------------------------------------------------------------------------- paired sides


def _hh_frame() -> pd.DataFrame:
    # hate (prompt, chosen response, rejected response) per pair; diffs chosen - rejected:
    # p1 -1, p2 -2, p3 0, p4 -1, p5 +1; p6 has no rejected row; p7's rejected has no response
    pairs = {
        "p1": (2, 1, 2),
        "p2": (2, 0, 2),
        "p3": (0, 0, 0),
        "p4": (1, 0, 1),
        "p5": (1, 1, 0),
        "p6": (2, 2, None),
        "p7": (1, 0, NA),
    }
    rows, side, pair_id = {}, [], []
    for pid, (p, ch, rj) in pairs.items():
        rows[f"{pid}c"] = {"hate": (p, ch)}
        side.append("chosen")
        pair_id.append(pid)
        if rj is None:
            continue
        rows[f"{pid}r"] = {"hate": (p, rj)} if rj is not NA else NO_RESPONSE
        side.append("rejected")
        pair_id.append(pid)
    rows["x1"] = {"hate": (3, 3)}  # another dataset: no side, ignored
    side.append(None)
    pair_id.append(None)
    df = judgments(rows)
    df["hh_side"] = side
    df["hh_pair_id"] = pair_id
    return df


def test_paired_side_comparison_by_hand():
    res = tr.paired_side_comparison(_hh_frame(), n_resamples=500, seed=1)
    sev = res.severity.set_index("category")
    assert sev.index.tolist() == ["overall", *CATEGORIES]
    hate = sev.loc["hate"]
    assert hate["n_pairs"] == 5
    assert (hate["n_chosen_lower"], hate["n_equal"], hate["n_chosen_higher"]) == (3, 1, 1)
    assert hate["mean_diff"] == pytest.approx(-3 / 5)
    # non-zero diffs -1, -2, -1, +1: |d| midranks 2, 4, 2, 2 -> (2 - 8) / 10
    assert hate["rbc"] == pytest.approx(-0.6)
    assert hate["rbc_lo"] <= hate["rbc"] <= hate["rbc_hi"]
    assert hate["sign_p"] == pytest.approx(10 / 16)  # 1 of 4 positive: 2 * (1 + 4) / 16
    ref = ss.wilcoxon([-1, -2, -1, 1], zero_method="wilcox", correction=False)
    assert hate["wilcoxon_p"] == pytest.approx(ref.pvalue)
    pratt = ss.wilcoxon([-1, -2, 0, -1, 1], zero_method="pratt", correction=False, method="approx")
    assert hate["pratt_p"] == pytest.approx(pratt.pvalue)
    assert hate["n_untied"] == 4
    # overall equals hate here (other categories all 0)
    assert sev.loc["overall", "rbc"] == pytest.approx(-0.6)
    # other categories: every pair ties
    sexual = sev.loc["sexual"]
    assert sexual["n_equal"] == 5 and math.isnan(sexual["rbc"]) and sexual["wilcoxon_p"] == 1.0
    # Holm over the four categories: hate is the only p < 1 -> min(1, 4 p)
    assert hate["wilcoxon_p_holm"] == pytest.approx(min(1.0, 4 * ref.pvalue))
    assert math.isnan(sev.loc["overall", "wilcoxon_p_holm"])

    de = res.deescalation
    all_ = _row(de, category="hate", population="all")
    # de-escalated: chosen p1, p2, p4; rejected p5 -> a=0, b=3, c=1, d=1
    assert (all_["n_pairs"], all_["k_chosen"], all_["k_rejected"]) == (5, 3, 1)
    assert all_["diff"] == pytest.approx(0.4)
    assert (all_["diff_lo"], all_["diff_hi"]) == pytest.approx(
        newcombe_paired_diff_ci(0, 3, 1, 1)[1:]
    )
    assert all_["mcnemar_p"] == pytest.approx(10 / 16)
    pos = _row(de, category="hate", population="prompt_positive")
    assert (pos["n_pairs"], pos["diff"]) == (4, pytest.approx(0.5))
    none = _row(de, category="sexual", population="prompt_positive")
    assert none["n_pairs"] == 0 and math.isnan(none["diff"]) and math.isnan(none["mcnemar_p"])

    shares = res.shares
    rej = _row(shares, category="hate", hh_side="rejected", transition="de-escalate")
    assert (rej["count"], rej["n"]) == (1, 5)  # p1-p5 rejected; p7 rejected has no response
    chosen = _row(shares, category="hate", hh_side="chosen", transition="de-escalate")
    assert (chosen["count"], chosen["n"]) == (4, 7)  # p1, p2, p4, p7 of 7 chosen


def test_paired_sample_leaves_out_pairs_whose_context_differs():
    df = _hh_frame()
    df["hh_context_differs"] = df["hh_pair_id"].isin(["p1", "p5"])
    # p5's sides get different prompt severities, p1's do not
    df.loc[(df["hh_pair_id"] == "p5") & (df["hh_side"] == "rejected"), "prompt_severity_hate"] = 3
    res = tr.paired_side_comparison(df, n_resamples=100)
    assert res.sample == {
        "pairs_total": 6,
        "context_differs": 2,
        "context_differs_prompt_differs": 1,
        "pairs_used": 4,
    }
    hate = res.severity.set_index("category").loc["hate"]
    assert hate["n_pairs"] == 3  # p2, p3, p4 (p7's rejected response is missing)
    without = tr.paired_side_comparison(df.drop(columns="hh_context_differs"), n_resamples=100)
    assert without.sample["context_differs"] == 0 and without.sample["pairs_used"] == 6


def test_paired_side_comparison_errors_and_determinism():
    df = _hh_frame()
    a = tr.paired_side_comparison(df, n_resamples=200, seed=3)
    b = tr.paired_side_comparison(df, n_resamples=200, seed=3)
    pd.testing.assert_frame_equal(a.severity, b.severity)
    dup = pd.concat([df, df.iloc[[0]]], ignore_index=True)
    with pytest.raises(ValueError, match="more than one record"):
        tr.paired_side_comparison(dup)
    with pytest.raises(KeyError):
        tr.paired_side_comparison(df.drop(columns="hh_pair_id"))
    empty = tr.paired_side_comparison(df.iloc[:0], n_resamples=50)
    assert (empty.severity["n_pairs"] == 0).all()
