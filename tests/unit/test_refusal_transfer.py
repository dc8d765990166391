"""Refusal detection in source, out of source and as deployed (graders.refusal_transfer)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from harmtrace.graders.refusal_transfer import (
    RefusalTransferError,
    refusal_labels,
    refusal_transfer,
)
from harmtrace.report.transfer_report import refusal_transfer_numbers, refusal_transfer_table
from tests.devdata import toy_refusal_records


def _two_sources() -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    lexicon, labelled = toy_refusal_records()
    first = labelled.iloc[::2].assign(dataset="src-a")
    second = labelled.iloc[1::2].assign(dataset="src-b")
    return lexicon, {"src-a": refusal_labels(first), "src-b": refusal_labels(second)}


def test_labels_from_pyrit_and_from_the_air_bench_judge():
    _, labelled = toy_refusal_records()
    assert refusal_labels(labelled)["refused"].tolist() == labelled["pyr_refusal"].tolist()
    air = labelled.drop(columns="pyr_refusal").assign(
        air_judge_score=pd.array([1.0, 0.5, 0.0, None] * 6, dtype="Float64")
    )
    got = refusal_labels(air)
    # partial (0.5) and complied (0) are not refused; an unjudged answer is left out
    assert got["refused"].tolist() == [True, False, False] * 6
    assert len(got) == 18
    with pytest.raises(RefusalTransferError, match="no refusal labels"):
        refusal_labels(labelled.drop(columns="pyr_refusal"))


def test_each_source_in_source_out_of_source_and_deployed():
    lexicon, sources = _two_sources()
    result = refusal_transfer(lexicon, sources, train=["src-a"], n_splits=3, n_resamples=200)
    m = result.metrics.set_index(["dataset", "evaluation"])
    assert set(m.index) == {(s, e) for s in ("src-a", "src-b") for e in ("oof", "loso", "deployed")}
    assert m.loc[("src-b", "loso"), "trained_on"] == "src-a"
    assert m.loc[("src-a", "deployed"), "trained_on"] == "src-a"
    # the deployed detector never saw src-b: its rows equal the out-of-source ones there
    assert m.loc[("src-b", "deployed"), "kappa"] == m.loc[("src-b", "loso"), "kappa"]
    # kappa is Cohen's kappa of the decisions written beside it
    d = result.decisions
    for (source, evaluation), row in m.iterrows():
        sel = d[(d["dataset"] == source) & (d["evaluation"] == evaluation)]
        expect = cohen_kappa_score(sel["refused"], sel["flag"])
        assert row["kappa"] == pytest.approx(expect)
        assert row["kappa_lo"] <= row["kappa"] + 1e-9 <= row["kappa_hi"] + 2e-9
        assert row["n"] == len(sel) and row["n_refused"] == int(sel["refused"].sum())
    # the toy refusals are learnable across sources
    assert m.loc[("src-b", "loso"), "kappa"] > 0.5


def test_needs_two_sources_and_known_training_sources():
    lexicon, sources = _two_sources()
    with pytest.raises(RefusalTransferError, match="at least two"):
        refusal_transfer(lexicon, {"src-a": sources["src-a"]}, n_splits=3)
    with pytest.raises(RefusalTransferError, match="not among the sources"):
        refusal_transfer(lexicon, sources, train=["nowhere"], n_splits=3)


def test_table_and_numbers_follow_the_metrics():
    metrics = pd.DataFrame(
        {
            "dataset": ["a", "a", "b", "b"],
            "evaluation": ["oof", "loso", "oof", "loso"],
            "trained_on": ["a", "b", "b", "a"],
            "n": [10, 10, 20, 20],
            "n_refused": [4, 4, 5, 5],
            "n_flagged": [4, 3, 5, 9],
            "kappa": pd.array([0.9, 0.5, 0.8, None], dtype="Float64"),
            "kappa_lo": [0.7, 0.2, 0.6, np.nan],
            "kappa_hi": [1.0, 0.8, 0.95, np.nan],
            "recall": [1.0, 0.75, 1.0, 1.0],
            "false_positive_rate": [0.0, 0.0, 0.0, 0.27],
            "accuracy": [1.0, 0.9, 1.0, 0.8],
        }
    )
    tab = refusal_transfer_table(metrics)
    assert tab["Source"].tolist() == ["a", "b"]
    assert tab.loc[0, "Out of source $\\kappa$ [CI]"] == "0.50 [0.20, 0.80]"
    nums = refusal_transfer_numbers(metrics)
    assert nums["refusal loso a kappa"].value == pytest.approx(0.5)
    assert nums["refusal loso a trained on"].value == "b"
    assert "refusal loso b kappa" not in nums  # undefined kappa is not a number
    assert nums["refusal loso b fpr"].value == pytest.approx(0.27)


def test_metrics_satisfy_their_table_schema(tmp_path):
    from harmtrace.io import read_table, write_table

    lexicon, sources = _two_sources()
    result = refusal_transfer(lexicon, sources, n_splits=3, n_resamples=100)
    write_table(result.metrics, tmp_path / "m.parquet", "refusal_transfer")
    back = read_table(tmp_path / "m.parquet", "refusal_transfer")
    assert back["kappa"].tolist() == pytest.approx(result.metrics["kappa"].tolist())
