"""Record tables: stable record ids, the core columns, and extra columns typed exactly."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from harmtrace.data.normalize.cells import id_text, is_missing
from harmtrace.data.normalize.row_checks import BadRowPolicy, BadRowsError, split_rows
from harmtrace.data.provenance import Provenance
from harmtrace.errors import HarmtraceError

CORE = ("record_id", "dataset", "item_id", "prompt", "context", "response", "response_source")


def record_id(dataset: str, item_id: str, response_source: str | None) -> str:
    """Stable 16-hex id: same dataset, item and response source give the same id everywhere."""
    key = "\x1f".join((dataset, item_id, response_source or ""))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Normalized:
    records: pd.DataFrame
    quarantined: pd.DataFrame
    provenance: Provenance | None = None


def _typed_extra(values: pd.Series, label: str, name: str, rows: pd.Series, row_word: str):
    """An extra column in the narrowest nullable dtype that holds it exactly.

    One Arrow type per column: a column mixing, say, numbers and text is an error
    naming the types and a row of each, never a silent conversion to text.
    """
    if values.dtype != object:
        return values
    try:
        arr = pa.array(values.tolist(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        kinds: dict[str, int] = {}
        for v, r in zip(values, rows, strict=True):
            if not is_missing(v):
                kinds.setdefault(type(v).__name__, int(r))
        shown = ", ".join(f"{t} ({row_word} {r})" for t, r in kinds.items())
        raise HarmtraceError(
            f"{name}: column {label} mixes {shown}; a column must hold one type "
            f"({exc.__class__.__name__}: {exc})"
        ) from exc
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):
        return values.astype("string")
    if pa.types.is_boolean(t):
        return values.astype("boolean")
    if pa.types.is_integer(t):
        return values.astype("Int64")
    if pa.types.is_floating(t):
        return values.astype("Float64")
    return values


def build_records(
    dataset: str,
    frame: pd.DataFrame,
    *,
    bad_rows: BadRowPolicy = "error",
    max_text_chars: int = 100_000,
    labels: dict[str, str] | None = None,
    row_word: str = "source row",
) -> Normalized:
    """Check rows, assign record ids, and split good records from quarantined ones.

    ``labels`` names columns in messages as the user knows them (e.g. ``prompt`` ->
    ``prompt (column 'q')``); ``row_word`` says what ``_source_row`` counts.
    """
    good, quarantined = split_rows(dataset, frame, bad_rows, max_text_chars, labels, row_word)
    rows = good["_source_row"]
    good = good.drop(columns=[c for c in good.columns if c.startswith("_")])
    good = good.reset_index(drop=True)
    rows = rows.reset_index(drop=True)
    good["dataset"] = dataset
    good["item_id"] = good["item_id"].map(id_text)
    for col in ("item_id", "prompt", "context", "response", "response_source", "dataset"):
        good[col] = good[col].map(lambda v: None if is_missing(v) else v).astype("string")
    good["context"] = good["context"].fillna("")
    good.insert(
        0,
        "record_id",
        pd.array(
            [
                record_id(dataset, i, None if pd.isna(src) else src)
                for i, src in zip(good["item_id"], good["response_source"], strict=True)
            ],
            dtype="string",
        ),
    )
    extras = [c for c in good.columns if c not in CORE]
    for col in extras:
        good[col] = _typed_extra(good[col], (labels or {}).get(col, col), dataset, rows, row_word)
    if good["record_id"].duplicated().any():  # only a sha256 prefix collision gets here
        dup = good.loc[good["record_id"].duplicated(keep=False), "item_id"].tolist()[:10]
        raise BadRowsError(f"{dataset}: record ids collide for items {dup}")
    return Normalized(good[list(CORE) + extras], quarantined)
