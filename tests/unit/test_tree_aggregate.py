"""Aggregation model: gradient, fit against statsmodels' logistic regression, monotone
weights, cross-fitting folds, bootstrap, explanations, failed trees."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.optimize import check_grad

from harmtrace.trees.aggregate import (
    AggregationError,
    Weights,
    design_from_trees,
    explain,
    format_effect,
    score_trees,
)
from harmtrace.trees.fitting import _Layout, _theta_of, fit_weights, penalised_nll
from harmtrace.trees.resampling import (
    bootstrap_weights,
    cross_fit,
    leave_one_source_out,
    stratified_folds,
)
from harmtrace.trees.schema import HarmBenefitTree, Provenance, TreeRecord

L2 = ("Security Risks", "Violence & Extremism", "Privacy")
PROV = Provenance(generator="test", version="t", spec_hash="0" * 16, proxy=True)


def effect(cat, extent="major", likelihood="high", immediacy=True):
    return {"category": cat, "immediacy": immediacy, "extent": extent, "likelihood": likelihood}


def record(i, harms=(), benefits=(), status="ok"):
    if status == "failed":
        return TreeRecord(
            record_id=f"{i:016x}",
            dataset="d",
            status="failed",
            attempts=3,
            errors=["x"],
            provenance=PROV,
        )
    tree = HarmBenefitTree.model_validate(
        {
            "stakeholders": [
                {
                    "name": "s",
                    "harms": [
                        {"action": "h", "air": {"l2": l2}, "effects": [effect(c, *rest)]}
                        for l2, c, *rest in harms
                    ],
                    "benefits": [
                        {"action": "b", "effects": [effect(c, *rest)]} for c, *rest in benefits
                    ],
                }
            ]
        }
    )
    return TreeRecord(
        record_id=f"{i:016x}", dataset="d", status="ok", attempts=1, tree=tree, provenance=PROV
    )


def counts_data(n=400, seed=0):
    """Trees whose score is a*c*k - a_b*c_b*m for k harm and m benefit effects."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, 5, n)
    m = rng.integers(0, 4, n)
    eta = -0.5 + 0.8 * k - 0.6 * m
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    recs = [
        record(
            i,
            harms=[("Violence & Extremism", "physical")] * int(k[i]),
            benefits=[("liberty",)] * int(m[i]),
        )
        for i in range(n)
    ]
    return recs, y, k, m


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    recs = []
    for i in range(40):
        harms = [
            (
                L2[rng.integers(3)],
                ["physical", "social", "liberty"][rng.integers(3)],
                ["minor", "significant", "substantial", "major"][rng.integers(4)],
                ["low", "medium", "high"][rng.integers(3)],
                bool(rng.integers(2)),
            )
            for _ in range(rng.integers(0, 4))
        ]
        benefits = [("psychological", "minor", "medium", False)] * int(rng.integers(0, 3))
        recs.append(record(i, harms, benefits) if harms or benefits else record(i, status="failed"))
    d = design_from_trees(recs, L2)
    y = (rng.random(d.n_trees) < 0.5).astype(float)
    layout = _Layout(len(d.actions), len(d.categories))
    th = _theta_of(Weights.neutral(d.actions, d.categories), d) + rng.uniform(
        0.05, 0.3, layout.size
    )
    th[-2] = 0.6
    sw = rng.uniform(0.5, 2.0, d.n_trees)
    err = check_grad(
        lambda t: penalised_nll(t, d, y, layout, 0.3, sw)[0],
        lambda t: penalised_nll(t, d, y, layout, 0.3, sw)[1],
        th,
    )
    assert err < 1e-4


def test_unpenalised_fit_reproduces_statsmodels_logit():
    recs, y, k, m = counts_data()
    d = design_from_trees(recs, L2)
    fit = fit_weights(d, y, lam=0.0, n_starts=3, balanced=False)
    ref = sm.Logit(y, np.column_stack([np.ones_like(k), k, m]).astype(float)).fit(disp=0)
    w = fit.weights
    harm = w.action["harm:Violence & Extremism"] * w.category["harm:physical"]
    benefit = w.action["benefit"] * w.category["benefit:liberty"]
    assert w.intercept == pytest.approx(ref.params[0], abs=2e-3)
    assert harm == pytest.approx(ref.params[1], abs=2e-3)
    assert -benefit == pytest.approx(ref.params[2], abs=2e-3)
    assert fit.nll == pytest.approx(-ref.llf, rel=1e-6)
    assert fit.converged and fit.effect_counts["action.harm:Privacy"] == 0


def test_ridge_keeps_unused_weights_neutral_and_scores_are_monotone_in_extent():
    recs, y, *_ = counts_data(200, seed=1)
    d = design_from_trees(recs, L2)
    fit = fit_weights(d, y, lam=1.0, n_starts=2)
    assert fit.weights.action["harm:Privacy"] == pytest.approx(1.0)
    assert fit.weights.category["harm:ecological"] == pytest.approx(1.0)
    fit.weights.check()
    ext = [fit.weights.extent[e] for e in ("minor", "significant", "substantial", "major")]
    assert ext == sorted(ext) and ext[-1] == 1.0


def test_extent_and_likelihood_weights_are_learned_monotone():
    """Minor harms carry less signal than major ones; the fit must find that order."""
    rng = np.random.default_rng(5)
    recs, y = [], []
    for i in range(600):
        ext = ["minor", "significant", "substantial", "major"][rng.integers(4)]
        lik = ["low", "medium", "high"][rng.integers(3)]
        strength = {"minor": 0.2, "significant": 0.6, "substantial": 1.2, "major": 2.5}[ext]
        strength *= {"low": 0.3, "medium": 0.6, "high": 1.0}[lik]
        y.append(float(rng.random() < 1 / (1 + np.exp(-(-1.0 + 2 * strength)))))
        recs.append(record(i, harms=[("Privacy", "liberty", ext, lik)]))
    d = design_from_trees(recs, L2)
    w = fit_weights(d, np.array(y), lam=0.0, n_starts=3, balanced=False).weights
    ext = [w.extent[e] for e in ("minor", "significant", "substantial", "major")]
    lik = [w.likelihood[e] for e in ("low", "medium", "high")]
    assert ext == sorted(ext) and ext[0] < 0.3
    assert lik == sorted(lik) and lik[0] < 0.6


def test_failed_trees_get_no_score_and_do_not_enter_the_fit():
    recs, y, *_ = counts_data(100)
    recs[0] = record(0, status="failed")
    d = design_from_trees(recs, L2)
    assert not d.has_tree[0]
    fit = fit_weights(d, y, lam=0.0, balanced=False)
    assert fit.n_trees == 99
    sc = score_trees(d, fit.weights)
    assert np.isnan(sc.score[0]) and np.isnan(sc.probability[0]) and not sc.label[0]
    assert np.isfinite(sc.score[1:]).all()


def test_balanced_fit_moves_the_intercept_not_the_slope():
    recs, y, *_ = counts_data(400, seed=2)
    d = design_from_trees(recs, L2)
    plain = fit_weights(d, y, lam=0.0, balanced=False).weights
    bal = fit_weights(d, y, lam=0.0, balanced=True).weights
    slope = lambda w: w.action["harm:Violence & Extremism"] * w.category["harm:physical"]  # noqa: E731
    assert slope(bal) == pytest.approx(slope(plain), rel=0.15)
    prior = np.log(y.mean() / (1 - y.mean()))
    assert bal.intercept - plain.intercept == pytest.approx(-prior, abs=0.25)


def test_leave_one_source_out_folds():
    src = np.array(["a"] * 5 + ["b"] * 3 + ["n"] * 10)
    y = np.array([1] * 8 + [0] * 10)
    fold = leave_one_source_out(src, y, seed=0)
    assert set(fold[:5]) == {0} and set(fold[5:8]) == {1}
    assert sorted(np.bincount(fold[8:])) == [5, 5]
    with pytest.raises(AggregationError, match="two harmful sources"):
        leave_one_source_out(src[:5].tolist() + ["n"] * 3, [1] * 5 + [0] * 3)
    sf = stratified_folds(["x"] * 10 + ["y"] * 5, k=5, seed=1)
    assert np.bincount(sf[:10]).tolist() == [2] * 5 and np.bincount(sf[10:], minlength=5).max() == 1


def test_cross_fit_predicts_each_fold_from_other_folds_only():
    recs, y, *_ = counts_data(120)
    d = design_from_trees(recs, L2)
    fold = np.arange(120) % 3
    cf = cross_fit(d, y, fold, lam=0.0, n_starts=1, balanced=False)
    for k in range(3):
        w = fit_weights(
            d.subset(np.flatnonzero(fold != k)), y[fold != k], lam=0.0, balanced=False
        ).weights
        expected = score_trees(d.subset(np.flatnonzero(fold == k)), w).probability
        np.testing.assert_allclose(cf.probability[fold == k], expected, atol=1e-4)


def test_subset_repeats_trees_with_their_effects():
    recs, _, k, m = counts_data(30)
    d = design_from_trees(recs, L2)
    rows = np.array([3, 3, 7])
    s = d.subset(rows)
    assert s.n_trees == 3
    assert np.bincount(s.tree, minlength=3).tolist() == [k[3] + m[3]] * 2 + [k[7] + m[7]]


def test_bootstrap_intervals_cover_the_estimate():
    recs, y, *_ = counts_data(200, seed=4)
    d = design_from_trees(recs, L2)
    fit = fit_weights(d, y, lam=1.0, n_starts=1)
    ci = bootstrap_weights(d, y, ["all"] * 200, fit, n_boot=20, seed=0)
    row = ci.set_index("weight").loc["intercept"]
    assert row["lo"] <= row["estimate"] <= row["hi"] and row["lo"] < row["hi"]
    assert ci.set_index("weight").loc["action.harm:Privacy", "n_effects"] == 0


def test_explanations_rank_effects_by_absolute_contribution():
    recs = [
        record(
            0,
            harms=[("Privacy", "liberty", "minor", "low"), ("Security Risks", "property")],
            benefits=[("liberty", "major", "high")],
        )
    ]
    d = design_from_trees(recs, L2)
    w = Weights.neutral(d.actions, d.categories)
    w = Weights.from_flat({**w.flat(), "action.benefit": 0.5})
    ex = explain(d, w, top=2)[0]
    assert [e["side"] for e in ex] == ["harm", "benefit"]
    assert ex[0]["air_l2"] == "Security Risks" and ex[0]["contribution"] == pytest.approx(1.0)
    assert ex[1]["contribution"] == pytest.approx(-0.5)
    assert format_effect(ex[0]) == "+1.00 harm Security Risks -> property (major, high, immediate)"
    assert format_effect(ex[1]) == "-0.50 benefit -> liberty (major, high, immediate)"


def test_weights_check_refuses_non_monotone_and_negative():
    w = Weights.neutral(("benefit",), ("harm:physical",))
    with pytest.raises(AggregationError, match="must not decrease"):
        Weights.from_flat({**w.flat(), "extent.minor": 0.9, "extent.significant": 0.1}).check()
    with pytest.raises(AggregationError, match="negative"):
        Weights.from_flat({**w.flat(), "action.benefit": -1}).check()
    with pytest.raises(AggregationError, match="discount"):
        Weights.from_flat({**w.flat(), "discount": 1.5}).check()


def test_design_refuses_unknown_air_category():
    recs = [record(0, harms=[("Privacy", "liberty")])]
    with pytest.raises(AggregationError, match="not in the taxonomy"):
        design_from_trees(recs, ("Security Risks",))
    assert isinstance(design_from_trees(recs, L2).effects, pd.DataFrame)
