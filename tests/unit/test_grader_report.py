"""Grader report: paper tables and numbers from small hand-made evaluation frames."""

from __future__ import annotations

import pandas as pd
import pytest

from harmtrace.report.grader_report import (
    data_numbers,
    extractor_numbers,
    extractor_table,
    grader_numbers,
    grader_table,
    relevance_numbers,
    relevance_table,
)
from harmtrace.report.latex import to_booktabs
from harmtrace.report.macros import macro_name
from tests.rendering import rendered

CATS = ["hate", "sexual", "violence", "self_harm"]


@pytest.fixture
def metrics() -> pd.DataFrame:
    # AUPRC order: self_harm (worst) < violence < hate < sexual (best);
    # AUROC order differs on purpose (violence has the lowest AUROC).
    return pd.DataFrame(
        {
            "category": CATS,
            "n_known": [760, 981, 1447, 1447],
            "n_positive": [162, 237, 94, 51],
            "base_rate": [162 / 760, 237 / 981, 94 / 1447, 51 / 1447],
            "auroc": [0.901, 0.955, 0.812, 0.874],
            "auprc": [0.712, 0.834, 0.405, 0.318],
            "f1": [0.65, 0.77, 0.40, 0.331],
            "recall": [0.5, 0.8, 0.25, 0.13],
            "recall_lo": [0.42, 0.74, 0.17, 0.06],
            "recall_hi": [0.58, 0.85, 0.35, 0.24],
            "precision": [0.8, 0.74, 0.7, 0.6],
        }
    )


@pytest.fixture
def severe() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "category": ["hate", "sexual", "violence"],
            "n_known": [760, 981, 1447],
            "n_severe": [40, 12, 30],
            "n_predicted_3": [20, 5, 10],
            "recall_3": [0.25, 1 / 3, float("nan")],
            "precision_3": [0.5, 0.8, float("nan")],
        }
    )


def test_grader_table_formats_every_column(metrics):
    tab = grader_table(metrics)
    assert list(tab.columns) == [
        "Category",
        "Known",
        "Positive",
        "AUROC",
        "AUPRC",
        "F1 (sev.\\,$\\geq$\\,2)",
        "Recall [95\\% CI]",
    ]
    assert tab["Category"].tolist() == ["Hate", "Sexual", "Violence", "Self-harm"]
    assert tab["Known"].tolist() == ["760", "981", "1{,}447", "1{,}447"]
    assert tab["AUROC"].tolist() == ["0.90", "0.95", "0.81", "0.87"]
    assert tab["AUPRC"].tolist() == ["0.71", "0.83", "0.41", "0.32"]
    # recall in whole percent with a whole-percent CI
    assert tab["Recall [95\\% CI]"].tolist() == [
        "50\\% [42\\%, 58\\%]",
        "80\\% [74\\%, 85\\%]",
        "25\\% [17\\%, 35\\%]",
        "13\\% [6\\%, 24\\%]",
    ]
    # cells are LaTeX already; used as raw columns they survive to_booktabs untouched
    tex = to_booktabs(tab, raw_columns=tuple(tab.columns))
    assert "Self-harm & 1{,}447 & 51 & 0.87 & 0.32 & 0.33 & 13\\% [6\\%, 24\\%] \\\\" in tex


def test_grader_numbers_picks_worst_and_best_by_auprc(metrics, severe):
    nums = rendered(grader_numbers(metrics, severe, n_train=1680, extractor="tfidf", folds=5))
    assert nums["n train"] == "1{,}680"
    assert nums["extractor"] == "tfidf" and nums["folds"] == "5"
    assert nums["worst category"] == "self-harm"
    assert nums["worst auprc"] == "0.32"
    assert nums["worst recall"] == "13.0\\%"
    assert nums["best category"] == "sexual"
    assert nums["best auprc"] == "0.83"
    # min/max AUROC are over all categories, not those of worst/best AUPRC
    assert nums["min auroc"] == "0.81" and nums["max auroc"] == "0.95"
    mean = (0.712 + 0.834 + 0.405 + 0.318) / 4
    assert nums["mean auprc"] == f"{mean:.2f}"
    assert nums["hate auroc"] == "0.90" and nums["self_harm precision"] == "0.60"
    # issue-12 targets (.75/.95/.55/.75): none reached by these made-up figures but
    # hate would need .75, and reaching it exactly counts as met
    assert nums["hate auprc target"] == "0.75" and nums["hate auprc target met"] == "not met"
    assert nums["auprc targets met"] == "0"
    hit = metrics.assign(auprc=[0.75, 0.96, 0.40, 0.30])
    again = rendered(grader_numbers(hit, severe, n_train=1680, extractor="tfidf", folds=5))
    assert again["hate auprc target met"] == "met" and again["sexual auprc target met"] == "met"
    assert again["violence auprc target met"] == "not met" and again["auprc targets met"] == "2"
    assert nums["violence known"] == "1{,}447" and nums["violence positive"] == "94"
    assert nums["hate severe recall"] == "25.0\\%"
    assert nums["sexual severe recall"] == "33.3\\%"
    assert nums["violence severe recall"] == "n/a"
    assert nums["sexual severe n"] == "12"
    assert "self_harm severe recall" not in nums


def test_grader_numbers_follow_the_ranking_when_it_changes(metrics, severe):
    swapped = metrics.copy()
    swapped["auprc"] = [0.2, 0.3, 0.9, 0.5]  # hate worst, violence best
    nums = rendered(grader_numbers(swapped, severe, 10, "minilm", 2))
    assert nums["worst category"] == "hate" and nums["worst recall"] == "50.0\\%"
    assert nums["best category"] == "violence" and nums["best auprc"] == "0.90"


def test_grader_numbers_are_macro_safe(metrics, severe):
    nums = rendered(grader_numbers(metrics, severe, 1680, "tfidf", 5))
    names = [macro_name("grader", k) for k in nums]
    assert len(set(names)) == len(names)
    assert all(isinstance(v, str) for v in nums.values())


def test_grader_numbers_ignore_categories_without_auprc(metrics, severe):
    m = metrics.copy()
    m.loc[m["category"] == "self_harm", "auprc"] = float("nan")
    nums = rendered(grader_numbers(m, severe, 1680, "tfidf", 5))
    assert nums["best category"] == "sexual"
    assert nums["worst category"] == "violence"


@pytest.fixture
def summary() -> pd.DataFrame:
    rows = []
    for ex, speed, base in (
        ("tfidf", [5000.0, 5200.0, 5400.0, 5600.0], 0.6),
        ("minilm", [300.0] * 4, 0.7),
    ):
        for i, cat in enumerate(CATS):
            rows.append(
                {
                    "extractor": ex,
                    "category": cat,
                    "n_seeds": 3,
                    "auroc_mean": base + 0.2 + i / 100,
                    "auroc_sd": 0.012,
                    "auprc_mean": base + i / 10,
                    "auprc_sd": 0.031,
                    "f1_mean": base - 0.1,
                    "f1_sd": 0.007,
                    "texts_per_s": speed[i],
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture
def loso() -> pd.DataFrame:
    rows = [("tfidf", "a", 0.9), ("tfidf", "b", 0.7), ("tfidf", "c", float("nan"))]
    rows += [("minilm", "a", 0.8), ("minilm", "b", 0.85), ("minilm", "c", float("nan"))]
    return pd.DataFrame(rows, columns=["extractor", "dataset", "auroc"])


def test_extractor_table(summary, loso):
    tab = extractor_table(summary, loso)
    cols = ["Extractor", "Hate", "Sexual", "Violence", "Self-harm", "LOSO mean", "LOSO lowest"]
    assert list(tab.columns) == cols and len(tab) == 2
    first = tab.iloc[0]
    assert first["Extractor"] == "\\texttt{tfidf}"
    assert first["Hate"] == "0.60 $\\pm$ 0.03"  # three seeds: sd shown
    assert first["LOSO mean"] == "0.80" and first["LOSO lowest"] == "0.70"  # NaN skipped
    assert tab.iloc[1]["LOSO mean"] == "0.82"
    one_seed = extractor_table(summary.assign(n_seeds=1), loso)
    assert one_seed.iloc[0]["Hate"] == "0.60"  # one seed: no sd to show
    # throughput never reaches the table
    faster = summary.assign(texts_per_s=summary["texts_per_s"] * 1.1)
    assert extractor_table(faster, loso).equals(tab)


def test_extractor_numbers_agrees(summary, loso):
    nums = rendered(extractor_numbers(summary, loso, chosen="tfidf", configured="tfidf"))
    assert nums["agrees"] == "agrees"
    assert nums["chosen"] == "tfidf" and nums["configured"] == "tfidf"
    assert nums["seeds"] == "3" and nums["loso sources"] == "2"
    # tfidf AUPRC 0.6, 0.7, 0.8, 0.9 -> mean 0.75; minilm 0.7..1.0 -> mean 0.85
    assert nums["tfidf mean auprc"] == f"{(0.6 + 0.7 + 0.8 + 0.9) / 4:.2f}"
    assert nums["minilm mean auprc"] == f"{(0.7 + 0.8 + 0.9 + 1.0) / 4:.2f}"
    assert nums["tfidf loso auroc"] == "0.80" and nums["minilm loso lowest"] == "0.80"
    assert not any("texts per s" in k or "fast enough" in k for k in nums)
    assert nums["tfidf self_harm auprc"] == "0.90"
    assert nums["minilm hate auprc"] == "0.70"
    names = [macro_name("extractors", k) for k in nums]
    assert len(set(names)) == len(names)


def test_extractor_numbers_does_not_agree(summary, loso):
    nums = rendered(extractor_numbers(summary, loso, chosen="minilm", configured="tfidf"))
    assert nums["agrees"] == "does not agree" and nums["chosen"] == "minilm"


@pytest.fixture
def relevance_summary() -> pd.DataFrame:
    stats = {
        "n": 80.0,
        "n_judge_refused": 30.0,
        "n_flagged_refusal": 28.0,
        "refusal_accuracy": 0.9124,
        "refusal_precision": 25 / 28,
        "refusal_recall": 25 / 30,
        "refusal_kappa": 0.8123,
        "auroc_refusal_flag": 0.9,
        "auroc_relevance": 0.8861,
        "spearman_relevance_judge": -0.7349,
        "s_off": 0.1,
        "s_on": 0.3,
    }
    return pd.DataFrame({"statistic": list(stats), "value": list(stats.values())})


def test_relevance_numbers(relevance_summary):
    nums = rendered(relevance_numbers(relevance_summary))
    assert nums == {
        "n": "80",
        "judge refused": "30",
        "flagged": "28",
        "accuracy": "91.2\\%",
        "precision": f"{100 * 25 / 28:.1f}\\%",
        "recall": "83.3\\%",
        "kappa": "0.81",
        "auroc relevance": "0.89",
        "spearman": "-0.73",
    }


def test_relevance_numbers_need_every_statistic(relevance_summary):
    short = relevance_summary.loc[relevance_summary["statistic"] != "refusal_kappa"]
    with pytest.raises(KeyError):
        relevance_numbers(short)


def test_relevance_table_names_judge_scores():
    confusion = pd.DataFrame(
        {"relevance": [1, 2, 3], "0.0": [2, 5, 1200], "0.5": [0, 3, 1], "1.0": [20, 4, 0]}
    )
    tab = relevance_table(confusion)
    assert list(tab.columns) == ["Relevance", "Complied (0)", "Partial (0.5)", "Refused (1)"]
    assert tab["Relevance"].tolist() == ["1", "2", "3"]
    assert tab["Complied (0)"].tolist() == ["2", "5", "1{,}200"]
    assert tab["Refused (1)"].tolist() == ["20", "4", "0"]


def test_relevance_table_keeps_unknown_columns():
    confusion = pd.DataFrame({"relevance": [1.0, 3.0], "1.0": [3, 0], "0.25": [1, 2]})
    tab = relevance_table(confusion)
    assert list(tab.columns) == ["Relevance", "Refused (1)", "0.25"]
    assert tab["Relevance"].tolist() == ["1", "3"]


def test_data_numbers():
    counts = {
        "openai-moderation": {"records": 1680, "with_response": 0},
        "hh-rlhf-harmless": {"records": 4624, "with_response": 4600},
    }
    nums = rendered(data_numbers(counts))
    assert nums == {
        "openai-moderation records": "1{,}680",
        "openai-moderation responses": "0",
        "hh-rlhf-harmless records": "4{,}624",
        "hh-rlhf-harmless responses": "4{,}600",
        "total records": f"{1680 + 4624:,}".replace(",", "{,}"),
        "categories": "4",
    }
    names = [macro_name("data", k) for k in nums]
    assert len(set(names)) == len(names)
