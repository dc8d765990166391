"""The adapter registry and the raw-file readers every adapter shares.

The readers decode with ``surrogateescape`` and number rows as the source file does, so
that invalid UTF-8 and bad rows reach the quality checks instead of crashing an adapter.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from harmtrace.errors import HarmtraceError

Adapter = Callable[[dict[str, Path]], pd.DataFrame]
ADAPTERS: dict[str, Adapter] = {}


class AdapterError(HarmtraceError):
    """A raw file does not have the structure its adapter expects."""


def adapter(name: str) -> Callable[[Adapter], Adapter]:
    def register(fn: Adapter) -> Adapter:
        ADAPTERS[name] = fn
        return fn

    return register


def text_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    return raw.decode("utf-8", "surrogateescape").split("\n")


def jsonl_rows(path: Path) -> list[tuple[int, dict]]:
    rows = []
    for n, line in enumerate(text_lines(path), start=1):
        if not line.strip():
            continue
        try:
            rows.append((n, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise AdapterError(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
    return rows


def csv_table(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding_errors="surrogateescape")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise AdapterError(f"{path}: missing column(s) {missing}; found {list(df.columns)}")
    df["_source_row"] = range(2, len(df) + 2)  # 1-based, after the header line
    return df


def json_objects(path: Path) -> list[dict]:
    try:
        items = json.loads(path.read_bytes().decode("utf-8", "surrogateescape"))
    except json.JSONDecodeError as exc:
        raise AdapterError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise AdapterError(f"{path}: expected a JSON list of objects")
    return items


def pick_file(files: dict[str, Path], *names: str) -> tuple[str, Path]:
    for name in names:
        if name in files:
            return name, files[name]
    raise AdapterError(f"expected one of {list(names)} among fetched files {list(files)}")
