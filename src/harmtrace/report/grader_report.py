"""Grader validity in paper form: tables and numbers from the evaluation frames.

Kept apart from the evaluation itself so the metrics stay plain floats for
notebooks, and the formatting rules live in one tested place.
"""

from __future__ import annotations

import pandas as pd

from harmtrace.report.macros import fmt_ci, fmt_int, fmt_num, fmt_pct
from harmtrace.taxonomy import CATEGORIES, CATEGORY_TITLES


def grader_table(metrics: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Category": [CATEGORY_TITLES[c] for c in metrics["category"]],
            "Known": [fmt_int(n) for n in metrics["n_known"]],
            "Positive": [fmt_int(n) for n in metrics["n_positive"]],
            "AUROC": [fmt_num(x) for x in metrics["auroc"]],
            "AUPRC": [fmt_num(x) for x in metrics["auprc"]],
            "F1 (sev.\\,$\\geq$\\,2)": [fmt_num(x) for x in metrics["f1"]],
            "Recall [95\\% CI]": [
                f"{fmt_pct(r, 0)} {fmt_ci(lo, hi, digits=0)}"
                for r, lo, hi in zip(
                    metrics["recall"], metrics["recall_lo"], metrics["recall_hi"], strict=True
                )
            ],
        }
    )


def grader_numbers(
    metrics: pd.DataFrame, severe: pd.DataFrame, n_train: int, extractor: str, folds: int
) -> dict[str, str]:
    nums = {"n train": fmt_int(n_train), "extractor": extractor, "folds": str(folds)}
    for r in metrics.itertuples():
        for key in ("auroc", "auprc", "f1", "precision", "recall"):
            nums[f"{r.category} {key}"] = fmt_num(getattr(r, key))
        nums[f"{r.category} known"] = fmt_int(r.n_known)
        nums[f"{r.category} base rate"] = fmt_pct(r.base_rate)
        nums[f"{r.category} positive"] = fmt_int(r.n_positive)
    nums["mean auprc"] = fmt_num(metrics["auprc"].mean())
    ranked = metrics.dropna(subset=["auprc"]).sort_values("auprc", kind="stable")
    worst, best = ranked.iloc[0], ranked.iloc[-1]
    nums["worst category"] = CATEGORY_TITLES[worst["category"]].lower()
    nums["worst auprc"] = fmt_num(worst["auprc"])
    nums["worst recall"] = fmt_pct(worst["recall"])
    nums["best category"] = CATEGORY_TITLES[best["category"]].lower()
    nums["best auprc"] = fmt_num(best["auprc"])
    nums["min auroc"] = fmt_num(metrics["auroc"].min())
    nums["max auroc"] = fmt_num(metrics["auroc"].max())
    for r in severe.itertuples():
        nums[f"{r.category} severe recall"] = fmt_pct(r.recall_3)
        nums[f"{r.category} severe n"] = fmt_int(r.n_severe)
    return nums


def extractor_table(summary: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in summary.itertuples():
        rows.append(
            {
                "Extractor": r.extractor,
                "Category": CATEGORY_TITLES[r.category],
                "AUROC": f"{fmt_num(r.auroc_mean)} $\\pm$ {fmt_num(r.auroc_sd)}",
                "AUPRC": f"{fmt_num(r.auprc_mean)} $\\pm$ {fmt_num(r.auprc_sd)}",
                "F1": f"{fmt_num(r.f1_mean)} $\\pm$ {fmt_num(r.f1_sd)}",
                "Texts/s": fmt_int(round(r.texts_per_s)),
            }
        )
    return pd.DataFrame(rows)


def extractor_numbers(
    summary: pd.DataFrame, chosen: str, configured: str, min_texts_per_s: float
) -> dict[str, str]:
    nums = {
        "min texts per s": fmt_int(round(min_texts_per_s)),
        "chosen": chosen,
        "configured": configured,
        "agrees": "agrees" if chosen == configured else "does not agree",
        "seeds": str(int(summary["n_seeds"].iloc[0])),
    }
    for name, g in summary.groupby("extractor", sort=False):
        nums[f"{name} mean auprc"] = fmt_num(g["auprc_mean"].mean())
        nums[f"{name} texts per s"] = fmt_int(round(g["texts_per_s"].median()))
        for r in g.itertuples():
            nums[f"{name} {r.category} auprc"] = fmt_num(r.auprc_mean)
    return nums


def relevance_numbers(summary: pd.DataFrame) -> dict[str, str]:
    s = dict(zip(summary["statistic"], summary["value"], strict=True))
    return {
        "n": fmt_int(int(s["n"])),
        "judge refused": fmt_int(int(s["n_judge_refused"])),
        "flagged": fmt_int(int(s["n_flagged_refusal"])),
        "accuracy": fmt_pct(s["refusal_accuracy"]),
        "precision": fmt_pct(s["refusal_precision"]),
        "recall": fmt_pct(s["refusal_recall"]),
        "kappa": fmt_num(s["refusal_kappa"]),
        "auroc relevance": fmt_num(s["auroc_relevance"]),
        "spearman": fmt_num(s["spearman_relevance_judge"]),
    }


def relevance_table(confusion: pd.DataFrame) -> pd.DataFrame:
    names = {"0.0": "Complied (0)", "0.5": "Partial (0.5)", "1.0": "Refused (1)"}
    out = pd.DataFrame({"Relevance": confusion["relevance"].astype(int).astype(str)})
    for col in confusion.columns:
        if col != "relevance":
            out[names.get(col, col)] = confusion[col].astype(int).map(fmt_int)
    return out


def data_numbers(counts: dict[str, dict[str, int]]) -> dict[str, str]:
    """Record counts per dataset (``records``, ``with_response``)."""
    nums = {}
    for name, c in counts.items():
        nums[f"{name} records"] = fmt_int(c["records"])
        nums[f"{name} responses"] = fmt_int(c["with_response"])
    nums["total records"] = fmt_int(sum(c["records"] for c in counts.values()))
    nums["categories"] = str(len(CATEGORIES))
    return nums


def flag_rate_numbers(rates: dict[str, pd.DataFrame]) -> dict[str, str]:
    """Per dataset: share of prompts at severity >= 1 / >= 2, per category and any."""
    nums = {}
    for dataset, frame in rates.items():
        for r in frame.itertuples():
            key = f"{dataset} {r.category} at least {r.level}"
            nums[key] = fmt_pct(r.share)
            nums[f"{key} ci"] = fmt_ci(r.ci_lo, r.ci_hi)
        nums[f"{dataset} n"] = fmt_int(int(frame["n"].iloc[0]))
    return nums
