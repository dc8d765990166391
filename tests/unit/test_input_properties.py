"""Property tests: any Unicode text survives CSV, JSONL and parquet into the records.

For arbitrary text (NUL, zero-width and direction marks, quotes, line breaks, commas,
leading and trailing spaces, astral characters) written by the usual writers, every row
comes back as a record whose prompt and response are byte-identical to what was written,
or is quarantined because its prompt shows nothing; rows in = records + quarantined.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harmtrace.data.normalize import (
    BadRowsError,
    is_blank,
    normalize_user_file,
    quarantine_lines,
    read_texts,
    write_normalized,
)
from harmtrace.data.provenance import read_records

SPECIAL = [
    "\x00", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u200e", "\u200f", "\u202e",
    "\u061c", '"', "'", "\n", "\r", ",", ";", " ", "\t", "\u00a0", "\u2028", "\\",
    "é", "😀", "\U0010fffd",
]  # fmt: skip
TEXT = st.text(
    alphabet=st.one_of(st.characters(codec="utf-8"), st.sampled_from(SPECIAL)), max_size=24
)
ROWS = st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=8)
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _write(fmt: str, rows: list[tuple[str, str]], path: Path, variant: int) -> None:
    if fmt == "csv":
        # Python's writer quotes a bare CR only when CR is in its line terminator, so
        # the LF variant quotes every field (an unquoted CR is a line break in CSV)
        buf = io.StringIO(newline="")
        if variant % 2:
            writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
        else:
            writer = csv.writer(buf)
        writer.writerow(["prompt", "response"])
        writer.writerows(rows)
        data = buf.getvalue().encode("utf-8")
    elif fmt == "jsonl":
        data = "".join(
            json.dumps({"prompt": p, "response": r}, ensure_ascii=bool(variant % 2)) + "\n"
            for p, r in rows
        ).encode("utf-8")
    else:
        pq.write_table(
            pa.table({"prompt": [p for p, _ in rows], "response": [r for _, r in rows]}), path
        )
        return
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".jsonl", ".parquet"])
@SETTINGS
@given(rows=ROWS, variant=st.integers(0, 1))
def test_text_round_trips_byte_identical(suffix, rows, variant):
    fmt = suffix.split(".")[1]
    kept = [i for i, (p, _) in enumerate(rows) if not is_blank(p)]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"in{suffix}"
        _write(fmt, rows, src, variant)
        if not kept:
            with pytest.raises(BadRowsError, match="no row is left"):
                normalize_user_file(src, "prop", "prompt", "response", bad_rows="quarantine")
            return
        res = normalize_user_file(src, "prop", "prompt", "response", bad_rows="quarantine")
        assert len(res.records) + len(res.quarantined) == len(rows)
        out = Path(tmp) / "out.parquet"
        write_normalized(res, out, Path(tmp) / "q.jsonl")
        back = read_records(out, "prop")
    want_p = [rows[i][0].encode("utf-8") for i in kept]
    want_r = [rows[i][1].encode("utf-8") for i in kept]
    assert [p.encode("utf-8") for p in back["prompt"]] == want_p
    assert [r.encode("utf-8") for r in back["response"]] == want_r
    assert back["item_id"].tolist() == [f"{i:06d}" for i in kept]
    first = 2 if fmt == "csv" else 1  # CSV counts the header as row 1
    bad = [i for i in range(len(rows)) if i not in kept]
    assert res.quarantined["source_row"].tolist() == [i + first for i in bad]


@SETTINGS
@given(rows=ROWS)
def test_grade_input_texts_round_trip(rows):
    kept = [i for i, (p, _) in enumerate(rows) if not is_blank(p)]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.csv"
        _write("csv", rows, src, 0)
        if not kept:
            with pytest.raises(BadRowsError):
                read_texts(src, "prompt", bad_rows="quarantine")
            return
        texts = read_texts(src, "prompt", bad_rows="quarantine")
    assert texts.texts["text"].tolist() == [rows[i][0] for i in kept]
    assert texts.texts["id"].tolist() == [str(i) for i in kept]
    assert texts.texts["source_row"].tolist() == [i + 2 for i in kept]
    assert len(texts.texts) + len(texts.quarantined) == len(rows)


ANY_CHAR = st.characters(codec=None, categories=None)  # includes lone surrogates


@SETTINGS
@given(prompts=st.lists(st.text(alphabet=ANY_CHAR, min_size=1, max_size=12), min_size=1))
def test_lone_surrogates_are_quarantined_never_crash_or_vanish(prompts):
    def bad(p: str) -> bool:
        return is_blank(p) or any(0xD800 <= ord(c) <= 0xDFFF for c in p)

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.jsonl"
        src.write_text("".join(json.dumps({"p": p}) + "\n" for p in prompts), encoding="ascii")
        if all(bad(p) for p in prompts):
            with pytest.raises(BadRowsError):
                normalize_user_file(src, "sur", "p", bad_rows="quarantine")
            return
        res = normalize_user_file(src, "sur", "p", bad_rows="quarantine")
    assert res.records["prompt"].tolist() == [p for p in prompts if not bad(p)]
    assert res.quarantined["source_row"].tolist() == [
        n for n, p in enumerate(prompts, start=1) if bad(p)
    ]
    for line in quarantine_lines(res.quarantined):
        line.encode("utf-8")  # the side file is valid UTF-8
        assert json.loads(line)["dataset"] == "sur"


@SETTINGS
@given(
    cells=st.lists(st.binary(min_size=1, max_size=10).filter(lambda b: b"\n" not in b), min_size=1)
)
def test_undecodable_bytes_are_quarantined_by_row(cells):
    def decodes(b: bytes) -> bool:
        try:
            b.decode("utf-8")
            return True
        except UnicodeDecodeError:
            return False

    lines = [b'"' + c.replace(b'"', b'""').replace(b"\r", b"") + b'"' for c in cells]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.csv"
        src.write_bytes(b"p\n" + b"\n".join(lines) + b"\n")
        try:
            res = normalize_user_file(src, "bytes", "p", bad_rows="quarantine")
        except BadRowsError as exc:
            assert "no row is left" in str(exc)
            return
    assert len(res.records) + len(res.quarantined) == len(cells)
    for row, reason in zip(res.quarantined["source_row"], res.quarantined["reason"], strict=True):
        raw = cells[row - 2].replace(b"\r", b"")
        assert (not decodes(raw) and reason.startswith("invalid UTF-8")) or is_blank(
            raw.decode("utf-8", "replace")
        )
