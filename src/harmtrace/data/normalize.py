"""Turn adapter output (or a user's own file) into validated record tables.

Method: every candidate row is checked (row-level read problems, undecodable text,
cell types, an empty or invisible prompt, text length, duplicate ids) and gets one
reason or none. Bad rows are never dropped silently: depending on the ``bad_rows``
policy they either stop the run with a message naming each row by its number in the
source file, or go to a quarantine side file that the log counts, so that rows in =
records out + rows quarantined, always. Records carry their provenance (see
:mod:`harmtrace.data.provenance`): registered datasets are read only after
:func:`harmtrace.data.fetch.verify_fetched` re-hashed their raw files, and a user's
file may not take a registered dataset's name.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa

from harmtrace.data.adapters import ADAPTERS, AdapterError
from harmtrace.data.fetch import verify_fetched
from harmtrace.data.provenance import FileDigest, Provenance
from harmtrace.data.readers import UserTable, read_user_file
from harmtrace.data.registry import DatasetSpec, is_registered
from harmtrace.errors import HarmtraceError
from harmtrace.io import check_output_file, write_table

log = logging.getLogger(__name__)

BadRowPolicy = Literal["error", "quarantine"]
CORE = ("record_id", "dataset", "item_id", "prompt", "context", "response", "response_source")
TEXT_FIELDS = ("prompt", "context", "response")
USER_PREFIX = "user_"
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SAFE_COL = re.compile(r"[^0-9a-zA-Z_]+")
_INVISIBLE = frozenset({"Cf", "Cc"})
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")


class BadRowsError(HarmtraceError):
    """Rows failed the quality checks under the ``error`` policy."""


class NotRecordsError(HarmtraceError):
    """The dataset is reference data (e.g. a taxonomy), which has no records."""


def record_id(dataset: str, item_id: str, response_source: str | None) -> str:
    """Stable 16-hex id: same dataset, item and response source give the same id everywhere."""
    key = "\x1f".join((dataset, item_id, response_source or ""))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Normalized:
    records: pd.DataFrame
    quarantined: pd.DataFrame
    provenance: Provenance | None = None


@dataclass(frozen=True)
class Texts:
    """Loose texts to grade: ``texts`` has ``id``, ``source_row`` and ``text``."""

    texts: pd.DataFrame
    quarantined: pd.DataFrame
    path: Path
    sha256: str


# ---------------------------------------------------------------- cell checks
def is_missing(value: object) -> bool:
    """None, pandas NA or a float NaN: a cell with no value."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def is_blank(text: str) -> bool:
    """True when a text shows nothing: only whitespace, format (Cf, e.g. zero-width
    space, byte order mark, direction marks) and control (Cc, e.g. NUL) characters."""
    return all(ch.isspace() or unicodedata.category(ch) in _INVISIBLE for ch in text)


def _has_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_surrogate(v) for v in value)
    return False


def _escape_text(text: str) -> str:
    """Undecodable bytes as ``\\xNN``, other lone surrogates as ``\\uNNNN``."""
    if not _SURROGATE.search(text):
        return text
    out = []
    for ch in text:
        cp = ord(ch)
        if 0xDC80 <= cp <= 0xDCFF:
            out.append(f"\\x{cp - 0xDC00:02x}")
        elif 0xD800 <= cp <= 0xDFFF:
            out.append(f"\\u{cp:04x}")
        else:
            out.append(ch)
    return "".join(out)


def jsonable(value: Any) -> Any:
    """Any cell as plain JSON: arrays become lists, bytes ``{"$bytes": hex}``, non-finite
    floats and other objects their ``str``; text keeps every character (see _escape_text)."""
    if isinstance(value, str):
        return _escape_text(value)
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, dict):
        return {str(jsonable(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "ndim"):  # numpy arrays and scalars
        items = value.tolist()
        return [jsonable(v) for v in items] if isinstance(items, list) else jsonable(items)
    if hasattr(value, "item") and not isinstance(value, (bool, int, float)):
        try:
            value = value.item()
        except (ValueError, TypeError, AttributeError):
            return str(value)
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bool, int)):
        return value
    return str(value)


def _preview(value: object) -> str:
    shown = json.dumps(jsonable(value), ensure_ascii=False)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _type_reason(label: str, value: object, allowed: str) -> str:
    return f"{label} holds {type(value).__name__} {_preview(value)}, expected {allowed}"


def _id_text(value: object) -> str | None:
    """The id as text: strings as they are, integers in decimal; None when unusable."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu":
        return str(int(value))  # a numpy integer from an adapter
    return None


def _cell_reason(col: str, value: object, label: str, max_text_chars: int) -> str:
    """Why one cell of a core column makes its row bad ('' when it does not)."""
    if col == "item_id":
        if is_missing(value):
            return f"no {label}"
        if _id_text(value) is None:
            return _type_reason(label, value, "text or an integer")
        return ""
    if is_missing(value):
        return f"empty {label} (missing)" if col == "prompt" else ""
    if not isinstance(value, str):
        return _type_reason(label, value, "text")
    if col == "prompt" and is_blank(value):
        return f"empty {label}" + (" (no visible characters)" if value else "")
    if len(value) > max_text_chars:
        return f"{label} longer than {max_text_chars} characters"
    return ""


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
            first([why if _has_surrogate(v) else "" for v in df[col].tolist()])
    for col in ("item_id", *TEXT_FIELDS):
        label = labels.get(col, col)
        first([_cell_reason(col, v, label, max_text_chars) for v in df[col].tolist()])
    ids = [_id_text(v) for v in df["item_id"].tolist()]
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


def _split_rows(
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
    good, quarantined = _split_rows(dataset, frame, bad_rows, max_text_chars, labels, row_word)
    rows = good["_source_row"]
    good = good.drop(columns=[c for c in good.columns if c.startswith("_")])
    good = good.reset_index(drop=True)
    rows = rows.reset_index(drop=True)
    good["dataset"] = dataset
    good["item_id"] = good["item_id"].map(_id_text)
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


# ---------------------------------------------------------------- writing
def quarantine_lines(quarantined: pd.DataFrame) -> list[str]:
    """The quarantine side file's JSON lines (sorted keys, one per bad row)."""
    return [
        json.dumps(
            {
                "dataset": r["dataset"],
                "source_row": None if pd.isna(r["source_row"]) else int(r["source_row"]),
                "item_id": r["item_id"],
                "reason": _escape_text(r["reason"]),
                "row": json.loads(r["row"]),
            },
            ensure_ascii=False,
            sort_keys=True,
        )
        for r in quarantined.to_dict("records")
    ]


def write_quarantine(quarantined: pd.DataFrame, path: Path) -> None:
    """Write the side file, empty when nothing was quarantined (so its absence means
    the step did not run)."""
    check_output_file(path, "quarantine file")
    lines = quarantine_lines(quarantined)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def write_normalized(result: Normalized, out: Path, quarantine_out: Path | None) -> None:
    """Write records (with provenance in their parquet metadata) and the quarantine file."""
    meta = result.provenance.to_metadata() if result.provenance is not None else None
    write_table(result.records, out, "records", metadata=meta)
    if quarantine_out is not None:
        write_quarantine(result.quarantined, quarantine_out)
    n_bad = len(result.quarantined)
    log.info("wrote %d records to %s", len(result.records), out)
    if n_bad:
        log.warning("quarantined %d bad row(s) to %s", n_bad, quarantine_out)
    else:
        log.info("quarantined 0 rows")


# ---------------------------------------------------------------- registered datasets
def normalize_dataset(
    spec: DatasetSpec,
    raw_dir: Path,
    *,
    bad_rows: BadRowPolicy = "error",
    max_text_chars: int = 100_000,
    allow_unpinned: Collection[str] = (),
) -> Normalized:
    """Re-verify the fetched files, read them through the adapter, check the count.

    ``allow_unpinned`` names datasets whose unpinned files the user accepts.
    """
    if spec.kind != "records":
        raise NotRecordsError(
            f"{spec.name} is reference data (kind: {spec.kind}), not records; normalize skips "
            "it (load it with harmtrace.data.air_taxonomy.LOADERS[spec.adapter])"
        )
    manifest = verify_fetched(spec, raw_dir, allow_unpinned)
    files = {f["path"]: raw_dir / spec.name / f["path"] for f in manifest["files"]}
    if spec.adapter not in ADAPTERS:
        raise AdapterError(f"{spec.name}: adapter {spec.adapter!r} is not implemented")
    frame = ADAPTERS[spec.adapter](files)
    result = build_records(spec.name, frame, bad_rows=bad_rows, max_text_chars=max_text_chars)
    total = len(result.records) + len(result.quarantined)
    if spec.expected_records is not None and total != spec.expected_records:
        raise AdapterError(
            f"{spec.name}: parsed {total} rows, the registry expects {spec.expected_records}; "
            "the raw file changed or the adapter is wrong"
        )
    source = spec.source_named(manifest["source"])
    assert source is not None  # verify_fetched checked it
    recorded = {e["path"]: e["sha256"] for e in manifest["files"]}
    prov = Provenance(
        kind="registered",
        dataset=spec.name,
        source=source.name,
        files=tuple(
            FileDigest(path=f.path, sha256=recorded[f.path], pinned=f.sha256 is not None)
            for f in source.files
        ),
        n_records=len(result.records),
        n_quarantined=len(result.quarantined),
        expected_records=spec.expected_records,
    )
    return replace(result, provenance=prov)


# ---------------------------------------------------------------- user files
def user_column_names(path: Path, columns: Collection[str]) -> dict[str, str]:
    """``user_<name>`` per extra column; names that collapse onto one another are an error."""
    targets: dict[str, list[str]] = defaultdict(list)
    for col in columns:
        safe = _SAFE_COL.sub("_", col).strip("_").lower()
        if not safe:
            raise HarmtraceError(
                f"{path}: column {col!r} has no ASCII letter or digit to name "
                f"{USER_PREFIX}<name> after; rename it"
            )
        targets[USER_PREFIX + safe].append(col)
    clashes = {t: cs for t, cs in targets.items() if len(cs) > 1}
    if clashes:
        shown = "; ".join(f"{', '.join(map(repr, cs))} -> {t}" for t, cs in clashes.items())
        raise HarmtraceError(
            f"{path}: columns would share one name in the records ({shown}); rename all but "
            "one of each group"
        )
    return {cs[0]: t for t, cs in targets.items()}


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise HarmtraceError(f"--name {name!r}: use lowercase letters, digits, '.', '_' or '-'")
    if is_registered(name):
        raise HarmtraceError(
            f"--name {name!r} is a registered dataset; records of your own file need a name "
            f"of their own (e.g. {name}-mine)"
        )


def _missing_columns(table: UserTable, named: list[str]) -> None:
    missing = [c for c in named if c not in table.columns]
    if missing:
        raise HarmtraceError(
            f"{table.path}: missing column(s) {missing}; the file has {list(table.columns)}"
        )


def _base_frame(table: UserTable, id_column: str | None) -> pd.DataFrame:
    df = table.frame
    return pd.DataFrame(
        {
            "_source_row": list(table.source_rows),
            "_problem": pd.Series(table.problems, dtype=object),
            "_raw": pd.Series(table.raw, dtype=object),
            "_original": pd.Series(
                [
                    None if p is not None else row
                    for p, row in zip(table.problems, df.to_dict("records"), strict=True)
                ],
                dtype=object,
            ),
            "item_id": df[id_column]
            if id_column
            else pd.Series([f"{i:06d}" for i in range(len(df))], dtype=object),
        }
    )


def _label(role: str, column: str) -> str:
    return role if role == column else f"{role} (column {column!r})"


def normalize_user_file(
    path: Path,
    name: str,
    prompt_column: str,
    response_column: str | None = None,
    *,
    id_column: str | None = None,
    context_column: str | None = None,
    response_source: str | None = None,
    bad_rows: BadRowPolicy = "error",
    max_text_chars: int = 100_000,
) -> Normalized:
    """Records from a researcher's own file; other columns are kept as ``user_<name>``.

    Without ``id_column`` the item id is the zero-padded position among the file's data
    rows (bad rows included), so ids never shift when a row is quarantined.
    """
    _check_name(name)
    table = read_user_file(Path(path))
    named = [c for c in (prompt_column, response_column, id_column, context_column) if c]
    _missing_columns(table, named)
    df = table.frame
    frame = _base_frame(table, id_column)
    frame["prompt"] = df[prompt_column]
    frame["context"] = df[context_column] if context_column else ""
    frame["response"] = df[response_column] if response_column else None
    source = (response_source or response_column) if response_column else None
    frame["response_source"] = source
    extras = user_column_names(table.path, [c for c in table.columns if c not in named])
    labels = {
        "item_id": _label("id", id_column) if id_column else "item_id",
        "prompt": _label("prompt", prompt_column),
    }
    if context_column:
        labels["context"] = _label("context", context_column)
    if response_column:
        labels["response"] = _label("response", response_column)
    for col, target in extras.items():
        frame[target] = df[col]
        labels[target] = f"{col!r}"
    result = build_records(
        name,
        frame,
        bad_rows=bad_rows,
        max_text_chars=max_text_chars,
        labels=labels,
        row_word=table.row_word,
    )
    prov = Provenance(
        kind="user",
        dataset=name,
        source="user-file",
        files=(FileDigest(path=str(path), sha256=table.sha256, pinned=False),),
        n_records=len(result.records),
        n_quarantined=len(result.quarantined),
        columns={
            "prompt": prompt_column,
            "response": response_column,
            "id": id_column,
            "context": context_column,
            "response_source": source,
        },
    )
    return replace(result, provenance=prov)


def read_texts(
    path: Path,
    text_column: str,
    id_column: str | None = None,
    *,
    bad_rows: BadRowPolicy = "error",
    max_text_chars: int = 100_000,
) -> Texts:
    """Texts of a user file for grading, under the same checks as records.

    Without ``id_column`` the id is the 0-based position among the file's data rows
    (bad rows included), so ids do not shift; ``source_row`` is the row (CSV, parquet)
    or line (JSONL) number in the file.
    """
    table = read_user_file(Path(path))
    for col in (text_column, id_column):
        if col and col not in table.columns:
            raise HarmtraceError(f"{path}: no column {col!r}; the file has {list(table.columns)}")
    frame = _base_frame(table, id_column)
    if not id_column:
        frame["item_id"] = pd.Series([str(i) for i in range(len(frame))], dtype=object)
    frame["prompt"] = table.frame[text_column]
    frame["context"] = ""
    frame["response"] = None
    frame["response_source"] = None
    labels = {
        "prompt": _label("text", text_column),
        "item_id": _label("id", id_column) if id_column else "id",
    }
    good, quarantined = _split_rows(
        str(path), frame, bad_rows, max_text_chars, labels, table.row_word
    )
    texts = pd.DataFrame(
        {
            "id": pd.array([_id_text(v) for v in good["item_id"]], dtype="string"),
            "source_row": pd.array(good["_source_row"].tolist(), dtype="Int64"),
            "text": pd.array(good["prompt"].tolist(), dtype="string"),
        }
    )
    return Texts(texts, quarantined, table.path, table.sha256)
