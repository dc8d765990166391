"""Data frames to booktabs LaTeX tables, with escaping done once, here."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harmtrace.report.macros import escape_latex, fmt_num


def escape(text: object) -> str:
    return escape_latex(text)


def points(x: float) -> str:
    """A share difference in percentage points, without the unit, LaTeX minus sign."""
    shown = fmt_num(100 * x, 1)
    return "$-$" + shown[1:] if shown.startswith("-") else shown


def to_booktabs(
    df: pd.DataFrame,
    *,
    align: str | None = None,
    raw_columns: tuple[str, ...] = (),
    index: bool = False,
    escape_header: bool = True,
    raw_header: tuple[str, ...] = (),
) -> str:
    """A tabular body. Every cell and header that comes from data or config is escaped;
    only cells in ``raw_columns`` (formatted numbers, already LaTeX) and headers in
    ``raw_header`` (or all headers with ``escape_header=False``) are written as given.
    """
    frame = df.reset_index() if index else df
    if frame.shape[1] == 0:
        raise ValueError("cannot write a table without columns")
    unknown = [c for c in (*raw_columns, *raw_header) if c not in frame.columns]
    if unknown:
        raise ValueError(f"raw column(s) {unknown} are not in the table {list(frame.columns)}")
    align = align or ("l" + "r" * (frame.shape[1] - 1))
    header = (
        " & ".join(
            str(c) if (not escape_header or c in raw_header) else escape(c) for c in frame.columns
        )
        + r" \\"
    )
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


def file_stem(name: object) -> str:
    """A name from data or config made safe for a file name that LaTeX will \\input.

    Letters, digits, ``-`` and ``.`` stay; everything else (``:``, spaces, LaTeX
    specials) becomes ``_``, so ``hh-rlhf-harmless:chosen`` -> ``hh-rlhf-harmless_chosen``.
    """
    return "".join(ch if (ch.isascii() and ch.isalnum()) or ch in "-." else "_" for ch in str(name))


def write_table_tex(df: pd.DataFrame, path: Path, **kwargs: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_booktabs(df, **kwargs), encoding="utf-8")  # type: ignore[arg-type]


TableSpec = tuple[pd.DataFrame, tuple[str, ...], str]
"""A table to write: the frame, its columns already in LaTeX, its column alignment."""


def write_tables(frames: dict[str, TableSpec], tables_dir: Path, producer: str) -> list[Path]:
    """One booktabs file per table, ``<producer>--<name>.tex`` (the producer in the name);
    a header holding math (``$``) is LaTeX already and is not escaped."""
    paths = []
    for name, (frame, raw, align) in frames.items():
        path = Path(tables_dir) / f"{producer}--{name}.tex"
        math = tuple(c for c in frame.columns if "$" in str(c))
        write_table_tex(frame, path, raw_columns=raw, align=align, raw_header=math)
        paths.append(path)
    return paths
