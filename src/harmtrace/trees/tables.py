"""The harm-benefit strand (notebook 05) in paper form: the prompt-harmfulness F1 table
in the layout of SafetyAnalyst's Table 1, the fitted weights and the steering rates.

:mod:`harmtrace.trees.evaluation` and :mod:`harmtrace.trees.report` compute the scores,
weights and rates; this module only formats them. Text from data or config (system
names, labels) is escaped once, through :mod:`harmtrace.report.latex`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from harmtrace.report.latex import escape, stack, wrap
from harmtrace.report.macros import real, render
from harmtrace.trees.evaluation import F1, RUN_HERE, Cited, cited_f1
from harmtrace.trees.report import Evaluation, harmful_results

NOT_RUN = "not run"
"""What a cell of the F1 table says for a dataset not available here."""
TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("simplesafetytests", "SimpST"),
    ("harmbench", "HarmBench"),
    ("wildguardtest_vanilla", "WGT Vani."),
    ("wildguardtest_adversarial", "WGT Adv."),
    ("air-bench", "AIR-Bench"),
    ("sorry-bench", "SORRY-Bench"),
    ("average", "Average"),
)
"""Columns of the seed's table: key, header."""


def f1_table(
    results: Mapping[str, Mapping[str, F1]],
    cited: Cited | None = None,
    labels: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The seed's table with this project's rows appended.

    A frame of cells (numbers rendered from :class:`~harmtrace.report.macros.Number`
    values, "not run" where a dataset is not available here, "--" where the paper has
    none); ``labels`` maps short system ids to the names shown. A final column gives the
    mean over the three sets run here, for every row that has all three. The numbers
    behind our cells are :func:`harmtrace.trees.evaluation.f1_numbers`.
    """
    cited = cited or cited_f1()
    rows = []
    here = list(RUN_HERE)

    def cell(v: float | None) -> str:
        return "--" if v is None else render(real(v, 1))

    for system, vals in cited.rows.items():
        row = {"System": system, "Source": "cited"}
        row |= {head: cell(vals.get(key)) for key, head in TABLE_COLUMNS}
        have = [vals[k] for k in here if vals.get(k) is not None]
        row["Avg. (3 run here)"] = cell(float(np.mean(have))) if len(have) == len(here) else "--"
        rows.append(row)
    for system, by_ds in results.items():
        row = {"System": (labels or {}).get(system, system), "Source": "this work"}
        vals = []
        for key, head in TABLE_COLUMNS:
            ds = RUN_HERE.get(key)
            if ds is not None and ds in by_ds:
                f1 = 100 * by_ds[ds].f1
                row[head] = render(real(f1, 1))
                vals.append(f1)
            elif key == "average":
                row[head] = "--"
            else:
                row[head] = NOT_RUN
        if len(vals) == len(here):
            row["Avg. (3 run here)"] = render(real(float(np.mean(vals)), 1))
        else:
            row["Avg. (3 run here)"] = "--"
        rows.append(row)
    return pd.DataFrame(rows)


SYSTEM_WIDTH = 20
"""Characters per line of a system name in the F1 table; a longer one (this work's rows)
wraps, so the table's nine columns fit the text width at ``\\small``."""


def f1_table_tex(frame: pd.DataFrame) -> str:
    """The seed's table form: WildGuardTest spans its vanilla and adversarial columns.

    Laid out to fit at ``\\small`` without scaling: long system names wrap, the last
    header takes two lines and the column gaps are narrower (4pt)."""
    heads = [h for _, h in TABLE_COLUMNS]
    cols = ["System", *heads, "Avg. (3 run here)"]
    top = (
        "System & SimpST & HarmBench & \\multicolumn{2}{c}{WildGuardTest} & AIR-Bench & "
        "SORRY-Bench & Average & " + stack("Avg.", "(3 here)") + " \\\\"
    )
    sub = " & & & Vani. & Adv. & & & & \\\\"
    lines = [
        "\\setlength{\\tabcolsep}{4pt}",
        "\\begin{tabular}{l" + "r" * (len(cols) - 1) + "}",
        "\\toprule",
        top,
        "\\cmidrule(lr){4-5}",
        sub,
        "\\midrule",
    ]
    cited = frame[frame["Source"] == "cited"]
    ours = frame[frame["Source"] != "cited"]
    for part in (cited, ours):
        for _, r in part.iterrows():
            cells = [wrap(escape(r["System"]), SYSTEM_WIDTH)]
            for c in cols[1:]:
                v = str(r[c])
                cells.append("\\textit{not run}" if v == NOT_RUN else escape(v))
            lines.append(" & ".join(cells) + " \\\\")
        if part is cited and len(ours):
            lines.append("\\midrule")
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)


def write_f1_table(
    evaluation: Evaluation,
    harmful: Sequence[str],
    path: Path,
    labels: Mapping[str, str] | None = None,
    cited: Cited | None = None,
) -> pd.DataFrame:
    """The F1 table over the harmful datasets, written to ``path``; returns its frame."""
    frame = f1_table(harmful_results(evaluation, harmful), cited, labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f1_table_tex(frame), encoding="utf-8")
    return frame


def weights_table(ci: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """Readable weights with intervals; weights no fitting tree used are marked."""
    out = []
    for r in ci.itertuples():
        unused = r.n_effects is not pd.NA and r.n_effects == 0
        out.append(
            {
                "weight": r.weight,
                "estimate": f"{r.estimate:.{digits}f}",
                "95% interval": "not identified"
                if unused
                else f"[{r.lo:.{digits}f}, {r.hi:.{digits}f}]",
                "effects": "" if r.n_effects is pd.NA else f"{int(r.n_effects):,}",
            }
        )
    return pd.DataFrame(out)


def steering_rates_table(rates: pd.DataFrame, index: str | Sequence[str]) -> pd.DataFrame:
    """Share flagged (three decimals) per ``index`` group, one column per steering profile;
    ``rates`` is :func:`harmtrace.trees.report.steering_table`."""
    index = index if isinstance(index, str) else list(index)
    wide = rates.pivot_table(index=index, columns="profile", values="rate").round(3)
    return wide.reset_index()
