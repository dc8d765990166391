"""Row checks: one reason per bad row, and the ``bad_rows`` policy that stops or quarantines.

The first problem found is a row's reason, so a row is counted once: rows in = good
rows + quarantined rows.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Literal

import pandas as pd

from harmtrace.data.normalize.cells import (
    cell_reason,
    has_surrogate,
    id_text,
    is_missing,
    jsonable,
)
from harmtrace.errors import HarmtraceError

BadRowPolicy = Literal["error", "quarantine"]
TEXT_FIELDS = ("prompt", "context", "response")


class BadRowsError(HarmtraceError):
    """Rows failed the quality checks under the ``error`` policy."""


def _problems(
    df: pd.DataFrame, max_text_chars: int, labels: dict[str, str], row_word: str
) -> pd.Series:
    """One reason string per row ('' when the row is fine); the first problem found wins.

    Works on object columns: text decoded with ``surrogateescape`` cannot enter
    an Arrow-backed string column until the invalid bytes are flagged. Plain lists,
    not pandas assignments: the checks are per cell anyway, and this keeps small
    files cheap.
    """
    reason = [""] * len(df)

    def first(new: list[str]) -> None:
        for i, why in enumerate(new):
            if why and not reason[i]:
                reason[i] = why

    if "_problem" in df:
        first([p if isinstance(p, str) else "" for p in df["_problem"].tolist()])
    for col in (c for c in df.columns if not c.startswith("_")):
        if df[col].dtype == object:
            why = (
                f"invalid UTF-8 in {labels.get(col, col)} (an undecodable byte or a lone surrogate)"
            )
            first([why if has_surrogate(v) else "" for v in df[col].tolist()])
    for col in ("item_id", *TEXT_FIELDS):
        label = labels.get(col, col)
        first([cell_reason(col, v, label, max_text_chars) for v in df[col].tolist()])
    ids = [id_text(v) for v in df["item_id"].tolist()]
    sources = ["" if is_missing(v) else str(v) for v in df["response_source"].tolist()]
    rows: dict[tuple[str, str], list[str]] = defaultdict(list)
    for i, src, r in zip(ids, sources, df["_source_row"].tolist(), strict=True):
        if i is not None:
            rows[(i, src)].append(str(r))
    id_label = labels.get("item_id", "item_id")
    first(
        [
            f"duplicate {id_label} {i!r} ({row_word}s {', '.join(rows[(i, src)])})"
            if i is not None and len(rows[(i, src)]) > 1
            else ""
            for i, src in zip(ids, sources, strict=True)
        ]
    )
    return pd.Series(reason, index=df.index, dtype=object)


def _quarantine_frame(name: str, frame: pd.DataFrame, reasons: pd.Series) -> pd.DataFrame:
    bad = reasons != ""
    rows = []
    for row in frame.loc[bad].to_dict("records"):
        if row.get("_original") is not None:  # a user's row, under the user's column names
            shown = jsonable(row["_original"])
        else:
            shown = {k: jsonable(v) for k, v in row.items() if not k.startswith("_")}
        if row.get("_raw") is not None:  # a row that could not be split into columns
            shown = {"_raw": jsonable(row["_raw"])}
        rows.append(json.dumps(shown, ensure_ascii=False, sort_keys=True, allow_nan=False))
    return pd.DataFrame(
        {
            "dataset": name,
            "source_row": frame.loc[bad, "_source_row"].astype("Int64"),
            "item_id": frame.loc[bad, "item_id"].map(
                lambda v: None if is_missing(v) else str(jsonable(v))
            ),
            "reason": reasons[bad],
            "row": rows,
        }
    ).reset_index(drop=True)


def split_rows(
    name: str,
    frame: pd.DataFrame,
    bad_rows: BadRowPolicy,
    max_text_chars: int,
    labels: dict[str, str] | None,
    row_word: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(good rows, quarantine frame); raises :class:`BadRowsError` under ``error``."""
    if bad_rows not in ("error", "quarantine"):
        raise ValueError(f"bad_rows must be 'error' or 'quarantine', got {bad_rows!r}")
    if "_source_row" not in frame:
        raise ValueError("frame needs a _source_row column")
    reasons = _problems(frame, max_text_chars, labels or {}, row_word)
    bad = reasons != ""
    quarantined = _quarantine_frame(name, frame, reasons)
    if bad.any() and (bad_rows == "error" or bad.all()):
        lines = [
            f"  {row_word} {r.source_row} (item {r.item_id}): {r.reason}"
            for r in quarantined.head(10).itertuples()
        ]
        more = f"\n  ... and {int(bad.sum()) - 10} more" if bad.sum() > 10 else ""
        advice = (
            "no row is left to use; fix the input"
            if bad.all()
            else "Fix the input, or set data.bad_rows: quarantine (--bad-rows quarantine) to "
            "move such rows to a side file and go on."
        )
        raise BadRowsError(
            f"{name}: {int(bad.sum())} bad row(s) of {len(frame)}:\n"
            + "\n".join(lines)
            + more
            + "\n"
            + advice
        )
    return frame.loc[~bad], quarantined
