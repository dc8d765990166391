"""Relevance by severity and transition, trend and lexical checks, on a hand-built frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.contingency_tables import Table

from harmtrace.analysis.relevance import analyse_relevance, relevance_numbers
from harmtrace.taxonomy import CATEGORIES


def _frame(spec, refusal=True) -> pd.DataFrame:
    """spec: (count, prompt hate, response hate, relevance, refused)."""
    rows = []
    for count, p, r, rel, refused in spec:
        for _ in range(count):
            row = {
                "record_id": f"r{len(rows):04d}",
                "sample": "s",
                "dataset": "s",
                "relevance": rel,
                "refusal": refused if refusal else None,
            }
            for cat in CATEGORIES:
                row[f"prompt_severity_{cat}"] = p if cat == "hate" else 0
                row[f"response_severity_{cat}"] = r if cat == "hate" else 0
            rows.append(row)
    df = pd.DataFrame(rows)
    for c in df.columns:
        if "_severity_" in c or c == "relevance":
            df[c] = df[c].astype("Int8")
    df["refusal"] = df["refusal"].astype("boolean")
    return df


SPEC = [
    # refusals: low severity and relevance 1 -- the association built into lexical grading
    (20, 2, 0, 1, True),
    (10, 0, 0, 1, True),
    # answers
    (15, 0, 0, 3, False),
    (10, 1, 1, 2, False),
    (12, 2, 2, 3, False),
    (6, 2, 3, 3, False),  # compliance-escalations
    (4, 0, 2, 2, False),  # escalation from a benign prompt: not a compliance-escalation
]


def test_distributions_and_tests_by_hand():
    res = analyse_relevance(_frame(SPEC), n_resamples=200)["s"]
    sev = res.by_severity.set_index("level")
    # severity 0: 20 + 10 refusals (rel 1) + 15 (rel 3) = 45
    assert sev.loc[0, ["rel1", "rel2", "rel3", "n"]].tolist() == [30, 0, 15, 45]
    assert sev.loc[2, ["rel1", "rel2", "rel3", "n"]].tolist() == [0, 4, 12, 16]
    assert sev.loc[3, "share3"] == 1.0
    tr = res.by_transition.set_index("level")
    # de-escalate: 20 refusals (2 -> 0); escalate: 6 (2 -> 3) + 4 (0 -> 2)
    assert tr.loc["de-escalate", "n"] == 20 and tr.loc["escalate", "n"] == 10
    assert tr.loc["escalate", "rel3"] == 6
    tests = res.tests.set_index("test")
    table = sev[["rel1", "rel2", "rel3"]].to_numpy()
    ref = Table(table).test_ordinal_association(
        row_scores=np.arange(4.0), col_scores=np.array([1.0, 2.0, 3.0])
    )
    assert tests.loc["trend", "pvalue"] == pytest.approx(ref.pvalue)
    assert tests.loc["trend", "n"] == 77
    # without the refusals the association is what remains of the answers only
    assert tests.loc["non_refusal", "n"] == 47
    assert tests.loc["within_prompt_severity", "n"] == 77
    assert res.compliance == {"cells": 6, "records": 6, "rel1": 0, "rel2": 0, "rel3": 6}


def test_numbers_and_missing_refusals():
    res = analyse_relevance(_frame(SPEC, refusal=False), n_resamples=100)
    nums = relevance_numbers(res, 0.05)
    assert nums["s non refusal p"].value == "no refusal judgments"
    assert nums["s compliance relevance 3"].value == 1.0
    assert nums["s relevance three at medium n"].value == 16
    assert nums["s relevance three at medium"].value == pytest.approx(12 / 16)
    assert nums["s relevance three for escalate"].value == pytest.approx(6 / 10)
    assert nums["s least relevant severity"].value == "low"  # 0 of 10 fully relevant
    none = analyse_relevance(_frame([(8, 0, 0, 3, False)]), n_resamples=50)
    n2 = relevance_numbers(none, 0.05)
    assert n2["s compliance relevance 3"].value == "no compliance escalations"
    assert n2["s trend p"].kind == "text"  # one severity level: nothing to test
