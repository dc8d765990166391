"""The category-asymmetry strand (notebook 02) in paper form: booktabs tables of rates,
ratios and the clustered logistic regression.

:mod:`harmtrace.analysis.asymmetry` computes; this module only formats. Cells are
formatted LaTeX already (written raw); labels from data and the words a result gives
instead of a value (its ``note``) are escaped once, through :mod:`harmtrace.report.latex`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from harmtrace.analysis.asymmetry import SampleAsymmetry
from harmtrace.report.latex import escape, stack, to_booktabs
from harmtrace.report.macros import fmt_ci, fmt_int, fmt_num, fmt_p, fmt_pct
from harmtrace.taxonomy import CATEGORIES, CATEGORY_TITLES


def _title(cat: str) -> str:
    return CATEGORY_TITLES.get(cat, cat.capitalize())


def rates_table(results: Mapping[str, SampleAsymmetry], labels: Mapping[str, str]) -> pd.DataFrame:
    """Sample x category: failure, persistence (prompt > 0) and drift up (prompt = 0)."""
    rows = []
    for sample, res in results.items():
        r = res.rates.set_index(["category", "metric"])
        for cat in (*CATEGORIES, "pooled"):
            if (cat, "failure") not in r.index:
                continue
            row = {"Sample": labels.get(sample, sample), "Category": _title(cat)}
            row["Non-zero prompts"] = fmt_int(int(r.loc[(cat, "failure"), "n"]))
            for metric, name in (
                ("failure", "Failure"),
                ("persistence", "Persistence"),
                ("drift_up", "Drift up"),
            ):
                x = r.loc[(cat, metric)]
                row[name] = (
                    f"{fmt_pct(x['share'])} {fmt_ci(x['ci_lo'], x['ci_hi'])}" if x["n"] else "n/a"
                )
            rows.append(row)
    return pd.DataFrame(rows)


def ratios_table(results: Mapping[str, SampleAsymmetry], labels: Mapping[str, str]) -> pd.DataFrame:
    """Sample x rate x comparison: the ratio with its cluster-bootstrap interval, or why not."""
    rows = []
    for sample, res in results.items():
        for r in res.ratios.itertuples():
            rows.append(
                {
                    "Sample": labels.get(sample, sample),
                    "Rate": r.metric.capitalize(),
                    "Comparison": f"{_title(r.numerator)} / {_title(r.denominator)}",
                    "Cells": f"{fmt_int(r.n_num)} / {fmt_int(r.n_den)}",
                    "Ratio [CI]": escape(r.note)
                    or (f"{fmt_num(r.ratio)} {fmt_ci(r.ci_lo, r.ci_hi, pct=False, digits=2)}"),
                }
            )
    return pd.DataFrame(rows)


def logit_table(results: Mapping[str, SampleAsymmetry], labels: Mapping[str, str]) -> pd.DataFrame:
    """Sample x category contrast of the de-escalation logit: odds ratio and Holm p."""
    rows = []
    for sample, res in results.items():
        lg = res.logit
        if lg is None:
            continue
        if not lg.estimable:
            rows.append(
                {
                    "Sample": labels.get(sample, sample),
                    "Contrast": "",
                    "Odds ratio [CI]": escape(lg.note),
                    "Holm p": "",
                }
            )
            continue
        for r in lg.contrasts.itertuples():
            rows.append(
                {
                    "Sample": labels.get(sample, sample),
                    "Contrast": f"{_title(r.level_a)} vs {_title(r.level_b)}",
                    "Odds ratio [CI]": f"{fmt_num(r.odds_ratio)} "
                    f"{fmt_ci(r.or_lo, r.or_hi, pct=False, digits=2)}",
                    "Holm p": fmt_p(r.p_holm),
                }
            )
    return pd.DataFrame(rows)


NOTE_WIDTH = 40
"""Characters per line of the words a logit gives instead of odds ratios (a separation
note), so the note wraps inside its column instead of running past the page."""


def asymmetry_tex(name: str, frame: pd.DataFrame) -> str:
    """One table's booktabs text, laid out to fit the text width at ``\\small``: rates and
    logit in one block per sample (its label written once, above its rows), the rates'
    count header on two lines, a long logit note wrapped."""
    if name == "rates":
        return to_booktabs(
            frame,
            align="lrlll",
            raw_columns=("Failure", "Persistence", "Drift up", "Non-zero prompts"),
            headers={"Non-zero prompts": stack("Non-zero", "prompts")},
            group_by="Sample",
        )
    if name == "ratios":
        return to_booktabs(frame, align="lllrl", raw_columns=("Cells", "Ratio [CI]"))
    if name == "logit":
        return to_booktabs(
            frame,
            align="llr",
            raw_columns=("Odds ratio [CI]", "Holm p"),
            wrap_columns={"Odds ratio [CI]": NOTE_WIDTH},
            group_by="Sample",
        )
    raise ValueError(f"no asymmetry table {name!r}")


def write_asymmetry_tables(
    results: Mapping[str, SampleAsymmetry],
    labels: Mapping[str, str],
    tables_dir: Path,
    producer: str,
) -> list[Path]:
    """Booktabs tables; labels from data are escaped, formatted numbers are LaTeX."""
    frames = {
        "rates": rates_table(results, labels),
        "ratios": ratios_table(results, labels),
        "logit": logit_table(results, labels),
    }
    paths = []
    Path(tables_dir).mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        path = Path(tables_dir) / f"{producer}--{name}.tex"
        path.write_text(asymmetry_tex(name, frame), encoding="utf-8")
        paths.append(path)
    return paths
