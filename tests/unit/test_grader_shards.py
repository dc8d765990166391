"""Sharded grading: deterministic slices, streamed reads, gathering with coverage checks."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from harmtrace.cli import app
from harmtrace.errors import HarmtraceError
from harmtrace.graders.shards import Shard, ShardError, gather_judgments, read_shard, shard_count
from harmtrace.io import read_table, read_table_rows, write_table
from harmtrace.taxonomy import CATEGORIES
from tests.devdata import write_user_records
from tests.unit.test_grader_human import labelled

runner = CliRunner()


def records(n: int) -> pd.DataFrame:
    frame = labelled(n=n)
    frame["dataset"] = pd.array(["toy"] * n, dtype="string")
    frame["item_id"] = pd.array([str(i) for i in range(n)], dtype="string")
    frame["context"] = pd.array([""] * n, dtype="string")
    frame["response_source"] = pd.array(["m"] * n, dtype="string")
    for c in frame.columns:
        if c.startswith("user_"):
            frame[c] = frame[c].astype("string")
    return frame


@pytest.mark.parametrize("n", [0, 1, 7, 100])
@pytest.mark.parametrize("count", [1, 3, 8])
def test_shards_partition_the_rows_in_order(n, count):
    parts = [Shard(i, count).bounds(n) for i in range(1, count + 1)]
    rows = [r for a, b in parts for r in range(a, b)]
    assert rows == list(range(n))
    sizes = [b - a for a, b in parts]
    assert max(sizes) - min(sizes) <= 1


def test_shard_parsing_and_counts():
    assert Shard.parse("3/8") == Shard(3, 8) and Shard.parse(" 1 / 1 ").label == "1-of-1"
    for bad in ("0/4", "5/4", "3", "a/b", ""):
        with pytest.raises(ShardError, match="I/N|between 1 and N"):
            Shard.parse(bad)
    assert [shard_count(n, 10) for n in (0, 1, 10, 11, 100)] == [1, 1, 1, 2, 10]
    with pytest.raises(ShardError):
        shard_count(5, 0)


def test_streamed_slices_equal_the_full_read(tmp_path):
    recs = records(50)
    path = tmp_path / "r.parquet"
    write_user_records(recs, path, "toy")
    full = read_table(path, "records")
    for start, stop in [(0, 50), (0, 0), (13, 37), (45, 50), (49, 60)]:
        part = read_table_rows(path, "records", start, stop, batch_rows=7)
        pd.testing.assert_frame_equal(part, full.iloc[start:stop].reset_index(drop=True))
    joined = pd.concat(
        [read_shard(path, Shard(i, 4), dataset="toy") for i in range(1, 5)], ignore_index=True
    )
    pd.testing.assert_frame_equal(joined, full)
    with pytest.raises(HarmtraceError, match="holds dataset 'toy', expected 'other'"):
        read_shard(path, Shard(1, 4), dataset="other")
    plain = tmp_path / "plain.parquet"
    write_table(recs, plain, "records")
    with pytest.raises(HarmtraceError, match="no provenance"):
        read_shard(plain, Shard(1, 2))


def test_cli_shards_gather_to_the_unsharded_judgments(tmp_path):
    recs = records(23)
    path = tmp_path / "records" / "toy.parquet"
    write_user_records(recs, path, "toy")
    whole = tmp_path / "whole.parquet"
    res = runner.invoke(app, ["grade", "toy", "--grader", "human", "--records", str(path),
                              "--out", str(whole)])  # fmt: skip
    assert res.exit_code == 0, res.output
    shards = []
    for i in (1, 2, 3):
        out = tmp_path / f"shard-{i}.parquet"
        res = runner.invoke(app, ["grade", "toy", "--grader", "human", "--records", str(path),
                                  "--shard", f"{i}/3", "--out", str(out)])  # fmt: skip
        assert res.exit_code == 0, res.output
        assert len(read_table(out, "judgments")) in (7, 8)
        shards.append(out)
    gathered = tmp_path / "gathered.parquet"
    # shard order on the command line does not matter with --records
    res = runner.invoke(app, ["gather-judgments", "--out", str(gathered), "--records", str(path),
                              *map(str, shards[::-1])])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert gathered.read_bytes() == whole.read_bytes()

    plan = tmp_path / "plan.json"
    res = runner.invoke(app, ["shard-plan", "--records", str(path), "--shard-size", "10",
                              "--out", str(plan)])  # fmt: skip
    assert res.exit_code == 0 and json.loads(plan.read_text()) == {
        "records": 23,
        "shard_size": 10,
        "shards": 3,
    }


def test_gather_refuses_missing_overlapping_or_mixed_shards(tmp_path):
    recs = records(10)
    path = tmp_path / "r.parquet"
    write_table(recs, path, "records")
    from harmtrace.graders import make_grader

    judged = make_grader("human").grade(recs)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_table(judged.iloc[:6].reset_index(drop=True), a, "judgments")
    write_table(judged.iloc[6:].reset_index(drop=True), b, "judgments")
    assert gather_judgments([a, b], path)["record_id"].tolist() == recs["record_id"].tolist()
    with pytest.raises(ShardError, match="4 record\\(s\\) lack a judgment"):
        gather_judgments([a], path)
    with pytest.raises(ShardError, match="more than one shard"):
        gather_judgments([a, a, b], path)
    other = judged.iloc[6:].reset_index(drop=True)
    other["grader_version"] = pd.array(["human-0.9/spec-0"] * len(other), dtype="string")
    write_table(other, b, "judgments")
    with pytest.raises(ShardError, match="different graders or versions"):
        gather_judgments([a, b], path)
    assert set(CATEGORIES)  # vocabulary imported from one place
