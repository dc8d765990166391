"""Table validation (harmtrace.io.validate, done by pandera): every problem is reported in
the project's own words, naming the column, the rule and example rows."""

from __future__ import annotations

import pandas as pd
import pytest

from harmtrace.io import SchemaError, column_dtypes, column_specs, pandera_schema, validate


def _records(n: int = 3) -> pd.DataFrame:
    cols = {c: pd.array(["x"] * n, dtype=t) for c, t in column_dtypes("records").items()}
    frame = pd.DataFrame(cols)
    frame["record_id"] = pd.array([f"{i:016x}" for i in range(n)], dtype="string")
    return frame


def test_a_valid_table_passes_and_the_contract_is_a_pandera_schema():
    frame = _records().assign(label_harmful=[True, False, True])
    assert validate(frame, "records") is frame
    assert pandera_schema("records").strict is True


def test_every_problem_gets_a_line_with_column_rule_and_rows():
    frame = _records()
    frame.loc[1, "record_id"] = "0123456789abcdeg"
    frame.loc[2, "record_id"] = pd.NA
    frame.loc[0, "prompt"] = ""
    with pytest.raises(SchemaError) as err:
        validate(frame, "records", where="t.parquet")
    assert str(err.value).splitlines() == [
        "t.parquet: column 'record_id' has nulls: 1 row(s), e.g. at index [2]",
        "t.parquet: column 'record_id' does not match '^[0-9a-f]{16}$': 1 row(s), "
        "e.g. at index [1]",
        "t.parquet: column 'prompt' shorter than 1: 1 row(s), e.g. at index [0]",
    ]


def test_a_pattern_must_match_the_whole_value():
    frame = _records()
    frame.loc[0, "record_id"] = "0123456789abcdef\n"
    with pytest.raises(SchemaError, match=r"'record_id' does not match .*index \[0\]"):
        validate(frame, "records")


@pytest.mark.parametrize("dtype", ["str", object])
def test_a_string_column_must_have_the_nullable_string_dtype(dtype):
    frame = _records().astype({"prompt": dtype})
    with pytest.raises(SchemaError, match=r"'prompt' has dtype (str|object), expected string$"):
        validate(frame, "records")


def test_duplicates_and_missing_and_unexpected_columns():
    frame = _records()
    frame.loc[2, "record_id"] = frame.loc[0, "record_id"]
    with pytest.raises(SchemaError, match=r"'record_id' has duplicates: 1 row\(s\).*\[2\]$"):
        validate(frame, "records")
    with pytest.raises(SchemaError, match=r"^table 'records': missing column\(s\) \['prompt'\]$"):
        validate(_records().drop(columns=["prompt"]), "records")
    with pytest.raises(SchemaError, match=r"unexpected column\(s\) \['x'\] \(extra columns must"):
        validate(_records().assign(x=1), "records")


def test_severity_ranges_and_enums_name_the_rows():
    cols = {}
    for col, spec in column_specs("judgments").items():
        dtype = column_dtypes("judgments")[col]
        value = spec["enum"][0] if "enum" in spec else spec.get("minimum", "x")
        value = f"{0:016x}" if "pattern" in spec else value
        cols[col] = pd.array([True if dtype == "boolean" else value], dtype=dtype)
    frame = pd.DataFrame(cols)
    validate(frame, "judgments")
    frame.loc[0, "prompt_last_turn_severity"] = 9
    frame.loc[0, "status"] = "weird"
    with pytest.raises(SchemaError) as err:
        validate(frame, "judgments")
    assert str(err.value).splitlines() == [
        "table 'judgments': column 'status' not in ['ok', 'failed']: 1 row(s), e.g. at index [0]",
        "table 'judgments': column 'prompt_last_turn_severity' outside maximum 3: 1 row(s), "
        "e.g. at index [0]",
    ]


@pytest.mark.parametrize("content", [b"", b'{"shards": 2}\n', b"PAR1 truncated"])
def test_a_file_that_is_not_parquet_is_named_not_left_to_pyarrow(tmp_path, content):
    from harmtrace.io import read_table, read_table_metadata, table_rows

    path = tmp_path / "plan.json"
    path.write_bytes(content)
    for read in (lambda p: read_table(p, "records"), read_table_metadata, table_rows):
        with pytest.raises(SchemaError, match=r"plan\.json: not a parquet table"):
            read(path)
    with pytest.raises(SchemaError, match="no such table"):
        read_table(tmp_path / "absent.parquet", "records")
