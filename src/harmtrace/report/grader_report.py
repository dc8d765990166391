"""Grader validity in paper form: tables and numbers from the evaluation frames.

Kept apart from the evaluation itself so the metrics stay plain floats for
notebooks, and the formatting rules live in one tested place.
"""

from __future__ import annotations

import pandas as pd

from harmtrace.report.macros import (
    Number,
    ci,
    count,
    fmt_ci,
    fmt_int,
    fmt_num,
    fmt_pct,
    pct,
    real,
    text,
)
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


AUPRC_TARGETS: dict[str, float] = {
    "hate": 0.75,
    "sexual": 0.95,
    "violence": 0.55,
    "self_harm": 0.75,
}
"""Out-of-fold AUPRC on the moderation set the grader should reach (issue 12)."""


def grader_numbers(
    metrics: pd.DataFrame, severe: pd.DataFrame, n_train: int, extractor: str, folds: int
) -> dict[str, Number]:
    nums = {"n train": count(n_train), "extractor": text(extractor), "folds": count(folds)}
    met = 0
    for r in metrics.itertuples():
        for key in ("auroc", "auprc", "f1", "precision", "recall"):
            nums[f"{r.category} {key}"] = real(getattr(r, key))
        if r.category in AUPRC_TARGETS:
            target = AUPRC_TARGETS[r.category]
            nums[f"{r.category} auprc target"] = real(target)
            reached = bool(r.auprc >= target)
            met += reached
            nums[f"{r.category} auprc target met"] = text("met" if reached else "not met")
        nums[f"{r.category} known"] = count(r.n_known)
        nums[f"{r.category} base rate"] = pct(r.base_rate)
        nums[f"{r.category} positive"] = count(r.n_positive)
    nums["auprc targets met"] = count(met)
    nums["mean auprc"] = real(metrics["auprc"].mean())
    ranked = metrics.dropna(subset=["auprc"]).sort_values("auprc", kind="stable")
    worst, best = ranked.iloc[0], ranked.iloc[-1]
    nums["worst category"] = text(CATEGORY_TITLES[worst["category"]].lower())
    nums["worst auprc"] = real(worst["auprc"])
    nums["worst recall"] = pct(worst["recall"])
    nums["best category"] = text(CATEGORY_TITLES[best["category"]].lower())
    nums["best auprc"] = real(best["auprc"])
    nums["min auroc"] = real(metrics["auroc"].min())
    nums["max auroc"] = real(metrics["auroc"].max())
    for r in severe.itertuples():
        nums[f"{r.category} severe recall"] = pct(r.recall_3)
        nums[f"{r.category} severe n"] = count(r.n_severe)
    return nums


def extractor_table(summary: pd.DataFrame, loso: pd.DataFrame) -> pd.DataFrame:
    """One row per extractor: out-of-fold AUPRC per category on the moderation texts (mean
    over fold seeds; sd only when there are several) and the leave-one-source-out
    AUROC of the harm head, mean and lowest over the held-out prompt sources."""
    several = int(summary["n_seeds"].max()) > 1
    auroc = loso.groupby("extractor", sort=False)["auroc"]
    rows = []
    for name, g in summary.groupby("extractor", sort=False):
        row = {"Extractor": f"\\texttt{{{name}}}"}
        for r in g.itertuples():
            cell = fmt_num(r.auprc_mean)
            if several:
                cell += f" $\\pm$ {fmt_num(r.auprc_sd)}"
            row[CATEGORY_TITLES[r.category]] = cell
        means, lows = auroc.mean(), auroc.min()
        row["LOSO mean"] = fmt_num(means[name]) if name in means else "--"
        row["LOSO lowest"] = fmt_num(lows[name]) if name in lows else "--"
        rows.append(row)
    return pd.DataFrame(rows)


def extractor_numbers(
    summary: pd.DataFrame, loso: pd.DataFrame, chosen: str, configured: str
) -> dict[str, Number]:
    nums = {
        "chosen": text(chosen),
        "configured": text(configured),
        "agrees": text("agrees" if chosen == configured else "does not agree"),
        "seeds": count(int(summary["n_seeds"].iloc[0])),
        "loso sources": count(int(loso.dropna(subset=["auroc"])["dataset"].nunique())),
    }
    for name, g in summary.groupby("extractor", sort=False):
        nums[f"{name} mean auprc"] = real(g["auprc_mean"].mean())
        for r in g.itertuples():
            nums[f"{name} {r.category} auprc"] = real(r.auprc_mean)
    for name, g in loso.groupby("extractor", sort=False):
        nums[f"{name} loso auroc"] = real(g["auroc"].mean())
        nums[f"{name} loso lowest"] = real(g["auroc"].min())
    return nums


def relevance_numbers(summary: pd.DataFrame) -> dict[str, Number]:
    """Relevance and refusal against the AIR-Bench judge (out of sample for the detector)."""
    s = dict(zip(summary["statistic"], summary["value"], strict=True))
    return {
        "n": count(int(s["n"])),
        "judge refused": count(int(s["n_judge_refused"])),
        "flagged": count(int(s["n_flagged_refusal"])),
        "accuracy": pct(s["refusal_accuracy"]),
        "precision": pct(s["refusal_precision"]),
        "recall": pct(s["refusal_recall"]),
        "kappa": real(s["refusal_kappa"]),
        "auroc relevance": real(s["auroc_relevance"]),
        "spearman": real(s["spearman_relevance_judge"]),
    }


REFUSAL_STATS: tuple[tuple[str, str], ...] = (
    ("n", "Responses"),
    ("n_refused", "Refusals (reference)"),
    ("n_flagged", "Flagged"),
    ("kappa", "Cohen's $\\kappa$"),
    ("precision", "Precision"),
    ("recall", "Recall"),
    ("false_positive_rate", "False-positive rate"),
    ("auroc", "AUROC (probability)"),
)
"""Rows of the refusal table and the statistics behind them."""


def refusal_numbers(in_source: dict, test: dict, detector: dict) -> dict[str, Number]:
    """The refusal detector in source (out-of-fold on its labelled responses) and out of
    sample (the AIR-Bench judge), kept apart; ``detector`` is its ``params()``."""
    nums: dict[str, Number] = {
        "lexicon strings": count(detector["n_substrings"] + detector["n_prefixes"]),
        "exemplars": count(detector["n_exemplars"]),
        "folds": count(detector["n_splits"]),
        "threshold": real(detector["threshold"]),
        "labelled source": text(", ".join(detector["training"]["labelled"])),
        "lexicon source": text(", ".join(detector["training"]["lexicon"])),
    }
    for label, stats in (("insource", in_source), ("test", test)):
        for key in ("n", "n_refused", "n_flagged"):
            nums[f"{label} {key.replace('_', ' ')}"] = count(int(stats[key]))
        for key in ("precision", "recall", "false_positive_rate", "accuracy"):
            nums[f"{label} {key.replace('_', ' ')}"] = pct(stats[key])
        nums[f"{label} kappa"] = real(stats["kappa"])
        nums[f"{label} auroc"] = real(stats["auroc"])
    return nums


def refusal_frame(in_source: dict, test: dict, in_source_name: str, test_name: str) -> pd.DataFrame:
    """One row per statistic; columns in source and out of sample (cells and headers are
    LaTeX; the dataset names in the headers are escaped here)."""
    from harmtrace.report.latex import escape

    def cell(stats: dict, key: str) -> str:
        value = stats[key]
        if key.startswith("n"):
            return fmt_int(int(value))
        if key in ("kappa", "auroc"):
            return fmt_num(value)
        return fmt_pct(value, 0)

    return pd.DataFrame(
        {
            "Statistic": [title for _, title in REFUSAL_STATS],
            f"In source ({escape(in_source_name)}, out-of-fold)": [
                cell(in_source, k) for k, _ in REFUSAL_STATS
            ],
            f"Out of sample ({escape(test_name)})": [cell(test, k) for k, _ in REFUSAL_STATS],
        }
    )


def relevance_table(confusion: pd.DataFrame) -> pd.DataFrame:
    names = {"0.0": "Complied (0)", "0.5": "Partial (0.5)", "1.0": "Refused (1)"}
    out = pd.DataFrame({"Relevance": confusion["relevance"].astype(int).astype(str)})
    for col in confusion.columns:
        if col != "relevance":
            out[names.get(col, col)] = confusion[col].astype(int).map(fmt_int)
    return out


def data_numbers(counts: dict[str, dict[str, int]]) -> dict[str, Number]:
    """Record counts per dataset (``records``, ``with_response``)."""
    nums = {}
    for name, c in counts.items():
        nums[f"{name} records"] = count(c["records"])
        nums[f"{name} responses"] = count(c["with_response"])
    nums["total records"] = count(sum(c["records"] for c in counts.values()))
    nums["categories"] = count(len(CATEGORIES))
    return nums


def flag_rate_numbers(rates: dict[str, pd.DataFrame]) -> dict[str, Number]:
    """Per dataset: share of prompts at severity >= 1 / >= 2, per category and any."""
    nums = {}
    for dataset, frame in rates.items():
        for r in frame.itertuples():
            key = f"{dataset} {r.category} at least {r.level}"
            nums[key] = pct(r.share)
            nums[f"{key} ci"] = ci(r.ci_lo, r.ci_hi)
        nums[f"{dataset} n"] = count(int(frame["n"].iloc[0]))
    return nums
