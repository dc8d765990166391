"""Read a researcher's own CSV, JSONL or parquet file without changing a character.

Method: the file's bytes are hashed (sha256, for provenance) and decoded as UTF-8 with
``surrogateescape``, so an undecodable byte survives as a lone surrogate that the row
checks in :mod:`harmtrace.data.normalize` report, instead of crashing or vanishing. A
leading UTF-8 byte order mark is the only thing removed, and only from the start of the
file. Each format is parsed by a reader that infers nothing:

- CSV: the standard library's ``csv`` module in strict mode. The first row is the
  header; no column becomes an index (an unnamed first column, as pandas writes its
  index, is read as a column called ``index``); every cell stays a string, verbatim
  (leading and trailing spaces, quotes, NUL, newlines inside quotes). Rows are numbered as a
  spreadsheet shows them: the header is row 1, so the first data row is row 2, and a
  blank line is a row too.
- JSONL: one JSON object per physical line (split on ``\\n`` only), numbered from 1.
  Values keep their JSON types so that a number in a text column is reported, not
  turned into text.
- parquet: read with pyarrow, values as Python objects (str, int, float, bytes, list,
  dict, None), rows numbered from 1.

A row that cannot be split into the header's columns (a blank line, a row with more or
fewer fields than the header, a JSONL line that is not a JSON object) is kept as a
*problem row*: it carries its number, the reason and its raw content, and the caller
reports or quarantines it. Only faults that make the whole file unreadable (no header,
an unnamed or duplicate column, broken CSV quoting, no data rows) are errors here.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harmtrace.errors import HarmtraceError

FORMATS = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
    ".parquet": "parquet",
}
ROW_WORD = {"csv": "row", "jsonl": "line", "parquet": "row"}
_BOM = "\ufeff"


class InputFileError(HarmtraceError):
    """A user's input file cannot be read as a table at all."""


@dataclass(frozen=True)
class UserTable:
    """A user file as read: cells verbatim, plus where each row came from.

    ``frame`` has one object column per user column, in file order, and one row per data
    row of the file (problem rows included, their cells None). The lists beside it run
    parallel to the frame's rows.
    """

    path: Path
    sha256: str
    format: str
    columns: tuple[str, ...]
    frame: pd.DataFrame
    source_rows: tuple[int, ...]
    problems: tuple[str | None, ...]
    raw: tuple[Any, ...]

    @property
    def row_word(self) -> str:
        """How this format's row numbers are named in messages: ``row`` or ``line``."""
        return ROW_WORD[self.format]


def file_format(path: Path) -> str:
    """csv, jsonl or parquet from the file name; anything else is an error."""
    name = path.name.lower()
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return FORMATS[suffix]
    shown = "".join(path.suffixes[-2:]) or "(none)"
    raise InputFileError(
        f"{path}: unsupported file type {shown!r}; use .csv, .csv.gz, .jsonl, .jsonl.gz or .parquet"
    )


def _decoded(path: Path, blob: bytes) -> str:
    if path.name.lower().endswith(".gz"):
        try:
            blob = gzip.decompress(blob)
        except (OSError, EOFError) as exc:
            raise InputFileError(f"{path}: not a readable gzip file ({exc})") from exc
    text = blob.decode("utf-8", "surrogateescape")
    return text.removeprefix(_BOM)


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def _check_columns(path: Path, names: list[str], where: str) -> None:
    for k, name in enumerate(names, start=1):
        if not isinstance(name, str) or name == "":
            raise InputFileError(
                f"{path}: column {k} of the {where} has no name; name it, or remove a "
                "trailing delimiter from the header"
            )
        if _has_surrogate(name):
            raise InputFileError(
                f"{path}: column {k} of the {where} is not valid UTF-8 "
                f"({name.encode('utf-8', 'surrogateescape')!r}); save the file as UTF-8"
            )
    seen: dict[str, int] = {}
    dups = []
    for k, name in enumerate(names, start=1):
        if name in seen:
            dups.append(f"{name!r} (columns {seen[name]} and {k})")
        seen.setdefault(name, k)
    if dups:
        raise InputFileError(
            f"{path}: duplicate column name(s) {', '.join(dups)}; every column needs its own name"
        )


INDEX_COLUMN = "index"
"""The name given to the unnamed first column that ``DataFrame.to_csv`` writes for the
frame's index (``Unnamed: 0`` when a column is already called ``index``)."""


def _name_index_column(header: list[str]) -> list[str]:
    """A header whose first field alone is empty (``,prompt,response``) is a pandas index
    column: it is named and kept as a column. Any other empty field (a trailing
    delimiter, which shifts every row) is left for :func:`_check_columns` to refuse."""
    if len(header) < 2 or header[0] != "" or "" in header[1:]:
        return header
    name = INDEX_COLUMN if INDEX_COLUMN not in header else "Unnamed: 0"
    return [name, *header[1:]]


def _empty(path: Path) -> InputFileError:
    return InputFileError(f"{path}: the file is empty; expected a header and data rows")


def _read_csv(path: Path, text: str) -> tuple[list[str], list[tuple[int, list | None, str | None]]]:
    if not text.strip():
        raise _empty(path)
    old_limit = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long texts are for max_text_chars
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, list | None, str | None]] = []
    header: list[str] | None = None
    row_no = 0
    try:
        for fields in reader:
            row_no += 1
            if header is None:
                if not fields:
                    raise InputFileError(
                        f"{path}: row 1 is blank; the header must be the first line"
                    )
                header = _name_index_column(fields)
                _check_columns(path, header, "header (row 1)")
                continue
            rows.append((row_no, fields, None))
    except csv.Error as exc:
        raise InputFileError(
            f"{path}: row {row_no + 1} (line {reader.line_num}) is not valid CSV ({exc}); "
            'quote fields that hold commas, quotes or line breaks, doubling inner quotes ("")'
        ) from exc
    finally:
        csv.field_size_limit(old_limit)
    assert header is not None
    n = len(header)
    out = []
    for row_no, fields, _ in rows:
        if not fields:
            out.append((row_no, None, "blank line"))
        elif len(fields) != n:
            hint = (
                " (a trailing delimiter at the end of the row?)"
                if len(fields) > n and all(f == "" for f in fields[n:])
                else ""
            )
            out.append((row_no, fields, f"{len(fields)} fields, the header has {n}{hint}"))
        else:
            out.append((row_no, fields, None))
    return header, out


def _read_jsonl(path: Path, text: str) -> tuple[list[str], list[tuple[int, Any, str | None]]]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line does not start another
    if not any(line.strip() for line in lines):
        raise _empty(path)
    columns: dict[str, None] = {}
    out: list[tuple[int, Any, str | None]] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            out.append((n, line, "blank line"))
            continue
        try:
            obj = json.loads(line, strict=False)
        except json.JSONDecodeError as exc:
            out.append((n, line, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        if not isinstance(obj, dict):
            out.append((n, line, f"a JSON {type(obj).__name__}, not an object"))
            continue
        for key in obj:
            columns.setdefault(key, None)
        out.append((n, obj, None))
    names = list(columns)
    if not names:
        shown = "; ".join(f"line {n}: {p}" for n, _, p in out[:3])
        raise InputFileError(f"{path}: no line holds a JSON object ({shown})")
    _check_columns(path, names, "JSON keys")
    return names, out


def _read_parquet(path: Path) -> tuple[list[str], dict[str, list[Any]], int]:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputFileError(f"{path}: not a readable parquet file ({exc})") from exc
    names = list(table.column_names)
    _check_columns(path, names, "parquet schema")
    if table.num_rows == 0:
        raise InputFileError(f"{path}: the table has no rows")
    try:
        values = {name: table.column(k).to_pylist() for k, name in enumerate(names)}
    except (pa.ArrowException, UnicodeDecodeError, ValueError) as exc:
        raise InputFileError(f"{path}: cannot read the cells ({exc})") from exc
    return names, values, table.num_rows


def read_user_file(path: Path) -> UserTable:
    """Read a user's table: every data row kept, cells verbatim, rows numbered."""
    path = Path(path)
    fmt = file_format(path)
    if path.is_dir():
        raise InputFileError(f"{path}: is a directory; give a .csv, .jsonl or .parquet file")
    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    blob = path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if fmt == "parquet":
        if not blob:
            raise _empty(path)
        names, values, n = _read_parquet(path)
        source_rows = tuple(range(1, n + 1))
        problems: tuple[str | None, ...] = (None,) * n
        raw: tuple[Any, ...] = (None,) * n
    else:
        text = _decoded(path, blob)
        if fmt == "csv":
            names, parsed = _read_csv(path, text)
            values = {name: [] for name in names}
            for _, fields, problem in parsed:
                ok = problem is None and fields is not None
                for k, name in enumerate(names):
                    values[name].append(fields[k] if ok else None)
        else:
            names, parsed = _read_jsonl(path, text)
            values = {name: [] for name in names}
            for _, obj, problem in parsed:
                for name in names:
                    values[name].append(obj.get(name) if problem is None else None)
        source_rows = tuple(r for r, _, _ in parsed)
        problems = tuple(p for _, _, p in parsed)
        raw = tuple(None if p is None else content for _, content, p in parsed)
        if not source_rows:
            raise InputFileError(f"{path}: a header but no data rows")
    frame = pd.DataFrame(
        {name: pd.Series(values[name], dtype=object) for name in names},
        index=pd.RangeIndex(len(source_rows)),
    )
    return UserTable(
        path=path,
        sha256=digest,
        format=fmt,
        columns=tuple(names),
        frame=frame,
        source_rows=source_rows,
        problems=problems,
        raw=raw,
    )
