"""The grader-validity strand (notebook 04) in paper form: booktabs tables of the
moderation-label metrics, the preference agreement and the detection asymmetry.

:mod:`harmtrace.analysis.validity` computes; this module only formats. Cells and the
headers holding math are formatted LaTeX already (written raw); dataset labels and the
words a check gives instead of a value (its ``note``) are escaped once, through
:mod:`harmtrace.report.latex`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

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
    }
    return write_tables(frames, tables_dir, producer)
