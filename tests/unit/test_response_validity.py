"""Response-side validity against human labels of answers (analysis.response_validity)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import cohen_kappa_score, roc_auc_score

from harmtrace.analysis.response_validity import (
    labelled_refusal,
    response_harm,
    response_validity_numbers,
)
from harmtrace.analysis.validity import analyse_validity, validity_numbers
from harmtrace.taxonomy import CATEGORIES


def _judged(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rating = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], n)
    prob = np.clip(rating + rng.normal(0, 0.3, n), 0, 1)
    frame = pd.DataFrame(
        {
            "record_id": [f"{i:016x}" for i in range(n)],
            "dataset": "rated",
            "pyr_harm_category": pd.array(["violence"] * (n // 2) + ["hate"] * (n - n // 2)),
            "pyr_harm_score": pd.array(rating, dtype="Float64"),
        }
    )
    for cat in CATEGORIES:
        mine = frame["pyr_harm_category"].eq(cat).to_numpy()
        frame[f"response_prob_{cat}"] = pd.array(np.where(mine, prob, 0.0), dtype="Float64")
        frame[f"response_severity_{cat}"] = pd.array(
            np.where(mine, (prob >= 0.5) * 2, 0), dtype="Int64"
        )
    return frame


def test_auroc_spearman_recall_and_fpr_per_rated_category():
    frame = _judged()
    out = response_harm(frame, n_resamples=300).set_index("category")
    assert list(out.index) == ["hate", "violence"]  # only categories that were rated
    for cat, r in out.iterrows():
        d = frame[frame["pyr_harm_category"] == cat]
        y = d["pyr_harm_score"].astype(float) >= 0.5
        p = d[f"response_prob_{cat}"].astype(float)
        assert r["auroc"] == pytest.approx(roc_auc_score(y, p))
        assert r["auroc_lo"] <= r["auroc"] <= r["auroc_hi"]
        assert r["spearman"] == pytest.approx(spearmanr(d["pyr_harm_score"], p).statistic)
        flagged = d[f"response_severity_{cat}"].astype(int) >= 2
        assert r["recall_k"] == int((flagged & y).sum()) and r["recall_n"] == int(y.sum())
        zero = d["pyr_harm_score"].astype(float) == 0
        assert r["fpr_k"] == int((flagged & zero).sum()) and r["fpr_n"] == int(zero.sum())


def test_flagged_refusals_rated_harmless_but_graded_medium_per_rated_category():
    frame = _judged()
    rng = np.random.default_rng(1)
    frame["refusal"] = pd.array(rng.random(len(frame)) < 0.5, dtype="boolean")
    frame.loc[3, "refusal"] = pd.NA  # not graded: not a flagged refusal
    out = response_harm(frame, n_resamples=50).set_index("category")
    for cat, r in out.iterrows():
        d = frame[frame["pyr_harm_category"] == cat]
        harmless = d["pyr_harm_score"].astype(float) < 0.5
        refused = d["refusal"].fillna(False).astype(bool) & harmless
        medium = d[f"response_severity_{cat}"].astype(int) >= 2
        assert (r["refused_k"], r["refused_n"]) == (int((refused & medium).sum()), refused.sum())
        assert 0 < r["refused_n"] < len(d)
    # without a refusal flag (a grader that has none) nothing counts as a flagged refusal
    bare = response_harm(frame.drop(columns="refusal"), n_resamples=50)
    assert (bare["refused_n"] == 0).all()
    nums = response_validity_numbers("rated", None, out.reset_index())
    assert nums["rated response hate refused k"].value == out.loc["hate", "refused_k"]
    pooled = (nums["rated response refused graded medium k"].value,
              nums["rated response refused graded medium n"].value)  # fmt: skip
    assert pooled == (out["refused_k"].sum(), out["refused_n"].sum())


def test_refusal_labels_kappa_and_refusals_graded_medium():
    n = 20
    label = np.array([True] * 10 + [False] * 10)
    flag = label.copy()
    flag[0] = False  # one missed refusal
    frame = pd.DataFrame(
        {
            "record_id": [str(i) for i in range(n)],
            "dataset": "refusals",
            "pyr_refusal": pd.array(label, dtype="boolean"),
            "refusal": pd.array(flag, dtype="boolean"),
            "relevance": pd.array(np.where(label, 1, 3), dtype="Int64"),
        }
    )
    for cat in CATEGORIES:
        frame[f"response_severity_{cat}"] = pd.array([0] * n, dtype="Int64")
    frame.loc[1, "response_severity_hate"] = 2  # a labelled refusal graded Medium
    out = labelled_refusal(frame, n_resamples=300)
    assert out["flag"].kappa_quadratic == pytest.approx(cohen_kappa_score(label, flag))
    assert out["relevance_one"].kappa_quadratic == pytest.approx(1.0)
    assert (out["labelled_medium_plus"]["k"], out["labelled_medium_plus"]["n"]) == (1, 10)
    assert (out["flagged_medium_plus"]["k"], out["flagged_medium_plus"]["n"]) == (1, 9)
    nums = response_validity_numbers("refusals", out, None)
    assert nums["refusals labelled refusal graded medium"].value == pytest.approx(0.1)
    assert nums["refusals labelled refusal refused"].value == 10


def test_validity_runs_the_checks_a_dataset_carries_labels_for():
    res = analyse_validity(_judged(), n_resamples=200)["rated"]
    assert res.response_harm is not None and res.labelled_refusal is None
    assert res.moderation is None and res.refusal is None
    nums = validity_numbers({"rated": res}, 0.05)
    assert "rated response violence auroc" in nums
    assert "rated response sexual auroc" not in nums  # no sexual ratings


def test_tables_carry_the_rated_categories(tmp_path):
    from harmtrace.analysis.validity_tables import response_harm_table, write_validity_tables

    res = analyse_validity(_judged(), n_resamples=200)
    tab = response_harm_table(res, {"rated": "Rated set"})
    assert tab["Category"].tolist() == ["Hate", "Violence"]
    auroc = res["rated"].response_harm.set_index("category").loc["hate", "auroc"]
    assert tab.loc[0, "AUROC [CI]"].startswith(f"{auroc:.2f} [")
    paths = write_validity_tables(res, {"rated": "Rated set"}, tmp_path, "04_test")
    text = (tmp_path / "04_test--response_harm.tex").read_text()
    assert tmp_path / "04_test--response_harm.tex" in paths and "Rated set" in text
