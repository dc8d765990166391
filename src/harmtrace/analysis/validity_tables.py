"""The grader-validity strand (notebook 04) in paper form: booktabs tables of the
moderation-label metrics, the preference agreement, the detection asymmetry and the
agreement with a reference grader.

:mod:`harmtrace.analysis.validity` computes; this module only formats. Cells and the
headers holding math are formatted LaTeX already (written raw); dataset labels and the
words a check gives instead of a value (its ``note``) are escaped once, through
:mod:`harmtrace.report.latex`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from harmtrace.analysis.validity import DatasetValidity
from harmtrace.report.latex import escape, points, write_tables
from harmtrace.report.macros import fmt_ci, fmt_int, fmt_num, fmt_p, fmt_pct
from harmtrace.taxonomy import CATEGORY_TITLES


def _title(cat: str) -> str:
    return CATEGORY_TITLES.get(cat, cat.capitalize())


def moderation_table(
    results: Mapping[str, DatasetValidity], labels: Mapping[str, str]
) -> pd.DataFrame:
    """Dataset x category against moderation labels: AUROC, AUPRC, F1 and recall."""
    rows = []
    for dataset, res in results.items():
        if res.moderation is None:
            continue
        for r in res.moderation.itertuples():
            rows.append(
                {
                    "Dataset": labels.get(dataset, dataset),
                    "Category": _title(r.category),
                    "Known": fmt_int(r.n_known),
                    "Positive": fmt_int(r.n_positive),
                    "AUROC": fmt_num(r.auroc),
                    "AUPRC": fmt_num(r.auprc),
                    "F1": fmt_num(r.f1),
                    "Recall [CI]": f"{fmt_pct(r.recall_share, 0)} "
                    f"{fmt_ci(r.recall_ci_lo, r.recall_ci_hi, digits=0)}",
                }
            )
    cols = ["Dataset", "Category", "Known", "Positive", "AUROC", "AUPRC", "F1", "Recall [CI]"]
    return pd.DataFrame(rows, columns=cols)


def preference_table(
    results: Mapping[str, DatasetValidity], labels: Mapping[str, str]
) -> pd.DataFrame:
    """Dataset x category of preference pairs: rejected graded at least as severe as chosen."""
    rows = []
    for dataset, res in results.items():
        if res.preferences is None:
            continue
        for r in res.preferences.itertuples():
            rows.append(
                {
                    "Dataset": labels.get(dataset, dataset),
                    "Category": _title(r.category),
                    "Pairs": fmt_int(r.n_pairs),
                    "Rejected $\\geq$ chosen [CI]": (
                        f"{fmt_pct(r.at_least)} {fmt_ci(r.at_least_lo, r.at_least_hi)}"
                        if r.n_pairs
                        else "n/a"
                    ),
                    "Rejected $>$ chosen": fmt_pct(r.above) if r.n_pairs else "n/a",
                    "Tied": fmt_pct(r.tied) if r.n_pairs else "n/a",
                }
            )
    cols = [
        "Dataset",
        "Category",
        "Pairs",
        "Rejected $\\geq$ chosen [CI]",
        "Rejected $>$ chosen",
        "Tied",
    ]
    return pd.DataFrame(rows, columns=cols)


def detection_table(
    results: Mapping[str, DatasetValidity], labels: Mapping[str, str]
) -> pd.DataFrame:
    """Dataset x source of positives: prompt vs response sensitivity, paired difference."""
    rows = []
    for dataset, res in results.items():
        for name, det in (
            ("benchmark labels", res.detection),
            ("reference grader", res.reference_detection),
        ):
            if det is None:
                continue
            p, r = det["prompt"], det["response"]
            diff, lo, hi = det["diff"]
            rows.append(
                {
                    "Dataset": labels.get(dataset, dataset),
                    "Positives": name,
                    "Prompt sens.": f"{fmt_pct(p['share'])} ({fmt_int(p['k'])}/{fmt_int(p['n'])})"
                    if p["n"]
                    else "n/a",
                    "Response sens.": f"{fmt_pct(r['share'])} ({fmt_int(r['k'])}/{fmt_int(r['n'])})"
                    if r["n"]
                    else "n/a",
                    "Paired diff. [CI]": escape(det["note"])
                    or (f"{points(diff)} [{points(lo)}, {points(hi)}] pp"),
                    "McNemar p": fmt_p(det["mcnemar_p"]) if not det["note"] else "",
                }
            )
    cols = [
        "Dataset",
        "Positives",
        "Prompt sens.",
        "Response sens.",
        "Paired diff. [CI]",
        "McNemar p",
    ]
    return pd.DataFrame(rows, columns=cols)


RESPONSE_HARM_COLUMNS = (
    "Rated",
    "Harmful",
    "AUROC [CI]",
    "$\\rho$",
    "Recall",
    "FPR (0)",
    "Refused M+",
)
"""The response-harm table's value columns, written as LaTeX (after Dataset and Category)."""


def response_harm_table(
    results: Mapping[str, DatasetValidity], labels: Mapping[str, str]
) -> pd.DataFrame:
    """Dataset x rated category: the response-side reading against human harm ratings."""
    rows = []
    for dataset, res in results.items():
        if res.response_harm is None:
            continue
        for r in res.response_harm.to_dict("records"):
            rows.append(
                {
                    "Dataset": labels.get(dataset, dataset),
                    "Category": _title(r["category"]),
                    "Rated": fmt_int(r["n"]),
                    "Harmful": fmt_int(r["n_harmful"]),
                    "AUROC [CI]": f"{fmt_num(r['auroc'])} "
                    f"{fmt_ci(r['auroc_lo'], r['auroc_hi'], pct=False, digits=2)}",
                    "$\\rho$": fmt_num(r["spearman"]),
                    "Recall": fmt_pct(r["recall_share"], 0),
                    "FPR (0)": fmt_pct(r["fpr_share"], 0),
                    "Refused M+": f"{fmt_int(r['refused_k'])}/{fmt_int(r['refused_n'])}",
                }
            )
    return pd.DataFrame(rows, columns=["Dataset", "Category", *RESPONSE_HARM_COLUMNS])


def _kappa_cell(agr) -> str:
    if not np.isfinite(agr.kappa_quadratic):
        return escape(agr.note or "n/a")
    interval = fmt_ci(agr.kappa_lo, agr.kappa_hi, pct=False, digits=2)
    return f"{fmt_num(agr.kappa_quadratic)} {interval}"


def labelled_refusal_table(
    results: Mapping[str, DatasetValidity], labels: Mapping[str, str]
) -> pd.DataFrame:
    """Per dataset with human refusal labels: kappa of the flag and of relevance 1, and
    the labelled refusals graded Medium or higher."""
    rows = []
    for dataset, res in results.items():
        rf = res.labelled_refusal
        if rf is None:
            continue

        med = rf["labelled_medium_plus"]
        rows.append(
            {
                "Dataset": labels.get(dataset, dataset),
                "Responses": fmt_int(rf["n"]),
                "Refused": fmt_int(rf["labelled"]),
                "Flag $\\kappa$ [CI]": _kappa_cell(rf["flag"]),
                "Relevance 1 $\\kappa$ [CI]": _kappa_cell(rf["relevance_one"]),
                "Refused, Medium+ [CI]": f"{fmt_int(med['k'])} "
                f"({fmt_pct(med['share'], 1)}) {fmt_ci(med['ci_lo'], med['ci_hi'], digits=1)}",
            }
        )
    cols = [
        "Dataset",
        "Responses",
        "Refused",
        "Flag $\\kappa$ [CI]",
        "Relevance 1 $\\kappa$ [CI]",
        "Refused, Medium+ [CI]",
    ]
    return pd.DataFrame(rows, columns=cols)


REFERENCE_COLUMNS = ("Records", "Weighted $\\kappa$ [CI]", "Ordinal $\\alpha$ [CI]", "Exact")


def reference_table(
    results: Mapping[str, DatasetValidity], labels: Mapping[str, str]
) -> pd.DataFrame:
    """Per dataset, side and category (and relevance): agreement with the reference grader,
    the numbers the validity section cites for a study with human labels."""
    rows = []
    for dataset, res in results.items():
        if res.reference is None:
            continue
        for r in res.reference.itertuples():
            alpha = (
                f"{fmt_num(r.alpha_ordinal)} {fmt_ci(r.alpha_lo, r.alpha_hi, pct=False, digits=2)}"
                if np.isfinite(r.alpha_ordinal)
                else escape(r.note or "n/a")
            )
            rows.append(
                {
                    "Dataset": labels.get(dataset, dataset),
                    "Side": r.side.capitalize(),
                    "Category": _title(r.category),
                    "Records": fmt_int(int(r.n)),
                    REFERENCE_COLUMNS[1]: _kappa_cell(r),
                    REFERENCE_COLUMNS[2]: alpha,
                    "Exact": fmt_pct(r.exact) if np.isfinite(r.exact) else "n/a",
                }
            )
    return pd.DataFrame(rows, columns=["Dataset", "Side", "Category", *REFERENCE_COLUMNS])


def write_validity_tables(
    results: Mapping[str, DatasetValidity],
    labels: Mapping[str, str],
    tables_dir: Path,
    producer: str,
) -> list[Path]:
    """Booktabs tables; dataset labels are escaped, formatted numbers are LaTeX."""
    frames = {
        "moderation": (
            moderation_table(results, labels),
            ("Known", "Positive", "AUROC", "AUPRC", "F1", "Recall [CI]"),
            "llrrrrrl",
        ),
        "preferences": (
            preference_table(results, labels),
            ("Pairs", "Rejected $\\geq$ chosen [CI]", "Rejected $>$ chosen", "Tied"),
            "llrlrr",
        ),
        "detection": (
            detection_table(results, labels),
            ("Prompt sens.", "Response sens.", "Paired diff. [CI]", "McNemar p"),
            "llllll",
        ),
        "response_harm": (
            response_harm_table(results, labels),
            RESPONSE_HARM_COLUMNS,
            "llrrlrrrr",
        ),
        "labelled_refusal": (
            labelled_refusal_table(results, labels),
            (
                "Responses",
                "Refused",
                "Flag $\\kappa$ [CI]",
                "Relevance 1 $\\kappa$ [CI]",
                "Refused, Medium+ [CI]",
            ),
            "lrrlll",
        ),
    }
    if any(res.reference is not None for res in results.values()):
        frames["reference"] = (reference_table(results, labels), REFERENCE_COLUMNS, "llllrll")
    return write_tables(frames, tables_dir, producer)
