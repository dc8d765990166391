"""The ``human`` grader: judgments a dataset already carries, checked and put in shape.

Method. For each side and category the labels come from the column
``<side>_severity_<category>`` -- or ``user_<side>_severity_<category>``, the name
``harmtrace normalize`` gives a user file's own columns -- and relevance from
``relevance`` / ``user_relevance``, refusal from ``refusal`` / ``user_refusal`` when
present. Values must be whole numbers in range (severity 0-3, relevance 1-3; refusal
true/false, yes/no or 1/0); a value outside that is an error that names the record and
the column, because a typo in human labels must not quietly become a judgment.

A missing (null) prompt severity means the record was not judged: its row is ``failed``
with the column named. A missing response severity is kept as null (the schema allows
it). Prompt severity columns are required; response severity columns are required when
any record has a response. This is how a human-labelled paired dataset, such as the
study's 1,250 records, enters the workflow beside the model graders.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from harmtrace.errors import HarmtraceError
from harmtrace.graders.base import Grader, GraderSpec, empty_judgments, mark_failed
from harmtrace.graders.registry import register_grader
from harmtrace.taxonomy import CATEGORIES, RELEVANCE_LEVELS, SEVERITY_LEVELS, SIDES

PREFIX = "user_"
_TRUE = {"true", "yes", "1", "t", "y"}
_FALSE = {"false", "no", "0", "f", "n"}


class HumanLabelError(HarmtraceError):
    """A human label is missing where required or outside its range."""


class HumanSpec(GraderSpec):
    """Config block ``grader.human`` (no keys: the columns are fixed by name)."""


def find_column(records: pd.DataFrame, name: str, required: bool) -> str | None:
    """``user_<name>`` or ``<name>``; an error when both or (if required) neither exist."""
    present = [c for c in (PREFIX + name, name) if c in records.columns]
    if len(present) == 2:
        raise HumanLabelError(
            f"records have both {present[0]!r} and {present[1]!r}; keep one of them"
        )
    if not present and required:
        shown = ", ".join(c for c in records.columns if "severity" in c or "relevance" in c)
        raise HumanLabelError(
            f"records have no column {name!r} (or {PREFIX + name!r}); the human grader "
            f"reads <side>_severity_<category> for {', '.join(CATEGORIES)} "
            f"(label columns found: {shown or 'none'})"
        )
    return present[0] if present else None


def _levels(
    records: pd.DataFrame, column: str, allowed: tuple[int, ...], what: str
) -> pd.arrays.IntegerArray:
    """Whole numbers within ``allowed``; nulls stay null; anything else is an error."""
    raw = records[column]
    values = pd.to_numeric(raw.astype("object").where(raw.notna(), None), errors="coerce")
    values = values.astype("Float64")
    bad = raw.notna().to_numpy() & (
        values.isna().to_numpy()
        | ~values.fillna(allowed[0]).isin(allowed).to_numpy()
        | (values.fillna(0) % 1 != 0).to_numpy()
    )
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        more = int(bad.sum()) - 1
        rid = records["record_id"].iloc[first]
        raise HumanLabelError(
            f"column {column!r}, record {rid}: {raw.iloc[first]!r} is not a {what} "
            f"({min(allowed)}-{max(allowed)})"
            + (f"; {more} more bad value(s) in this column" if more else "")
        )
    return values.astype("Int8").array


def _flags(records: pd.DataFrame, column: str) -> pd.arrays.BooleanArray:
    out = []
    for pos, v in enumerate(records[column].tolist()):
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            out.append(pd.NA)
            continue
        key = str(v).strip().lower()
        if isinstance(v, bool | np.bool_):
            out.append(bool(v))
        elif key in _TRUE:
            out.append(True)
        elif key in _FALSE:
            out.append(False)
        else:
            rid = records["record_id"].iloc[pos]
            raise HumanLabelError(
                f"column {column!r}, record {rid}: {v!r} is not a refusal flag "
                "(true/false, yes/no or 1/0)"
            )
    return pd.array(out, dtype="boolean")


@register_grader
class HumanBackend(Grader):
    """Judgments from the dataset's own human labels."""

    name: ClassVar[str] = "human"
    Spec: ClassVar[type[GraderSpec]] = HumanSpec
    backend_version: ClassVar[str] = "1.0"
    reads_record_labels: ClassVar[bool] = True

    def grade(self, records: pd.DataFrame) -> pd.DataFrame:
        out = empty_judgments(records["record_id"].astype("string"), self.name, self.version)
        has_resp = (
            bool(records["response"].notna().any()) if "response" in records.columns else False
        )
        missing: dict[int, list[str]] = {}
        for side in SIDES:
            for c in CATEGORIES:
                name = f"{side}_severity_{c}"
                col = find_column(records, name, required=side == "prompt" or has_resp)
                if col is None:
                    continue
                levels = _levels(records, col, SEVERITY_LEVELS, "severity")
                out[name] = levels
                if side == "prompt":
                    for row in np.flatnonzero(pd.isna(levels)):
                        missing.setdefault(int(row), []).append(col)
        col = find_column(records, "relevance", required=False)
        if col is not None:
            out["relevance"] = _levels(records, col, RELEVANCE_LEVELS, "relevance level")
        col = find_column(records, "refusal", required=False)
        if col is not None:
            out["refusal"] = _flags(records, col)
        if missing:
            rows = sorted(missing)
            reasons = [f"no human label in {', '.join(missing[r])}" for r in rows]
            mark_failed(out, rows, reasons)
        return out

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "columns": "<side>_severity_<category>, relevance"}
