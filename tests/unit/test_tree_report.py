"""Notebook-05 library: evaluation on cross-fitted probabilities, steering rates, figures
and paper numbers, on small synthetic tables (the LaTeX tables made from them are tested in
``test_report_trees_tables``)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest

from harmtrace.report.macros import Number, macro_name
from harmtrace.trees import report
from harmtrace.trees.evaluation import f1_numbers


def hb_table(dataset, probs, oof, labels_strict, primary):
    n = len(probs)
    return pd.DataFrame(
        {
            "record_id": [f"{dataset}-{i}" for i in range(n)],
            "dataset": dataset,
            "proxy": pd.array([True] * n, dtype="boolean"),
            "tree_status": ["ok"] * (n - 1) + ["failed"],
            "primary_risk": pd.array(primary, dtype="string"),
            "oof_prob_loso": pd.array(oof, dtype="Float64"),
            "label_fitted": pd.array([p >= 0.5 for p in probs[:-1]] + [None], dtype="boolean"),
            "label_strict": pd.array(labels_strict, dtype="boolean"),
        }
    )


def tree_inputs() -> report.Inputs:
    """Two small datasets, one generator's harm-benefit tables, judgments and weights."""
    records = {
        "harmbench": pd.DataFrame(
            {"record_id": [f"harmbench-{i}" for i in range(4)], "dataset": "harmbench"}
        ),
        "b": pd.DataFrame(
            {
                "record_id": [f"b-{i}" for i in range(4)],
                "dataset": "b",
                "label_S": pd.array([False, False, True, False], dtype="boolean"),
            }
        ),
    }
    tables = {
        "embedded": {
            "harmbench": hb_table(
                "harmbench",
                [0.9, 0.8, 0.2, 0.1],
                [0.7, 0.4, 0.6, None],
                [True, True, True, None],
                ["Privacy", "Privacy", None, None],
            ),
            "b": hb_table(
                "b",
                [0.6, 0.1, 0.9, 0.1],
                [0.6, 0.1, 0.9, None],
                [True, False, True, None],
                ["Privacy", None, "Self-harm", None],
            ),
        }
    }
    judgments = {
        d: pd.DataFrame(
            {
                "record_id": records[d]["record_id"],
                **{
                    f"prompt_severity_{c}": pd.array(v, dtype="Int8")
                    for c, v in zip(
                        ("hate", "sexual", "violence", "self_harm"),
                        ([2, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]),
                        strict=True,
                    )
                },
            }
        )
        for d in ("harmbench", "b")
    }
    weights = {
        "embedded": {
            "weights": {"threshold": 0.5},
            "fit": {"n_trees": 7, "n_positive": 4},
            "settings": {"bootstrap": 10},
            "cv": [
                {"scheme": "leave-one-source-out", "auroc": 0.6},
                {"scheme": "stratified-k-fold", "auroc": 0.7},
            ],
        }
    }
    ci = {
        "embedded": pd.DataFrame(
            {
                "weight": ["action.harm:Privacy", "action.harm:Self-harm", "category.harm:liberty"],
                "estimate": [1.2, 1.0, 0.5],
                "lo": [0.9, 1.0, 0.2],
                "hi": [1.5, 1.0, 0.8],
                "n_effects": pd.array([10, 0, 7], dtype="Int64"),
            }
        )
    }
    return report.Inputs(records, tables, judgments, weights, ci)


@pytest.fixture()
def inputs():
    return tree_inputs()


def test_evaluate_uses_cross_fitted_probabilities_and_benign_texts_only(inputs):
    ev = report.evaluate(inputs, ["harmbench"], ["b"])
    agg = ev.results["embedded"]
    # harmful: oof .7 .4 .6 and a failed tree -> 2 of 4 flagged, the failure counted
    assert (agg["harmbench"].flagged, agg["harmbench"].n_failed, agg["harmbench"].recall) == (
        2,
        1,
        0.5,
    )
    # benign: b-2 has a positive label and is left out; b-0 (.6) flagged of 3
    assert (agg["b"].n, agg["b"].flagged) == (3, 1)
    grader = ev.results["grader"]
    assert grader["harmbench"].flagged == 1 and grader["b"].flagged == 1


def test_harm_head_is_a_system_when_every_judgments_table_has_its_call(inputs):
    assert "harmhead" not in report.evaluate(inputs, ["harmbench"], ["b"]).results
    calls = {"harmbench": [True, True, False, True], "b": [True, False, False, False]}
    for d, j in inputs.judgments.items():
        j["prompt_harmful"] = pd.array(calls[d], dtype="boolean")
    ev = report.evaluate(inputs, ["harmbench"], ["b"])
    head = ev.results["harmhead"]
    # harmful: 3 of 4 called; benign: b-2 (positive label) left out, b-0 called of 3
    assert (head["harmbench"].flagged, head["harmbench"].n) == (3, 4)
    assert (head["b"].flagged, head["b"].n) == (1, 3)
    assert "harm head" in report.system_labels(inputs)["harmhead"]
    # one table without calls (another backend): no harm-head row at all
    inputs.judgments["b"]["prompt_harmful"] = pd.array([None] * 4, dtype="boolean")
    assert "harmhead" not in report.evaluate(inputs, ["harmbench"], ["b"]).results


def test_f1_and_paper_numbers(inputs):
    ev = report.evaluate(inputs, ["harmbench"], ["b"])
    harmful = report.harmful_results(ev, ["harmbench"])
    assert {s: set(by) for s, by in harmful.items()} == {
        "grader": {"harmbench"},
        "embedded": {"harmbench"},
    }
    numbers = f1_numbers(harmful)
    assert numbers["f1 embedded harmbench"].value == pytest.approx(100 * 2 * 0.5 / 1.5)
    steer = {"embedded": report.steering_table(inputs.tables["embedded"], ["fitted", "strict"],
                                               ("dataset",))}  # fmt: skip
    nums = report.paper_numbers(ev, ["harmbench"], ["b"], inputs.weights, inputs.tables, steer,
                                {"n": 80, "top1": .3, "top3": .5, "chance_top1": .0625,
                                 "chance_top3": .1875}, numbers, inputs.ci)  # fmt: skip
    assert all(isinstance(v, Number) for v in nums.values())
    assert nums["benign flagged embedded b"].value == pytest.approx(1 / 3)
    assert nums["auroc embedded loso"].value == 0.6
    assert nums["trees failed embedded"].value == 2
    assert nums["flag embedded strict harmbench"].value == 1.0
    assert nums["top action embedded"].value == "Privacy"
    assert nums["cited f1 harmbench"].value == 96.1
    assert nums["cited f1 three run here"].value == pytest.approx((88.8 + 96.1 + 88.9) / 3)
    names = {macro_name("harmbenefit", k) for k in nums}
    assert len(names) == len(nums) and all(n.isalpha() for n in names)


def test_steering_by_primary_risk_labels_missing_risk(inputs):
    t = report.steering_table(inputs.tables["embedded"], ["fitted", "strict"],
                              ("dataset", "primary_risk"))  # fmt: skip
    assert "(no harm)" in set(t["primary_risk"])
    row = t[
        (t["dataset"] == "harmbench")
        & (t["primary_risk"] == "Privacy")
        & (t["profile"] == "strict")
    ]
    assert row["rate"].item() == 1.0


def test_figures(inputs):
    fig = report.plot_weights(inputs.ci["embedded"], "action.harm:")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["Privacy"]
    rates = report.steering_table(inputs.tables["embedded"], ["fitted", "strict"], ("dataset",))
    fig = report.plot_steering(rates, {"harmbench": "Harmful"})
    assert "Harmful" in [t.get_text() for t in fig.axes[0].get_xticklabels()]


def test_steering_counts_a_benign_source_over_its_benign_texts_only(inputs):
    """The steering rates of a labelled benign source are over the texts the F1 table calls
    benign (every known label 0), not over the whole source."""
    tables = inputs.tables["embedded"]
    keep = {"b": report.benign_ids(inputs.records["b"])}
    assert 0 < len(keep["b"]) < len(tables["b"])
    whole = report.steering_table(tables, ["fitted"], ("dataset",)).set_index("dataset")
    benign = report.steering_table(tables, ["fitted"], ("dataset",), keep).set_index("dataset")
    t = tables["b"]
    flagged = t.loc[t["record_id"].astype(str).isin(keep["b"]), "label_fitted"]
    assert benign.loc["b", "n"] == len(keep["b"]) != whole.loc["b", "n"]
    assert benign.loc["b", "rate"] == pytest.approx(flagged.astype(float).mean())
    assert benign.loc["harmbench", "rate"] == whole.loc["harmbench", "rate"]
