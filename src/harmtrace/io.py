"""Declarative table schemas, checked whenever the DAG writes or reads a table.

A schema (YAML under ``harmtrace/schemas/``) names each column's type,
nullability and constraints; :func:`pandera_schema` turns it into a pandera
``DataFrameSchema``, which does the checking (vectorised: milliseconds a table).
pandera's findings are translated back into :class:`SchemaError` messages that
name the table, the column, the rule broken and example rows, every problem at once.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pdv
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from pandera.errors import SchemaErrorReason, SchemaErrors

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


def _column(spec: dict[str, Any]) -> pdv.Column:
    """One column's contract. The dtype is compared by its pandas name, as pandera's own
    dtype check would take pandas 3's NaN-based ``str`` for ``string``."""
    want = _DTYPES[spec["type"]]
    checks = [
        pdv.Check(lambda s, w=want: str(s.dtype) == w, name="dtype", error=want, ignore_na=False)
    ]
    if "pattern" in spec:
        full = f"(?:{spec['pattern']})\\Z"  # re.match up to the very end: a full match
        checks.append(pdv.Check.str_matches(full, error=f"does not match {spec['pattern']!r}"))
    if "min_length" in spec:
        n = spec["min_length"]
        checks.append(pdv.Check.str_length(min_value=n, error=f"shorter than {n}"))
    if "minimum" in spec:
        checks.append(pdv.Check.ge(spec["minimum"], error=f"outside minimum {spec['minimum']}"))
    if "maximum" in spec:
        checks.append(pdv.Check.le(spec["maximum"], error=f"outside maximum {spec['maximum']}"))
    if "enum" in spec:
        checks.append(pdv.Check.isin(spec["enum"], error=f"not in {spec['enum']}"))
    return pdv.Column(
        checks=checks,
        nullable=spec.get("nullable", True),
        unique=bool(spec.get("unique")),
        report_duplicates="exclude_first",
        required=spec.get("required", True),
    )


def _required_when(col: str, other: str, value: Any) -> pdv.Check:
    """``required_when: {status: ok}``: no nulls in ``col`` where ``other == value``."""
    return pdv.Check(
        lambda df: ~(df[col].isna() & (df[other] == value).fillna(False).astype(bool)),
        name=f"required_when:{col}",
        error=f"is null where {other} == {value!r}",
    )


@cache
def pandera_schema(schema_name: str) -> pdv.DataFrameSchema:
    """The pandera form of a table schema: its columns, plus any column starting with one
    of ``extra_columns.prefixes``; every other column is refused (strict)."""
    schema = load_schema(schema_name)
    specs = _expand(schema)
    columns = {col: _column(spec) for col, spec in specs.items()}
    prefixes = _extra_prefixes(schema_name)
    if prefixes:
        pattern = "^(?:" + "|".join(re.escape(p) for p in prefixes) + ")"
        columns[pattern] = pdv.Column(regex=True, required=False, nullable=True)
    wide = [
        _required_when(col, other, value)
        for col, spec in specs.items()
        for other, value in (spec.get("required_when") or {}).items()
    ]
    return pdv.DataFrameSchema(columns, checks=wide, strict=True, name=schema_name)


def _extra_prefixes(schema_name: str) -> tuple[str, ...]:
    return tuple((load_schema(schema_name).get("extra_columns") or {}).get("prefixes", ()))


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
    """Raise :class:`SchemaError` unless ``df`` satisfies the named schema; return ``df``.
    The message has one line per problem, each naming the column and example rows."""
    where = where or f"table {schema_name!r}"
    try:
        pandera_schema(schema_name).validate(df, lazy=True)
    except SchemaErrors as exc:
        raise SchemaError("\n".join(_problems(exc, df, schema_name, where))) from None
    return df


def _check_name(err: Any) -> str:
    return err.check if isinstance(err.check, str) else (err.check.name or "")


def _problems(exc: SchemaErrors, df: pd.DataFrame, schema_name: str, where: str) -> list[str]:
    """pandera's findings as this project's messages, in table order. A missing or
    unexpected column is reported alone (the checks of other columns would only echo
    it), and so is a wrong dtype within its column (its value checks mean nothing)."""
    names = [_check_name(e) for e in exc.schema_errors]
    specs = column_specs(schema_name)
    if "column_in_dataframe" in names:
        missing = [c for c, s in specs.items() if s.get("required", True) and c not in df]
        return [f"{where}: missing column(s) {missing}"]
    if "column_in_schema" in names:
        prefixes = _extra_prefixes(schema_name)
        extra = [c for c in df.columns if c not in specs and not str(c).startswith(prefixes)]
        allowed = f" (extra columns must start with one of {list(prefixes)})" if prefixes else ""
        return [f"{where}: unexpected column(s) {extra}{allowed}"]
    found: dict[str, list[tuple[bool, str]]] = {}
    for err, name in zip(exc.schema_errors, names, strict=True):
        col = err.column_name or name.removeprefix("required_when:")
        found.setdefault(col, []).append((name == "dtype", _problem(err, name, col, df, where)))
    order = {c: i for i, c in enumerate(specs)}
    lines = []
    for col in sorted(found, key=lambda c: order.get(c, len(order))):
        wrong_dtype = [m for is_dtype, m in found[col] if is_dtype]
        lines.extend(wrong_dtype or [m for _, m in found[col]])
    return lines


def _problem(err: Any, name: str, col: str, df: pd.DataFrame, where: str) -> str:
    """One pandera finding as a line: the column, the rule, how many rows and which."""
    if name == "dtype":
        return f"{where}: column {col!r} has dtype {df[col].dtype}, expected {err.check.error}"
    fixed = {"not_nullable": "has nulls", "field_uniqueness": "has duplicates"}
    rule = fixed.get(name) or getattr(err.check, "error", None) or name
    cases = err.failure_cases
    if err.reason_code == SchemaErrorReason.CHECK_ERROR or not isinstance(cases, pd.DataFrame):
        return f"{where}: column {col!r}: the check {rule!r} could not run ({cases})"
    index = list(dict.fromkeys(cases["index"].tolist()))
    return f"{where}: column {col!r} {rule}: {len(index)} row(s), e.g. at index {index[:5]}"


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
    _check_parquet(path)
    meta = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items() if k != b"pandas"}


def read_table(path: Path, schema_name: str) -> pd.DataFrame:
    """Read parquet with nullable dtypes and validate it before anyone uses it."""
    _check_parquet(path)
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
    _check_parquet(path)
    return pq.ParquetFile(path).metadata.num_rows


def _check_parquet(path: Path) -> None:
    """A missing file or one that is not parquet (a plan, a half-written copy) is named as
    such, not left to pyarrow's traceback about footers."""
    if not Path(path).is_file():
        raise SchemaError(f"{path}: no such table")
    try:
        pq.read_metadata(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SchemaError(f"{path}: not a parquet table ({exc})") from exc


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
