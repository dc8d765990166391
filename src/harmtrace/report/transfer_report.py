"""Transfer evaluation of the embedded grader in paper form (numbers and a LaTeX table).

Out-of-source (leave-one-source-out) figures are shown next to in-source (out-of-fold)
ones, never alone, so a reader sees how much of the in-sample figure survives a new
source.
"""

from __future__ import annotations

import math

import pandas as pd

from harmtrace.report.latex import stack, to_booktabs
from harmtrace.report.macros import Number, ci, count, fmt_num, fmt_pct, pct, real, text


def transfer_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per source: AUROC (harm score, then highest category), F1, FPR and category
    AUROC, in-source / out-of-source."""
    wide = metrics.pivot(index="dataset", columns="evaluation")
    rows = []
    for source in wide.index:
        r = wide.loc[source]

        def pair(col: str, as_pct: bool = False, r: pd.Series = r) -> str:
            # plain '%': the LaTeX writer escapes cells from data
            f = (lambda v: fmt_pct(v, 0).replace("\\%", "%")) if as_pct else fmt_num
            vals = [r.get((col, e), float("nan")) for e in ("oof", "loso")]
            return " / ".join(f(float(v)) for v in vals)

        n_pos = r.get(("n_positive", "loso"), r.get(("n_positive", "oof")))
        kind = r.get(("positives", "loso"), r.get(("positives", "oof")))
        rows.append(
            {
                "Source": str(source),
                "Positives": f"{int(n_pos):,}" + ("*" if kind == "harmful, any category" else ""),
                "AUROC": pair("auroc"),
                "AUROC, categories": pair("auroc_categories"),
                "F1 (severity 2+)": pair("f1"),
                "FPR benign": pair("fpr", as_pct=True),
                "Category AUROC": pair("category_auroc"),
            }
        )
    return pd.DataFrame(rows)


TRANSFER_HEADERS = {
    "AUROC, categories": stack("AUROC,", "categories"),
    "F1 (severity 2+)": stack("F1", "(severity 2+)"),
    "FPR benign": stack("FPR", "benign"),
    "Category AUROC": stack("Category", "AUROC"),
}
"""The transfer table's long headers on two lines (the same words), so it fits at
``\\small``."""


def transfer_table_tex(table: pd.DataFrame) -> str:
    """:func:`transfer_table` as booktabs text that fits the text width at ``\\small``."""
    return to_booktabs(table, align="l" + "r" * (table.shape[1] - 1), headers=TRANSFER_HEADERS)


TARGET_AUROC = 0.85
"""Leave-one-source-out prompt-level AUROC the grader should reach on every source."""
TARGET_HARM_WORD_FPR = 0.10
"""Largest acceptable share of benign prompts with harm words flagged at severity >= 2."""


def transfer_numbers(
    metrics: pd.DataFrame,
    harm_word_source: str | None = None,
    target_auroc: float = TARGET_AUROC,
    target_fpr: float = TARGET_HARM_WORD_FPR,
) -> dict[str, Number]:
    """Per source and evaluation: auroc, f1, fpr, category auroc; the worst out-of-source
    AUROC; the FPR on the benign-with-harm-words source; and whether targets are met."""
    nums: dict[str, Number] = {}
    for r in metrics.itertuples():
        key = f"{r.evaluation} {r.dataset}"
        for col in ("auroc", "auroc_categories", "f1", "category_auroc", "recall"):
            v = float(getattr(r, col, float("nan")))
            if math.isfinite(v):
                nums[f"{key} {col}"] = real(v)
        if math.isfinite(float(r.fpr)):
            nums[f"{key} fpr"] = pct(float(r.fpr))
        nums[f"{key} positives"] = count(int(r.n_positive))
    loso = metrics[metrics["evaluation"] == "loso"].dropna(subset=["auroc"])
    oof = metrics[metrics["evaluation"] == "oof"].dropna(subset=["auroc"])
    if len(oof):
        nums["oof min auroc"] = real(float(oof["auroc"].min()))
    if len(loso):
        worst = loso.sort_values("auroc", kind="stable").iloc[0]
        nums["loso min auroc"] = real(float(worst["auroc"]))
        nums["loso min auroc source"] = text(str(worst["dataset"]))
        met = bool((loso["auroc"] >= target_auroc).all())
        nums["loso auroc target"] = real(target_auroc)
        nums["loso auroc target met"] = text("met" if met else "not met")
        nums["loso sources"] = count(len(loso))
        nums["loso sources at target"] = count(int((loso["auroc"] >= target_auroc).sum()))
        if "auroc_categories" in loso:
            cats = loso["auroc_categories"].astype(float)
            nums["loso sources at target categories"] = count(int((cats >= target_auroc).sum()))
    if harm_word_source is not None:
        nums["harm word source"] = text(harm_word_source)
        nums["harm word fpr target"] = pct(target_fpr, 0)
        for evaluation, key in (("loso", "harm word fpr"), ("oof", "harm word fpr insource")):
            row = metrics[
                (metrics["evaluation"] == evaluation) & (metrics["dataset"] == harm_word_source)
            ]
            if len(row) and math.isfinite(float(row["fpr"].iloc[0])):
                fpr = float(row["fpr"].iloc[0])
                nums[key] = pct(fpr)
                nums[f"{key} target met"] = text("met" if fpr <= target_fpr else "not met")
    return nums


def _f(value: object) -> float:
    """A metric as a float, missing (pd.NA) as NaN."""
    return float("nan") if pd.isna(value) else float(value)


REFUSAL_EVALUATIONS = {"oof": "in source", "loso": "out of source", "deployed": "deployed"}
"""Refusal-transfer evaluations (:mod:`harmtrace.graders.refusal_transfer`) in table order."""


def refusal_transfer_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per source: responses, refusals, then kappa [CI] per evaluation."""
    rows = []
    for source, g in metrics.groupby("dataset", sort=True):
        row = {
            "Source": str(source),
            "Responses": f"{int(g['n'].iloc[0]):,}",
            "Refusals": f"{int(g['n_refused'].iloc[0]):,}",
        }
        for evaluation, label in REFUSAL_EVALUATIONS.items():
            r = g[g["evaluation"] == evaluation]
            if not len(r):
                continue
            r = r.iloc[0]
            row[f"{label.capitalize()} $\\kappa$ [CI]"] = (
                f"{fmt_num(_f(r['kappa']))} [{fmt_num(_f(r['kappa_lo']))}, "
                f"{fmt_num(_f(r['kappa_hi']))}]"
            )
        rows.append(row)
    return pd.DataFrame(rows)


def refusal_transfer_numbers(metrics: pd.DataFrame) -> dict[str, Number]:
    """``refusal <evaluation> <source> kappa|kappa ci|recall|fpr|trained on``, counts."""
    nums: dict[str, Number] = {"refusal sources": count(metrics["dataset"].nunique())}
    for r in metrics.to_dict("records"):
        key = f"refusal {r['evaluation']} {r['dataset']}"
        nums[f"refusal {r['dataset']} responses"] = count(int(r["n"]))
        nums[f"refusal {r['dataset']} refused"] = count(int(r["n_refused"]))
        nums[f"{key} trained on"] = text(str(r["trained_on"]))
        if math.isfinite(_f(r["kappa"])):
            nums[f"{key} kappa"] = real(_f(r["kappa"]))
            nums[f"{key} kappa ci"] = ci(_f(r["kappa_lo"]), _f(r["kappa_hi"]), pct=False, digits=2)
        for col, name in (("recall", "recall"), ("false_positive_rate", "fpr")):
            v = _f(r[col])
            if math.isfinite(v):
                nums[f"{key} {name}"] = pct(v)
    return nums
