"""F1 evaluation for the seed's table, against scikit-learn and the cited file (the table
itself is tested in ``test_report_trees_tables``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from harmtrace.trees.evaluation import (
    air_agreement,
    cited_f1,
    f1_numbers,
    grader_prompt_flags,
    prompt_f1,
)
from harmtrace.trees.harm_benefit import benign_mask


def test_prompt_f1_matches_sklearn():
    rng = np.random.default_rng(0)
    y = rng.random(200) < 0.4
    pred = rng.random(200) < 0.5
    r = prompt_f1(pred.tolist(), y.tolist())
    assert r.f1 == pytest.approx(f1_score(y, pred))
    assert r.precision == pytest.approx(precision_score(y, pred))
    assert r.recall == pytest.approx(recall_score(y, pred))
    assert not r.harmful_only


def test_harmful_only_f1_is_a_function_of_recall_and_failures_count_as_unflagged():
    flags = [True] * 6 + [False] * 3 + [None]
    r = prompt_f1(flags, [True] * 10)
    assert r.harmful_only and r.n_failed == 1 and r.precision == 1.0
    assert r.recall == 0.6 and r.f1 == pytest.approx(2 * 0.6 / 1.6)
    assert r.f1 == pytest.approx(f1_score([1] * 10, [1] * 6 + [0] * 4))


def test_grader_flags_need_severity_two_and_failures_stay_null():
    j = pd.DataFrame(
        {
            f"prompt_severity_{c}": pd.array(v, dtype="Int8")
            for c, v in zip(
                ("hate", "sexual", "violence", "self_harm"),
                ([0, 1, 2, None], [0, 1, 0, None], [0, 0, 0, None], [0, 0, 3, None]),
                strict=True,
            )
        }
    )
    assert grader_prompt_flags(j).tolist() == [False, False, True, pd.NA]


def test_cited_rows_match_the_seed_table():
    c = cited_f1()
    assert "arXiv:2410.16665" in c.source and len(c.rows) == 12
    assert c.rows["SafetyAnalyst"]["harmbench"] == 96.1
    assert c.rows["WildGuard"]["air-bench"] == 87.6
    assert c.rows["Llama-Guard"]["sorry-bench"] is None


def hand_f1_results():
    """Two systems' prompt F1 on hand-countable flags: recall 0.9, 0.5 and 1 for "Mine",
    HarmBench only for "Partial"."""
    return {
        "Mine": {
            "simplesafetytests": prompt_f1([True] * 9 + [False], [True] * 10),
            "harmbench": prompt_f1([True] * 5 + [False] * 5, [True] * 10),
            "air-bench-2024": prompt_f1([True] * 10, [True] * 10),
        },
        "Partial": {"harmbench": prompt_f1([True], [True])},
    }


def test_f1_numbers_for_systems_run_here_and_the_cited_row():
    ours = hand_f1_results()
    numbers = f1_numbers(ours)
    assert numbers["f1 Mine harmbench"].value == pytest.approx(100 * 2 * 0.5 / 1.5)
    assert numbers["recall Mine harmbench"].value == 0.5
    f1s = [100 * 2 * 0.9 / 1.9, 100 * 2 * 0.5 / 1.5, 100.0]
    assert numbers["f1 Mine average"].value == pytest.approx(sum(f1s) / 3)
    # a system without all three sets run here has no average
    assert "f1 Partial average" not in numbers and "f1 Partial harmbench" in numbers
    assert numbers["cited f1 harmbench"].value == 96.1
    assert numbers["cited f1 average"].value == 81.2
    assert numbers["cited f1 three run here"].value == pytest.approx((88.8 + 96.1 + 88.9) / 3)
    assert "arXiv:2410.16665" in numbers["f1 source"].value


def test_a_harmful_set_outside_the_published_table_gets_its_numbers_but_no_average():
    """A study's own harmful prompt set is scored and named in the text; the average
    stays the mean over the table's three sets."""
    ours = hand_f1_results()
    ours["Mine"]["my-prompts"] = prompt_f1([True] * 3 + [False], [True] * 4)
    numbers = f1_numbers(ours)
    assert numbers["recall Mine my-prompts"].value == 0.75
    assert numbers["f1 Mine my-prompts"].value == pytest.approx(100 * 2 * 0.75 / 1.75)
    f1s = [100 * 2 * 0.9 / 1.9, 100 * 2 * 0.5 / 1.5, 100.0]
    assert numbers["f1 Mine average"].value == pytest.approx(sum(f1s) / 3)
    only_own = f1_numbers({"Mine": {"my-prompts": ours["Mine"]["my-prompts"]}})
    assert "f1 Mine my-prompts" in only_own and "f1 Mine average" not in only_own


def test_air_agreement_top1_top3():
    ranking = pd.DataFrame(
        {
            "prompt": [0] * 4 + [1] * 4,
            "rank": [0, 1, 2, 3] * 2,
            "l2": ["A", "B", "C", "D", "B", "C", "D", "A"],
        }
    )
    out = air_agreement(ranking, ["A", "A"])
    assert (out["top1"], out["top3"], out["chance_top1"]) == (0.5, 0.5, 0.25)


def test_benign_mask_needs_every_known_label_negative():
    df = pd.DataFrame(
        {
            "dataset": "m",
            "label_S": pd.array([False, False, True, None], dtype="boolean"),
            "label_H": pd.array([False, None, False, None], dtype="boolean"),
        }
    )
    assert benign_mask(df).tolist() == [True, True, False, False]
