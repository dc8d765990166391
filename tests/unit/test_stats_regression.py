"""Clustered logistic and ordinal regression against sklearn, a hand sandwich and R output."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from harmtrace.stats import brant_test, clustered_logit, ordinal_regression

SURVEY = Path(__file__).resolve().parents[1] / "data" / "mass_survey_smoke.csv"


def _clustered_frame(seed: int = 0, n_records: int = 300) -> pd.DataFrame:
    """Records with 1-3 category rows each, a shared record effect, three categories."""
    rng = np.random.default_rng(seed)
    rows = []
    effect = {"hate": 0.0, "sexual": -1.2, "violence": 0.3}
    for r in range(n_records):
        shared = rng.normal(0, 1.0)
        for cat in rng.choice(list(effect), size=rng.integers(1, 4), replace=False):
            sev = int(rng.integers(1, 4))
            eta = 0.2 + effect[cat] + 0.5 * sev + shared
            rows.append(
                {
                    "record_id": f"r{r}",
                    "category": cat,
                    "prompt_sev": sev,
                    "y": int(rng.random() < 1 / (1 + math.exp(-eta))),
                }
            )
    return pd.DataFrame(rows)


def test_clustered_logit_against_sklearn_and_hand_sandwich():
    df = _clustered_frame()
    levels = ["hate", "sexual", "violence"]
    res = clustered_logit(df, "y", "category", ["prompt_sev"], levels=levels)
    assert res.estimable and res.note == ""
    assert res.n_obs == len(df) and res.n_clusters == df["record_id"].nunique()
    # design: intercept, sexual, violence, prompt_sev
    x = np.column_stack(
        [
            np.ones(len(df)),
            df["category"] == "sexual",
            df["category"] == "violence",
            df["prompt_sev"],
        ]
    ).astype(float)
    y = df["y"].to_numpy(dtype=float)
    sk = LogisticRegression(C=np.inf, tol=1e-10, max_iter=10000).fit(x[:, 1:], y)
    beta = np.concatenate([sk.intercept_, sk.coef_[0]])
    np.testing.assert_allclose(res.coefficients["estimate"], beta, atol=1e-5)
    # cluster-robust sandwich by hand, with the usual small-sample factor
    p = 1 / (1 + np.exp(-x @ beta))
    bread = np.linalg.inv(x.T @ (x * (p * (1 - p))[:, None]))
    scores = pd.DataFrame(x * (y - p)[:, None]).groupby(df["record_id"].to_numpy()).sum()
    meat = scores.to_numpy().T @ scores.to_numpy()
    g, n, k = len(scores), len(df), x.shape[1]
    cov = (g / (g - 1)) * ((n - 1) / (n - k)) * bread @ meat @ bread
    np.testing.assert_allclose(res.coefficients["se"], np.sqrt(np.diag(cov)), rtol=1e-4)
    # contrasts: sexual vs violence = beta_sexual - beta_violence, same covariance
    con = res.contrasts.set_index(["level_a", "level_b"])
    row = con.loc[("sexual", "violence")]
    L = np.array([0, 1, -1, 0.0])
    assert row["log_or"] == pytest.approx(L @ beta, abs=1e-5)
    assert row["se"] == pytest.approx(math.sqrt(L @ cov @ L), rel=1e-4)
    assert con.loc[("hate", "sexual"), "odds_ratio"] == pytest.approx(math.exp(-beta[1]), rel=1e-4)
    # Holm over the three pairs, by hand
    raw = res.contrasts["pvalue"].to_numpy()
    order = np.argsort(raw)
    holm = np.minimum(1, np.maximum.accumulate(raw[order] * np.array([3, 2, 1])))
    np.testing.assert_allclose(res.contrasts["p_holm"].to_numpy()[order], holm)
    # omnibus Wald of the category factor (2 df) with the robust covariance
    b = beta[1:3]
    wald = b @ np.linalg.solve(cov[1:3, 1:3], b)
    assert res.factor_df == 2 and res.factor_wald == pytest.approx(wald, rel=1e-3)
    # the shared record effect makes robust SEs differ from model-based ones
    naive = np.sqrt(np.diag(bread))
    assert not np.allclose(res.coefficients["se"], naive, rtol=0.02)


def test_clustered_logit_refuses_what_it_cannot_estimate():
    df = _clustered_frame(n_records=100)
    sep = df.copy()
    sep.loc[sep["category"] == "sexual", "y"] = 1
    res = clustered_logit(sep, "y", "category", ["prompt_sev"])
    assert not res.estimable and "separation" in res.note and "sexual" in res.note
    assert res.coefficients.empty and res.contrasts.empty
    few = df.loc[df["record_id"].isin(["r1", "r2", "r3"])]
    res = clustered_logit(few, "y", "category", ["prompt_sev"])
    assert not res.estimable and res.note.startswith("too few records")
    with pytest.raises(ValueError):
        clustered_logit(df, "y", "category", levels=["hate", "sexual"])
    with pytest.raises(KeyError):
        clustered_logit(df, "nope", "category")


def _survey():
    d = pd.read_csv(SURVEY)
    d["Smoke"] = pd.Categorical(d["Smoke"], ["Never", "Occas", "Regul", "Heavy"]).codes
    d["id"] = np.arange(len(d))
    return d


def test_brant_matches_r_brant_package():
    # R: brant::brant(MASS::polr(Smoke ~ Sex + Height, data = MASS::survey)):
    # omnibus X2 = 3.28 (df 4, p 0.51), SexMale 1.58 (2, 0.45), Height 0.02 (2, 0.99)
    d = _survey()
    x = pd.DataFrame({"SexMale": (d["Sex"] == "Male").astype(float), "Height": d["Height"]})
    res = brant_test(d["Smoke"].to_numpy(), x).table.set_index("term")
    assert res.loc["omnibus", "chi2"] == pytest.approx(3.28, abs=0.005)
    assert res.loc["omnibus", "df"] == 4 and res.loc["omnibus", "pvalue"] == pytest.approx(
        0.51, abs=0.005
    )
    assert res.loc["SexMale", "chi2"] == pytest.approx(1.58, abs=0.005)
    assert res.loc["Height", "chi2"] == pytest.approx(0.02, abs=0.005)
    assert res.loc["Height", "df"] == 2


def test_ordinal_regression_matches_r_polr():
    # R: MASS::polr(Smoke ~ Sex + Height): SexMale 0.09478, Height 0.02785
    d = _survey()
    res = ordinal_regression(d, "Smoke", "Sex", ["Height"], cluster="id", levels=["Female", "Male"])
    assert res.estimable and res.outcome_levels == [0, 1, 2, 3]
    coef = res.coefficients.set_index("term")["estimate"]
    assert coef["Sex[Male]"] == pytest.approx(0.09478, abs=2e-4)
    assert coef["Height"] == pytest.approx(0.02785, abs=2e-5)
    assert res.brant is not None
    assert res.brant.table.set_index("term").loc["omnibus", "chi2"] == pytest.approx(3.28, abs=0.01)


def test_ordinal_regression_edge_cases():
    d = _survey()
    d["flat"] = 0
    res = ordinal_regression(d, "flat", "Sex", ["Height"], cluster="id")
    assert not res.estimable and res.note == "the outcome does not vary"
    two = d.assign(y=(d["Smoke"] > 0).astype(int))
    fit = ordinal_regression(two, "y", "Sex", ["Height"], cluster="id")
    assert fit.estimable and fit.brant is not None and fit.brant.table.empty
    assert "trivially" in fit.brant.note
    # an outcome level that never occurs is dropped, not estimated
    gap = d.assign(y=d["Smoke"].replace({1: 2}))
    assert ordinal_regression(gap, "y", "Sex", ["Height"], cluster="id").outcome_levels == [0, 2, 3]


def test_brant_leaves_out_a_cut_point_with_separation():
    rng = np.random.default_rng(3)
    n = 600
    group = rng.integers(0, 2, n)
    x = rng.normal(size=n)
    y = np.digitize(0.8 * x + rng.logistic(size=n), [-1.0, 0.5, 1.5])
    y[(group == 1) & (y == 3)] = 2  # group 1 never reaches the top level
    frame = pd.DataFrame({"g": group.astype(float), "x": x})
    res = brant_test(y, frame)
    assert "above 2 left out" in res.note
    omni = res.table.set_index("term").loc["omnibus"]
    assert omni["df"] == 2  # two usable cut-points, two slopes -> (2 - 1) * 2
    assert np.isfinite(omni["chi2"])
