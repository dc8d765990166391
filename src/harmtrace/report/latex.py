"""Data frames to booktabs LaTeX tables, with escaping done once, here."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

from harmtrace.report.macros import escape_latex, fmt_num


def escape(text: object) -> str:
    return escape_latex(text)


def points(x: float) -> str:
    """A share difference in percentage points, without the unit, LaTeX minus sign."""
    shown = fmt_num(100 * x, 1)
    return "$-$" + shown[1:] if shown.startswith("-") else shown


def stack(*lines: str, align: str = "c", top: bool = False) -> str:
    r"""Lines of LaTeX set one under another in one cell, so a long header or an interval
    takes a second line instead of widening its column (a nested ``tabular``: no package).

    A header stack sits on its last line (``[b]``, level with one-line headers); a body
    cell's stack (``top``) on its first, so the estimates of a row stay on one baseline.
    A line that opens with ``[`` is guarded with ``{}``, or ``\\`` would read it as a skip.
    """
    if len(lines) == 1:
        return lines[0]
    rows = [lines[0], *("{}" + x if x.startswith("[") else x for x in lines[1:])]
    pos = "t" if top else "b"
    return rf"\begin{{tabular}}[{pos}]{{@{{}}{align}@{{}}}}" + r" \\ ".join(rows) + r"\end{tabular}"


def ci_below(cell: str, align: str = "r") -> str:
    r"""A formatted ``estimate [lo, hi]`` cell with its interval on a second line; a
    percent sign is kept on the estimate only (``16.7\%`` over ``[3.0, 56.4]``), the
    numbers unchanged. A cell without an interval, such as ``n/a``, stays as it is."""
    est, sep, ci = str(cell).partition(" [")
    if not sep:
        return str(cell)
    if est.endswith(r"\%"):
        ci = ci.replace(r"\%", "")
    return stack(est, "[" + ci, align=align, top=True)


def wrap(text: str, width: int, align: str = "l", top: bool = True) -> str:
    r"""LaTeX text (escaped already) broken into lines of at most about ``width`` source
    characters and set as a :func:`stack` (``top`` as there): at spaces, or after each ``\_`` of
    a name without spaces (``redact\_medium\_`` over ``block\_high``). Text that fits, or
    a single word, stays on one line."""
    sep = " " if " " in text else r"\_"
    parts = text.split(sep)
    lines: list[str] = []
    current = ""
    for i, part in enumerate(parts):
        piece = part + (sep if i < len(parts) - 1 else "")
        if current and len((current + piece).rstrip()) > width:
            lines.append(current.rstrip())
            current = piece
        else:
            current += piece
    lines.append(current.rstrip())
    return stack(*lines, align=align, top=top)


def _check_layout_columns(frame: pd.DataFrame, *named: str) -> None:
    """Layout options name columns; a misspelt one would silently do nothing."""
    unknown = [c for c in named if c not in frame.columns]
    if unknown:
        raise ValueError(f"column(s) {unknown} are not in the table {list(frame.columns)}")


def _body_rows(
    frame: pd.DataFrame, shown: list, group_by: str | None, cell: Callable[[object, object], str]
) -> list[str]:
    """The table's rows; with ``group_by``, a spanning label row opens each group."""
    rows = []
    group: object = None
    for i, record in enumerate(frame.to_dict("records")):
        if group_by is not None and (i == 0 or record[group_by] != group):
            group = record[group_by]
            if i:
                rows.append(r"\addlinespace")
            label = cell(group_by, group)
            rows.append(rf"\multicolumn{{{len(shown)}}}{{@{{}}l}}{{\emph{{{label}}}}} \\")
        rows.append(" & ".join(cell(c, record[c]) for c in shown) + r" \\")
    return rows


def to_booktabs(
    df: pd.DataFrame,
    *,
    align: str | None = None,
    raw_columns: tuple[str, ...] = (),
    index: bool = False,
    escape_header: bool = True,
    raw_header: tuple[str, ...] = (),
    headers: Mapping[str, str] | None = None,
    group_by: str | None = None,
    ci_columns: tuple[str, ...] = (),
    wrap_columns: Mapping[str, int] | None = None,
    tabcolsep: str | None = None,
) -> str:
    """A tabular body. Every cell and header that comes from data or config is escaped;
    only cells in ``raw_columns`` (formatted numbers, already LaTeX) and headers in
    ``raw_header`` (or all headers with ``escape_header=False``) are written as given.

    Layout only, never content: ``headers`` maps a column to the LaTeX shown as its header
    (written as given, e.g. a :func:`stack` of its words); ``group_by`` names a column
    whose value is written once, as a row spanning the table above its group, instead of
    in every row (``align`` then describes the remaining columns); ``ci_columns`` set
    their ``estimate [lo, hi]`` cells on two lines (:func:`ci_below`); ``wrap_columns``
    break their long cells into lines of about the given width (:func:`wrap`); ``tabcolsep``
    narrows the space between columns for this table only (the float's group keeps it).
    """
    frame = df.reset_index() if index else df
    if frame.shape[1] == 0:
        raise ValueError("cannot write a table without columns")
    headers = dict(headers or {})
    wraps = dict(wrap_columns or {})
    grouped = [group_by] if group_by else []
    _check_layout_columns(frame, *raw_columns, *raw_header, *headers, *ci_columns, *wraps, *grouped)
    shown = [c for c in frame.columns if c != group_by]
    align = align or ("l" + "r" * (len(shown) - 1))

    def head(c: object) -> str:
        if c in headers:
            return headers[c]
        return str(c) if (not escape_header or c in raw_header) else escape(c)

    specs = re.findall(r"[lrc]|[pmb]\{[^}]*\}", align)
    side = dict(zip(shown, specs, strict=True)) if len(specs) == len(shown) else {}

    def cell(col: object, v: object) -> str:
        text = str(v) if col in raw_columns else escape(v)
        if col in ci_columns:
            return ci_below(text, align=side.get(col) if side.get(col) in ("l", "c") else "r")
        return wrap(text, wraps[col]) if col in wraps else text

    header = " & ".join(head(c) for c in shown) + r" \\"
    rows = _body_rows(frame, shown, group_by, cell)
    return "\n".join(
        [
            *([rf"\setlength{{\tabcolsep}}{{{tabcolsep}}}"] if tabcolsep else []),
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
