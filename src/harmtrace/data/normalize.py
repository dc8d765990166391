"""Turn adapter output (or a user's own file) into validated record tables.

Bad rows are never dropped silently: depending on the ``bad_rows`` policy
they either stop the run with a message naming each row, or go to a
quarantine side file that the log counts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from harmtrace.data.adapters import ADAPTERS, AdapterError, _jsonl
from harmtrace.data.fetch import read_manifest
from harmtrace.data.registry import DatasetSpec
from harmtrace.errors import HarmtraceError
from harmtrace.io import write_table

log = logging.getLogger(__name__)

BadRowPolicy = Literal["error", "quarantine"]
CORE = ("record_id", "dataset", "item_id", "prompt", "context", "response", "response_source")
TEXT_FIELDS = ("prompt", "context", "response")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


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


def _has_surrogate(value: object) -> bool:
    return isinstance(value, str) and _SURROGATE.search(value) is not None


def _problems(df: pd.DataFrame, max_text_chars: int) -> pd.Series:
    """One reason string per row ('' when the row is fine); the first problem found wins.

    Works on object columns: text decoded with ``surrogateescape`` cannot enter
    an Arrow-backed string column until the invalid bytes are flagged.
    """
    reason = pd.Series("", index=df.index, dtype=object)

    def flag(mask: pd.Series, text: str) -> None:
        hit = mask.fillna(False).astype(bool) & (reason == "")
        reason[hit] = text

    if "_problem" in df:
        hit = df["_problem"].notna()
        reason[hit] = df.loc[hit, "_problem"]
    for col in (c for c in df.columns if not c.startswith("_")):
        if df[col].dtype == object:
            flag(df[col].map(_has_surrogate), f"invalid UTF-8 in {col}")
    flag(df["prompt"].map(lambda v: not isinstance(v, str) or not v.strip()), "empty prompt")
    for col in TEXT_FIELDS:
        too_long = df[col].map(lambda v: isinstance(v, str) and len(v) > max_text_chars)
        flag(too_long, f"{col} longer than {max_text_chars} characters")
    return reason


def _escape(value: object) -> object:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if isinstance(value, (list, dict)):
        return value
    if pd.isna(value):
        return None
    return value.item() if hasattr(value, "item") else value


def build_records(
    dataset: str,
    frame: pd.DataFrame,
    *,
    bad_rows: BadRowPolicy = "error",
    max_text_chars: int = 100_000,
) -> Normalized:
    """Check rows, assign record ids, and split good records from quarantined ones."""
    if bad_rows not in ("error", "quarantine"):
        raise ValueError(f"bad_rows must be 'error' or 'quarantine', got {bad_rows!r}")
    reasons = _problems(frame, max_text_chars)
    bad = reasons != ""
    quarantined = pd.DataFrame(
        {
            "dataset": dataset,
            "source_row": frame.loc[bad, "_source_row"].astype("Int64"),
            "item_id": frame.loc[bad, "item_id"].map(str),
            "reason": reasons[bad],
            "row": [
                json.dumps(
                    {k: _escape(v) for k, v in row.items() if not k.startswith("_")},
                    ensure_ascii=False,
                    sort_keys=True,
                )
                for row in frame.loc[bad].to_dict("records")
            ],
        }
    )
    if bad.any() and bad_rows == "error":
        lines = [
            f"  source row {r.source_row} (item {r.item_id}): {r.reason}"
            for r in quarantined.head(10).itertuples()
        ]
        more = f"\n  ... and {int(bad.sum()) - 10} more" if bad.sum() > 10 else ""
        raise BadRowsError(
            f"{dataset}: {int(bad.sum())} bad row(s):\n" + "\n".join(lines) + more + "\n"
            "Fix the input, or set data.bad_rows: quarantine (--bad-rows quarantine) to move "
            "such rows to a side file and go on."
        )
    good = frame.loc[~bad].drop(columns=[c for c in frame.columns if c.startswith("_")])
    good = good.reset_index(drop=True)
    good["dataset"] = dataset
    for col in ("item_id", "prompt", "context", "response", "response_source", "dataset"):
        good[col] = good[col].astype("string")
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
        if good[col].dtype in (object, "str"):
            good[col] = good[col].infer_objects().convert_dtypes()
    if good["record_id"].duplicated().any():
        dup = good.loc[good["record_id"].duplicated(keep=False), "item_id"].tolist()[:10]
        raise BadRowsError(f"{dataset}: duplicate item ids {dup}; each item must be unique")
    return Normalized(good[list(CORE) + extras], quarantined.reset_index(drop=True))


def write_normalized(result: Normalized, out: Path, quarantine_out: Path | None) -> None:
    write_table(result.records, out, "records")
    if quarantine_out is not None:
        quarantine_out.parent.mkdir(parents=True, exist_ok=True)
        lines = [
            json.dumps(r, ensure_ascii=False, sort_keys=True) for r in _quarantine_rows(result)
        ]
        quarantine_out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    n_bad = len(result.quarantined)
    log.info("wrote %d records to %s", len(result.records), out)
    if n_bad:
        log.warning("quarantined %d bad row(s) to %s", n_bad, quarantine_out)
    else:
        log.info("quarantined 0 rows")


def _quarantine_rows(result: Normalized) -> list[dict]:
    q = result.quarantined
    return [
        {
            "dataset": r["dataset"],
            "source_row": None if pd.isna(r["source_row"]) else int(r["source_row"]),
            "item_id": r["item_id"],
            "reason": r["reason"],
            "row": json.loads(r["row"]),
        }
        for r in q.to_dict("records")
    ]


def normalize_dataset(
    spec: DatasetSpec,
    raw_dir: Path,
    *,
    bad_rows: BadRowPolicy = "error",
    max_text_chars: int = 100_000,
) -> Normalized:
    """Read a fetched dataset through its adapter and check the expected record count."""
    if spec.kind != "records":
        raise NotRecordsError(
            f"{spec.name} is reference data (kind: {spec.kind}), not records; normalize skips "
            "it (load it with harmtrace.data.air_taxonomy.LOADERS[spec.adapter])"
        )
    manifest = read_manifest(raw_dir, spec.name)
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
    return result


_SAFE_COL = re.compile(r"[^0-9a-zA-Z_]+")


def read_user_file(path: Path) -> pd.DataFrame:
    """Load a CSV, JSONL or parquet file as strings-where-text, keeping row numbers."""
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    if not path.is_file():
        raise HarmtraceError(f"{path}: no such file")
    if suffix in (".csv", ".csv.gz"):
        df = pd.read_csv(
            path, dtype=object, keep_default_na=False, encoding_errors="surrogateescape"
        )
        df["_source_row"] = range(2, len(df) + 2)
    elif suffix in (".jsonl", ".jsonl.gz"):
        rows = _jsonl(path)
        df = pd.DataFrame([obj for _, obj in rows], dtype=object)
        df["_source_row"] = [n for n, _ in rows]
    elif suffix == ".parquet":
        df = pd.read_parquet(path)
        df["_source_row"] = range(len(df))
    else:
        raise HarmtraceError(
            f"{path}: unsupported file type {suffix!r}; use .csv, .jsonl or .parquet"
        )
    return df


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
    """Records from a researcher's own file; other columns are kept as ``user_<name>``."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", name):
        raise HarmtraceError(f"--name {name!r}: use lowercase letters, digits, '.', '_' or '-'")
    df = read_user_file(path)
    named = [c for c in (prompt_column, response_column, id_column, context_column) if c]
    missing = [c for c in named if c not in df.columns]
    if missing:
        shown = [c for c in df.columns if c != "_source_row"]
        raise HarmtraceError(f"{path}: missing column(s) {missing}; the file has {shown}")
    frame = pd.DataFrame(
        {
            "_source_row": df["_source_row"],
            "item_id": df[id_column].astype(str)
            if id_column
            else [f"{i:06d}" for i in range(len(df))],
            "prompt": df[prompt_column].astype(object),
            "context": df[context_column].astype(object) if context_column else "",
            "response": df[response_column].astype(object) if response_column else None,
            "response_source": (response_source or response_column) if response_column else None,
        }
    )
    for col in df.columns:
        if col in named or col == "_source_row":
            continue
        frame[f"user_{_SAFE_COL.sub('_', col).strip('_').lower()}"] = df[col]
    return build_records(name, frame, bad_rows=bad_rows, max_text_chars=max_text_chars)
