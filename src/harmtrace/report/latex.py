"""Data frames to booktabs LaTeX tables, with escaping done once, here."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harmtrace.report.macros import escape_latex


def escape(text: object) -> str:
    return escape_latex(text)


def to_booktabs(
    df: pd.DataFrame,
    *,
    align: str | None = None,
    raw_columns: tuple[str, ...] = (),
    index: bool = False,
    escape_header: bool = True,
) -> str:
    """A tabular body; cells in ``raw_columns`` are already LaTeX and are not escaped."""
    frame = df.reset_index() if index else df
    align = align or ("l" + "r" * (frame.shape[1] - 1))
    header = " & ".join(escape(c) if escape_header else str(c) for c in frame.columns) + r" \\"
    rows = []
    for record in frame.itertuples(index=False):
        cells = [
            str(v) if col in raw_columns else escape(v)
            for col, v in zip(frame.columns, record, strict=True)
        ]
        rows.append(" & ".join(cells) + r" \\")
    return "\n".join(
        [
            rf"\begin{{tabular}}{{{align}}}",
            r"\toprule",
            header,
            r"\midrule",
            *rows,
            r"\bottomrule",
            r"\end{tabular}",
            "",
        ]
    )


def write_table_tex(df: pd.DataFrame, path: Path, **kwargs: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_booktabs(df, **kwargs), encoding="utf-8")  # type: ignore[arg-type]
