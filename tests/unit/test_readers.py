"""Readers of user files: cells verbatim, every row numbered, whole-file faults named."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harmtrace.data.readers import InputFileError, read_user_file


def _write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def test_csv_cells_are_verbatim_and_rows_numbered_like_a_spreadsheet(tmp_path):
    src = _write(
        tmp_path / "t.csv",
        'a,b\n" lead","trail "\n"multi\r\nline","with ""quotes"", and commas"\n\nx,\x00\n',
    )
    t = read_user_file(src)
    assert t.columns == ("a", "b") and t.format == "csv" and t.row_word == "row"
    assert t.source_rows == (2, 3, 4, 5)
    assert t.frame["a"].tolist() == [" lead", "multi\r\nline", None, "x"]
    assert t.frame["b"].tolist() == ["trail ", 'with "quotes", and commas', None, "\x00"]
    assert t.problems == (None, None, "blank line", None)


def test_csv_first_column_is_never_an_index(tmp_path):
    t = read_user_file(_write(tmp_path / "t.csv", "p,r\nx,y,\n1,2\n"))
    assert t.frame["p"].tolist() == [None, "1"]
    assert t.problems[0] == (
        "3 fields, the header has 2 (a trailing delimiter at the end of the row?)"
    )
    assert t.raw[0] == ["x", "y", ""]


def test_a_pandas_index_column_is_read_as_a_column(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"prompt": ["a, b", "c"], "response": ["x", "y"]}, index=[7, 9])
    frame.to_csv(tmp_path / "t.csv")  # header ",prompt,response", as HateCheck ships
    t = read_user_file(tmp_path / "t.csv")
    assert t.columns == ("index", "prompt", "response")
    assert t.frame["index"].tolist() == ["7", "9"]  # kept, verbatim
    assert t.frame["prompt"].tolist() == ["a, b", "c"]
    assert t.problems == (None, None)
    taken = read_user_file(_write(tmp_path / "u.csv", ",index,p\n0,5,x\n"))
    assert taken.columns == ("Unnamed: 0", "index", "p")


@pytest.mark.parametrize("header", [",p,", "p,,q", ","])
def test_other_unnamed_columns_are_still_refused(tmp_path, header):
    src = _write(tmp_path / "t.csv", f"{header}\n" + ",".join("x" * (header.count(",") + 1)))
    with pytest.raises(InputFileError, match="has no name"):
        read_user_file(src)


def test_csv_too_few_fields_is_a_problem_row(tmp_path):
    t = read_user_file(_write(tmp_path / "t.csv", "p,r,s\nx,y\n"))
    assert t.problems == ("2 fields, the header has 3",)


def test_a_utf8_bom_is_removed_from_the_start_only(tmp_path):
    t = read_user_file(_write(tmp_path / "t.csv", "\ufeffp\n\ufeffkeep\n"))
    assert t.columns == ("p",) and t.frame["p"].tolist() == ["\ufeffkeep"]


def test_undecodable_bytes_survive_as_surrogates(tmp_path):
    t = read_user_file(_write(tmp_path / "t.csv", b"p\nbad \xff byte\n"))
    assert t.frame["p"].tolist() == ["bad \udcff byte"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "the file is empty"),
        ("  \n\n", "the file is empty"),
        ("p\n", "a header but no data rows"),
        ("\np\nx\n", "row 1 is blank"),
        ("p,\nx,\n", "column 2 of the header .* has no name"),
        ("p,q,p\n1,2,3\n", r"duplicate column name\(s\) 'p' \(columns 1 and 3\)"),
        ('p\n"open quote\n', r"row 2 \(line \d+\) is not valid CSV"),
        ('p\n"x"y\n', r"row 2 \(line 2\) is not valid CSV"),
    ],
)
def test_csv_faults_that_make_the_file_unreadable_name_the_file(tmp_path, text, match):
    src = _write(tmp_path / "bad.csv", text)
    with pytest.raises(InputFileError, match=match) as err:
        read_user_file(src)
    assert str(src) in str(err.value)


def test_invalid_utf8_in_the_header_is_an_error(tmp_path):
    with pytest.raises(InputFileError, match="column 1 of the header .* not valid UTF-8"):
        read_user_file(_write(tmp_path / "t.csv", b"p\xff\nx\n"))


def test_jsonl_keeps_types_and_numbers_lines(tmp_path):
    src = _write(
        tmp_path / "t.jsonl", '{"p": "a", "n": 1}\r\n\n{"p": [1], "m": null}\n{"p": "\\u0000"}'
    )
    t = read_user_file(src)
    assert t.columns == ("p", "n", "m") and t.row_word == "line"
    assert t.source_rows == (1, 2, 3, 4)
    assert t.frame["p"].tolist() == ["a", None, [1], "\x00"]
    assert t.frame["n"].tolist() == [1, None, None, None]
    assert t.problems == (None, "blank line", None, None)


def test_jsonl_without_any_object_is_an_error(tmp_path):
    with pytest.raises(InputFileError, match="no line holds a JSON object .*line 1: not valid"):
        read_user_file(_write(tmp_path / "t.jsonl", "nope\n"))


def test_gzipped_files(tmp_path):
    src = _write(tmp_path / "t.jsonl.gz", gzip.compress(b'{"p": "x"}\n'))
    assert read_user_file(src).frame["p"].tolist() == ["x"]
    src = _write(tmp_path / "t.csv.gz", gzip.compress(b"p\ny\n"))
    assert read_user_file(src).frame["p"].tolist() == ["y"]
    with pytest.raises(InputFileError, match="not a readable gzip file"):
        read_user_file(_write(tmp_path / "u.csv.gz", b"p\ny\n"))


def test_parquet_values_as_python_objects(tmp_path):
    src = tmp_path / "t.parquet"
    pq.write_table(pa.table({"p": ["a", None], "n": [1, 2], "b": pa.array([b"\x00", None])}), src)
    t = read_user_file(src)
    assert t.source_rows == (1, 2)
    assert t.frame["p"].tolist() == ["a", None]
    assert t.frame["n"].tolist() == [1, 2]
    assert t.frame["b"].tolist() == [b"\x00", None]


def test_parquet_faults(tmp_path):
    empty = tmp_path / "e.parquet"
    pq.write_table(pa.table({"p": pa.array([], type=pa.string())}), empty)
    with pytest.raises(InputFileError, match="e.parquet: the table has no rows"):
        read_user_file(empty)
    with pytest.raises(InputFileError, match="the file is empty"):
        read_user_file(_write(tmp_path / "z.parquet", b""))
    with pytest.raises(InputFileError, match="not a readable parquet file"):
        read_user_file(_write(tmp_path / "x.parquet", b"not parquet"))


def test_unsupported_type_missing_file_and_directory(tmp_path):
    with pytest.raises(InputFileError, match="unsupported file type '.xlsx'"):
        read_user_file(tmp_path / "x.xlsx")
    with pytest.raises(InputFileError, match="no such file"):
        read_user_file(tmp_path / "x.csv")
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(InputFileError, match="is a directory"):
        read_user_file(tmp_path / "d.csv")


def test_sha256_is_of_the_bytes_on_disk(tmp_path):
    import hashlib

    blob = gzip.compress(b"p\ny\n")
    src = _write(tmp_path / "t.csv.gz", blob)
    assert read_user_file(src).sha256 == hashlib.sha256(blob).hexdigest()


def test_raw_control_characters_in_json_strings_are_kept(tmp_path):
    src = _write(tmp_path / "T.JSONL", '{"p": "tab\there nul\x00 cr\r"}\r\n')
    assert read_user_file(src).frame["p"].tolist() == ["tab\there nul\x00 cr\r"]
