"""The relevance strand (notebook 03) in paper form: booktabs tables of relevance by
response severity and of the compliance-escalations.

:mod:`harmtrace.analysis.relevance` computes; this module only formats. Cells are
formatted LaTeX already (written raw); sample labels are escaped once, by
:func:`harmtrace.report.latex.to_booktabs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from harmtrace.analysis.relevance import SampleRelevance
from harmtrace.report.latex import write_tables
from harmtrace.report.macros import fmt_ci, fmt_int, fmt_pct
from harmtrace.taxonomy import RELEVANCE_LEVELS, SEVERITY_NAMES


def relevance_table(
    results: Mapping[str, SampleRelevance], labels: Mapping[str, str]
) -> pd.DataFrame:
    """Sample x response severity: n, relevance 1/2/3 shares, relevance-3 CI."""
    rows = []
    for sample, res in results.items():
        for r in res.by_severity.itertuples():
            row = {
                "Sample": labels.get(sample, sample),
                "Severity": SEVERITY_NAMES[int(r.level)],
                "n": fmt_int(int(r.n)),
            }
            for level in RELEVANCE_LEVELS:
                row[f"Rel. {level}"] = fmt_pct(getattr(r, f"rel{level}") / r.n) if r.n else "n/a"
            row["Rel. 3 CI"] = fmt_ci(r.ci_lo, r.ci_hi) if r.n else "n/a"
            rows.append(row)
    cols = ["Sample", "Severity", "n", *[f"Rel. {lv}" for lv in RELEVANCE_LEVELS], "Rel. 3 CI"]
    return pd.DataFrame(rows, columns=cols)


def compliance_table(
    results: Mapping[str, SampleRelevance], labels: Mapping[str, str]
) -> pd.DataFrame:
    """Per sample: compliance-escalation cells, their records, and those records' relevance."""
    rows = []
    for sample, res in results.items():
        c = res.compliance
        row = {
            "Sample": labels.get(sample, sample),
            "Cells": fmt_int(int(c["cells"])),
            "Records": fmt_int(int(c["records"])),
        }
        for level in RELEVANCE_LEVELS:
            row[f"Rel. {level}"] = (
                fmt_pct(c[f"rel{level}"] / c["records"]) if c["records"] else "n/a"
            )
        rows.append(row)
    cols = ["Sample", "Cells", "Records", *[f"Rel. {lv}" for lv in RELEVANCE_LEVELS]]
    return pd.DataFrame(rows, columns=cols)


def write_relevance_tables(
    results: Mapping[str, SampleRelevance],
    labels: Mapping[str, str],
    tables_dir: Path,
    producer: str,
) -> list[Path]:
    """Booktabs tables; sample labels are escaped, formatted numbers are LaTeX."""
    rel_raw = ("n", *[f"Rel. {lv}" for lv in RELEVANCE_LEVELS], "Rel. 3 CI")
    frames = {
        "by_severity": (relevance_table(results, labels), rel_raw, "llrrrrl"),
        "compliance": (
            compliance_table(results, labels),
            ("Cells", "Records", *[f"Rel. {lv}" for lv in RELEVANCE_LEVELS]),
            "lrrrrr",
        ),
    }
    return write_tables(frames, tables_dir, producer)
