"""Declarative table schemas, checked whenever the DAG writes or reads a table.

A schema (YAML under ``harmtrace/schemas/``) names each column's type,
nullability and constraints. Checks are vectorised, so validating a table
costs milliseconds, and a failure names the table, the column and example rows.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from harmtrace.errors import HarmtraceError
from harmtrace.taxonomy import CATEGORIES, SIDES

_DTYPES = {
    "string": "string",
    "int8": "Int8",
    "int64": "Int64",
    "float": "Float64",
    "boolean": "boolean",
}


class SchemaError(HarmtraceError):
    """A table does not match its declared schema."""


@cache
def load_schema(name: str) -> dict[str, Any]:
    text = resources.files("harmtrace.schemas").joinpath(f"{name}.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def _examples(mask: pd.Series, limit: int = 5) -> str:
    idx = list(mask[mask].index[:limit])
    return f"{int(mask.sum())} row(s), e.g. at index {idx}"


def _check_column(where: str, col: str, s: pd.Series, spec: dict[str, Any]) -> None:
    want = _DTYPES[spec["type"]]
    if str(s.dtype) != want:
        raise SchemaError(f"{where}: column {col!r} has dtype {s.dtype}, expected {want}")
    null = s.isna()
    if not spec.get("nullable", True) and null.any():
        raise SchemaError(f"{where}: column {col!r} has nulls: {_examples(null)}")
    present = s[~null]
    if spec.get("unique") and present.duplicated().any():
        raise SchemaError(f"{where}: column {col!r} has duplicates: {_examples(s.duplicated())}")
    if "pattern" in spec:
        bad = ~present.str.fullmatch(spec["pattern"]).astype(bool)
        if bad.any():
            raise SchemaError(
                f"{where}: column {col!r} does not match {spec['pattern']!r}: {_examples(bad)}"
            )
    if "min_length" in spec:
        bad = present.str.len() < spec["min_length"]
        if bad.any():
            raise SchemaError(
                f"{where}: column {col!r} shorter than {spec['min_length']}: {_examples(bad)}"
            )
    for bound, op in (("minimum", "lt"), ("maximum", "gt")):
        if bound in spec:
            bad = getattr(present, op)(spec[bound])
            if bad.any():
                raise SchemaError(
                    f"{where}: column {col!r} outside {bound} {spec[bound]}: {_examples(bad)}"
                )
    if "enum" in spec:
        bad = ~present.isin(spec["enum"])
        if bad.any():
            raise SchemaError(f"{where}: column {col!r} not in {spec['enum']}: {_examples(bad)}")


def _expand(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Concrete column specs in table order; ``templated_columns`` names expand once per
    side (``{side}``: prompt, response) and harm category (``{category}``) they contain."""
    specs = dict(schema["columns"])
    for template, spec in (schema.get("templated_columns") or {}).items():
        sides = SIDES if "{side}" in template else ("",)
        categories = CATEGORIES if "{category}" in template else ("",)
        for side in sides:
            for category in categories:
                name = template.format(side=side, category=category)
                specs[name] = {k: _sided(v, side) for k, v in spec.items()}
    return specs


def _sided(value: Any, side: str) -> Any:
    """Per-side overrides: ``nullable: {prompt: false, response: true}``."""
    return value.get(side, value) if isinstance(value, dict) and side in value else value


def column_specs(schema_name: str) -> dict[str, dict[str, Any]]:
    """Every concrete column of a table schema with its spec, in table order."""
    return _expand(load_schema(schema_name))


def column_dtypes(schema_name: str) -> dict[str, str]:
    """pandas dtype per column of a table schema (the one place dtypes are decided)."""
    return {col: _DTYPES[spec["type"]] for col, spec in column_specs(schema_name).items()}


def validate(df: pd.DataFrame, schema_name: str, where: str = "") -> pd.DataFrame:
    """Raise :class:`SchemaError` unless ``df`` satisfies the named schema; return ``df``."""
    schema = load_schema(schema_name)
    where = where or f"table {schema_name!r}"
    specs = _expand(schema)
    required = [c for c, s in specs.items() if s.get("required", True)]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise SchemaError(f"{where}: missing column(s) {missing}")
    prefixes = tuple((schema.get("extra_columns") or {}).get("prefixes", ()))
    extra = [c for c in df.columns if c not in specs and not c.startswith(prefixes)]
    if extra:
        allowed = f" (extra columns must start with one of {list(prefixes)})" if prefixes else ""
        raise SchemaError(f"{where}: unexpected column(s) {extra}{allowed}")
    for col, spec in specs.items():
        if col in df.columns:
            _check_column(where, col, df[col], spec)
            _check_required_when(where, col, df, spec)
    return df


def _check_required_when(where: str, col: str, df: pd.DataFrame, spec: dict[str, Any]) -> None:
    """``required_when: {status: ok}``: no nulls in rows where another column has that value."""
    for other, value in (spec.get("required_when") or {}).items():
        bad = df[col].isna() & (df[other] == value).fillna(False).astype(bool)
        if bad.any():
            raise SchemaError(
                f"{where}: column {col!r} is null where {other} == {value!r}: {_examples(bad)}"
            )


def check_output_file(path: Path, option: str = "output") -> Path:
    """Fail early and clearly when ``path`` cannot become a file: it is a directory, or
    one of its parents is a file. Creates the missing parent folders."""
    path = Path(path)
    if path.is_dir():
        raise HarmtraceError(f"{option} {path} is a directory; give a file name")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise HarmtraceError(
                    f"{option} {path}: {parent} is a file, not a folder; choose another path"
                )
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_table(
    df: pd.DataFrame, path: Path, schema_name: str, metadata: dict[str, str] | None = None
) -> None:
    """Validate, then write parquet atomically with deterministic bytes.

    ``metadata`` (string keys and values) is stored in the parquet schema beside pandas'
    own; :func:`read_table_metadata` reads it back.
    """
    validate(df, schema_name, where=str(path))
    check_output_file(path)
    tmp = path.with_name(f".{path.name}.part")
    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    if metadata:
        merged = dict(table.schema.metadata or {})
        merged.update({k.encode(): v.encode() for k, v in sorted(metadata.items())})
        table = table.replace_schema_metadata(merged)
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)


def read_table_metadata(path: Path) -> dict[str, str]:
    """The string key-value metadata a table was written with (pandas' own left out)."""
    if not Path(path).is_file():
        raise SchemaError(f"{path}: no such table")
    meta = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items() if k != b"pandas"}


def read_table(path: Path, schema_name: str) -> pd.DataFrame:
    """Read parquet with nullable dtypes and validate it before anyone uses it."""
    if not Path(path).is_file():
        raise SchemaError(f"{path}: no such table")
    df = pq.read_table(path).to_pandas(types_mapper=_nullable_type)
    return validate(df, schema_name, where=str(path))


def _nullable_type(t: pa.DataType) -> Any:
    mapping = {
        pa.string(): pd.StringDtype(),
        pa.large_string(): pd.StringDtype(),
        pa.int8(): pd.Int8Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.float64(): pd.Float64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }
    return mapping.get(t)


def table_rows(path: Path) -> int:
    """Number of rows of a parquet table, from its footer (nothing else is read)."""
    if not Path(path).is_file():
        raise SchemaError(f"{path}: no such table")
    return pq.ParquetFile(path).metadata.num_rows


def read_table_rows(
    path: Path, schema_name: str, start: int, stop: int, batch_rows: int = 8192
) -> pd.DataFrame:
    """Rows ``start:stop`` of a parquet table, validated; the file is streamed in batches
    and only the slice is kept, so memory follows the slice, not the table."""
    if not Path(path).is_file():
        raise SchemaError(f"{path}: no such table")
    pf = pq.ParquetFile(path)
    kept = []
    pos = 0
    if stop > start:
        for batch in pf.iter_batches(batch_size=batch_rows):
            end = pos + batch.num_rows
            if end > start and pos < stop:
                lo = max(start - pos, 0)
                kept.append(batch.slice(lo, min(stop, end) - pos - lo))
            pos = end
            if pos >= stop:
                break
    table = pa.Table.from_batches(kept, schema=pf.schema_arrow)
    df = table.to_pandas(types_mapper=_nullable_type)
    return validate(df, schema_name, where=f"{path} rows {start}-{stop}")
