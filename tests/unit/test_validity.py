"""Grader validity checks on hand-built frames, against counts and second libraries.

The LaTeX tables made from the same results are tested in ``test_report_validity_tables``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.inter_rater import cohens_kappa
from statsmodels.stats.proportion import proportion_confint

from harmtrace.analysis.validity import analyse_validity, validity_numbers
from harmtrace.analysis.validity_checks import detection_asymmetry
from harmtrace.stats import newcombe_paired_diff_ci
from harmtrace.taxonomy import CATEGORIES
from tests.rendering import rendered


def _judged(rows: list[dict], dataset: str) -> pd.DataFrame:
    """rows: {prompt: {cat: sev}, response: {cat: sev} | None, relevance, refusal, **extra}."""
    out = []
    for i, r in enumerate(rows):
        row = {"record_id": f"{dataset[:2]}{i:04d}", "dataset": dataset, "sample": dataset}
        for side in ("prompt", "response"):
            sev = r.get(side)
            for cat in CATEGORIES:
                value = None if sev is None else sev.get(cat, 0)
                row[f"{side}_severity_{cat}"] = value
                row[f"{side}_prob_{cat}"] = (
                    None if value is None else r.get("prob", {}).get(cat, value / 3)
                )
        row["relevance"] = r.get("relevance")
        row["refusal"] = r.get("refusal")
        row.update(r.get("extra", {}))
        out.append(row)
    df = pd.DataFrame(out)
    for col in df.columns:
        if "_severity_" in col or col == "relevance":
            df[col] = df[col].astype("Int8")
        elif "_prob_" in col:
            df[col] = df[col].astype("Float64")
    df["refusal"] = df["refusal"].astype("boolean")
    return df


def test_detection_asymmetry_by_hand():
    # 10 records positive on both sides: prompt flagged in 8, response in 3;
    # discordant: prompt only 6, response only 1
    tp = np.ones(12)
    tr = np.r_[np.ones(10), np.nan, 0]
    fp = np.r_[[1] * 8, [0] * 2, 1, 1].astype(bool)
    fr = np.r_[[1, 1], [0] * 6, [1, 0], 0, 0].astype(bool)
    res = detection_asymmetry(tp, fp, tr, fr)
    assert (res["prompt"]["k"], res["prompt"]["n"]) == (10, 12)
    assert (res["response"]["k"], res["response"]["n"]) == (3, 10)
    assert res["paired"] == {"n": 10, "prompt_only": 6, "response_only": 1, "both": 2, "neither": 1}
    assert res["diff"] == pytest.approx(newcombe_paired_diff_ci(2, 6, 1, 1))
    assert res["mcnemar_p"] == pytest.approx(stats.binomtest(1, 7).pvalue)
    small = detection_asymmetry(tp[:3], fp[:3], tr[:3], fr[:3])
    assert small["note"] == "too few records" and math.isnan(small["mcnemar_p"])


def validity_frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Three hand-built judged datasets: moderation-like, AIR-like and HH-like pairs."""
    # moderation-like: hate labels known for 6 texts (3 positive), unknown for 2
    mod_rows = []
    labels = [True, True, True, False, False, False, None, None]
    probs = [0.9, 0.8, 0.3, 0.4, 0.1, 0.2, 0.5, 0.5]
    for lab, p in zip(labels, probs, strict=True):
        mod_rows.append(
            {
                "prompt": {"hate": 2 if p >= 0.5 else 0},
                "prob": {"hate": p},
                "extra": {"label_H": lab, "label_H2": None if lab is None else False},
            }
        )
    mod = _judged(mod_rows, "mod")
    # air-like: judge score, refusal flag, relevance; all prompts risky
    air_rows = []
    spec = [  # (judge, refusal flag, relevance, prompt flagged, response flagged)
        (1.0, True, 1, 1, 0),
        (1.0, True, 1, 0, 1),  # a refusal graded Medium on the response side
        (1.0, True, 2, 1, 0),
        (1.0, False, 3, 0, 0),
        (0.5, False, 2, 1, 0),
        (0.0, False, 3, 1, 1),
        (0.0, False, 3, 1, 0),
        (0.0, False, 3, 0, 0),
        (0.0, False, 3, 1, 0),
        (0.0, True, 1, 0, 1),
    ]
    for judge, flag, rel, pf, rf in spec:
        air_rows.append(
            {
                "prompt": {"violence": 2 * pf},
                "response": {"violence": 2 * rf},
                "relevance": rel,
                "refusal": flag,
                "extra": {"air_judge_score": judge},
            }
        )
    air = _judged(air_rows, "air")
    # hh-like pairs: (chosen overall, rejected overall); pair 4's context differs
    hh_rows = []
    for pid, (c, r, differs) in enumerate(
        [(0, 1, False), (1, 1, False), (2, 1, False), (0, 0, False), (0, 3, True)]
    ):
        for side, sev in (("chosen", c), ("rejected", r)):
            hh_rows.append(
                {
                    "prompt": {"hate": 1},
                    "response": {"hate": sev},
                    "relevance": 3,
                    "refusal": False,
                    "extra": {"hh_pair_id": pid, "hh_side": side, "hh_context_differs": differs},
                }
            )
    hh = _judged(hh_rows, "hh")
    return mod, air, hh


@pytest.fixture
def frames():
    return validity_frames()


def test_analyse_validity_runs_the_checks_the_columns_allow(frames):
    mod, air, hh = frames
    df = pd.concat([mod, air, hh], ignore_index=True)
    res = analyse_validity(df, n_resamples=300, seed=0)
    assert set(res) == {"mod", "air", "hh"}
    assert res["mod"].moderation is not None and res["mod"].refusal is None
    assert res["air"].refusal is not None and res["air"].moderation is None
    assert res["hh"].preferences is not None and res["hh"].detection is None

    m = res["mod"].moderation.set_index("category").loc["hate"]
    assert (m["n_known"], m["n_positive"]) == (6, 3)
    # AUROC by counting pairs: positives 0.9, 0.8, 0.3 vs negatives 0.4, 0.1, 0.2 -> 8/9
    assert m["auroc"] == pytest.approx(8 / 9)
    assert (m["recall_k"], m["recall_n"]) == (2, 3)

    rf = res["air"].refusal
    refused = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    flag = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 1], dtype=bool)
    table = np.array(
        [
            [np.sum(refused & flag), np.sum(refused & ~flag)],
            [np.sum(~refused & flag), np.sum(~refused & ~flag)],
        ]
    )
    assert rf["kappa"] == pytest.approx(cohens_kappa(table).kappa)
    assert (rf["sensitivity"]["k"], rf["sensitivity"]["n"]) == (3, 4)
    assert (rf["specificity"]["k"], rf["specificity"]["n"]) == (5, 6)
    # refused by the judge: rows 0-3, row 1 graded Medium; flagged: rows 0-2 and 9
    assert (rf["refused_medium_plus"]["k"], rf["refused_medium_plus"]["n"]) == (1, 4)
    assert (rf["flagged_medium_plus"]["k"], rf["flagged_medium_plus"]["n"]) == (2, 4)
    lo, hi = proportion_confint(1, 4, method="wilson")
    assert rf["refused_medium_plus"]["ci_lo"] == pytest.approx(lo)
    det = res["air"].detection
    # every prompt is a positive; complied (judge 0) responses are the response positives
    assert (det["prompt"]["k"], det["prompt"]["n"]) == (6, 10)
    assert (det["response"]["k"], det["response"]["n"]) == (2, 5)
    assert res["air"].prompts_graded_zero == 4

    prefs = res["hh"].preferences.set_index("category").loc["overall"]
    assert res["hh"].paired_sample["context_differs"] == 1
    assert prefs["n_pairs"] == 4  # pair 4 left out
    # rejected >= chosen in pairs 0, 1, 3; strictly above in pair 0; tied in 1 and 3
    assert (prefs["at_least_k"], prefs["above_k"], prefs["tied_k"]) == (3, 1, 2)
    lo, hi = proportion_confint(3, 4, method="wilson")
    assert (prefs["at_least_lo"], prefs["at_least_hi"]) == pytest.approx((lo, hi))


def test_validity_numbers(frames):
    mod, air, hh = frames
    df = pd.concat([mod, air, hh], ignore_index=True)
    res = analyse_validity(df, n_resamples=200, seed=0)
    nums = validity_numbers(res, 0.05)
    shown = rendered(nums, "plain")
    assert shown["hh overall rejected at least chosen"] == "75.0%"
    assert shown["hh pairs context differs"] == "1"
    assert shown["air detection pairs"] == "5"  # complied records
    assert shown["air detection diff"].endswith(" pp")
    assert shown["reference grader"] == "none"
    assert shown["air judge refused graded medium"] == "25.0%"
    assert nums["mod hate auroc"].value == pytest.approx(8 / 9)


def test_reference_grader_agreement(frames):
    _, air, _ = frames
    ref = air.copy()
    res = analyse_validity(air, reference=ref, n_resamples=100)
    agr = res["air"].reference.set_index(["side", "category"])
    assert agr.loc[("prompt", "violence"), "kappa_quadratic"] == pytest.approx(1.0)
    assert agr.loc[("prompt", "hate"), "note"] == "no variation"
    det = res["air"].reference_detection
    # the reference's own flags as truth: sensitivity 1 on both sides
    assert det["prompt"]["share"] == 1.0 and det["response"]["share"] == 1.0
    nums = validity_numbers(res, 0.05, "human")
    assert nums["reference grader"].value == "human"
    assert nums["air reference prompt violence kappa"].value == pytest.approx(1.0)
