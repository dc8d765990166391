"""Records and texts from a researcher's own file, under the checks benchmarks get.

A user's file may not take a registered dataset's name, and its other columns are kept
as ``user_<name>`` so that nothing in the file is dropped or renamed silently.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from harmtrace.data.normalize.cells import id_text
from harmtrace.data.normalize.records import Normalized, build_records
from harmtrace.data.normalize.row_checks import BadRowPolicy, split_rows
from harmtrace.data.provenance import FileDigest, Provenance
from harmtrace.data.readers import UserTable, read_user_file
from harmtrace.data.registry import is_registered
from harmtrace.errors import HarmtraceError

USER_PREFIX = "user_"
_SAFE_COL = re.compile(r"[^0-9a-zA-Z_]+")
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")


@dataclass(frozen=True)
class Texts:
    """Loose texts to grade: ``texts`` has ``id``, ``source_row`` and ``text``."""

    texts: pd.DataFrame
    quarantined: pd.DataFrame
    path: Path
    sha256: str


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
    good, quarantined = split_rows(
        str(path), frame, bad_rows, max_text_chars, labels, table.row_word
    )
    texts = pd.DataFrame(
        {
            "id": pd.array([id_text(v) for v in good["item_id"]], dtype="string"),
            "source_row": pd.array(good["_source_row"].tolist(), dtype="Int64"),
            "text": pd.array(good["prompt"].tolist(), dtype="string"),
        }
    )
    return Texts(texts, quarantined, table.path, table.sha256)
