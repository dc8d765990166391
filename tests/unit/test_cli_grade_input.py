"""`harmtrace grade --input`: every row graded or reported by its row number, clear errors.

A small embedded grader (TF-IDF, two inner folds) is fitted once on a stratified subset
of the mirrored OpenAI moderation records.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from harmtrace.cli import app
from harmtrace.graders.embedded import EmbeddedGrader
from tests.devdata import mirror_records

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def model_dir(mirror, tmp_path_factory):
    recs = mirror_records("openai-moderation", mirror)
    rare = (recs["label_SH"].fillna(False) | recs["label_V"].fillna(False)).to_numpy(bool)
    keep = np.sort(np.concatenate([np.flatnonzero(rare), np.flatnonzero(~rare)[::6]]))
    directory = tmp_path_factory.mktemp("grade_input") / "model"
    EmbeddedGrader(extractor="tfidf", inner_splits=2).fit(recs.iloc[keep]).save(directory)
    return directory


def _grade(src, out, model_dir, *extra):
    return invoke(
        "grade", "--input", src, "--text-column", "text", "--output", out,
        "--model-dir", model_dir, *extra,
    )  # fmt: skip


def test_blank_rows_are_reported_and_ids_do_not_shift(model_dir, tmp_path):
    src = tmp_path / "g.csv"
    src.write_text("text\nhello\n   \nI will kill you\n")
    out = tmp_path / "o.parquet"
    res = _grade(src, out, model_dir)
    assert res.exit_code == 2
    assert "row 3 (item 1): empty text (no visible characters)" in res.output
    assert not out.exists()
    res = _grade(src, out, model_dir, "--bad-rows", "quarantine")
    assert res.exit_code == 0, res.output
    scores = pd.read_parquet(out)
    assert scores["id"].tolist() == ["0", "2"]
    assert scores["source_row"].tolist() == [2, 4]
    direct = EmbeddedGrader.load(model_dir).score(["hello", "I will kill you"])
    np.testing.assert_allclose(scores["prob_violence"], direct["prob_violence"])
    q = [json.loads(x) for x in (tmp_path / "o.quarantine.jsonl").read_text().splitlines()]
    assert [(x["source_row"], x["item_id"]) for x in q] == [(3, "1")]


def test_duplicate_ids_are_reported_by_row_and_quarantinable(model_dir, tmp_path):
    src = tmp_path / "d.csv"
    src.write_text("uid,text\na,hello\nb,bye\na,again\n")
    out, q = tmp_path / "o.parquet", tmp_path / "bad.jsonl"
    args = ("--id-column", "uid", "--quarantine", q)
    res = _grade(src, out, model_dir, *args)
    assert res.exit_code == 2
    assert "row 4 (item a): duplicate id (column 'uid') 'a' (rows 2, 4)" in res.output
    res = _grade(src, out, model_dir, *args, "--bad-rows", "quarantine")
    assert res.exit_code == 0, res.output
    assert pd.read_parquet(out)["id"].tolist() == ["b"]
    assert [json.loads(x)["source_row"] for x in q.read_text().splitlines()] == [2, 4]


def test_zero_width_text_counts_as_empty(model_dir, tmp_path):
    src = tmp_path / "z.jsonl"
    src.write_text('{"text": "fine"}\n{"text": "\\u200b\\u200d\\ufeff"}\n')
    res = _grade(src, tmp_path / "o.parquet", model_dir)
    assert res.exit_code == 2
    assert "line 2 (item 1): empty text (no visible characters)" in res.output


def test_output_that_is_a_directory(model_dir, tmp_path):
    src = tmp_path / "g.csv"
    src.write_text("text\nhello\n")
    (tmp_path / "out").mkdir()
    res = _grade(src, tmp_path / "out", model_dir)
    assert res.exit_code == 2
    assert f"--output {tmp_path / 'out'} is a directory" in res.output


def test_output_whose_parent_is_a_file(model_dir, tmp_path):
    src = tmp_path / "g.csv"
    src.write_text("text\nhello\n")
    res = _grade(src, src / "o.parquet", model_dir)
    assert res.exit_code == 2
    assert f"{src} is a file, not a folder" in res.output


def test_missing_model_dir(tmp_path):
    src = tmp_path / "g.csv"
    src.write_text("text\nhello\n")
    for model_dir in (tmp_path / "nowhere", tmp_path / "empty_model"):
        res = _grade(src, tmp_path / "o.parquet", model_dir)
        assert res.exit_code == 2
        assert f"no trained embedded grader in {model_dir}" in res.output
        (tmp_path / "empty_model").mkdir(exist_ok=True)


@pytest.mark.parametrize("name", ["e.csv", "e.jsonl"])
def test_empty_input_names_the_file(model_dir, tmp_path, name):
    src = tmp_path / name
    src.write_text("")
    res = _grade(src, tmp_path / "o.parquet", model_dir)
    assert res.exit_code == 2
    assert f"{src}: the file is empty" in res.output
