"""data.sample: a stable sample that keeps paired records together and says so."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from harmtrace.cli import app
from harmtrace.config import ConfigError, check_config
from harmtrace.data.provenance import read_provenance, read_records
from harmtrace.data.sample import sample_records
from harmtrace.errors import HarmtraceError

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def _pairs(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "record_id": [f"r{i:03d}{side}" for i in range(n) for side in "ab"],
            "dataset": "d",
            "pair": [i for i in range(n) for _ in "ab"],
        }
    )


def test_a_sample_keeps_whole_units_in_file_order():
    frame = _pairs(50)
    drawn = sample_records(frame, 10, unit="pair")
    assert (drawn.units_kept, drawn.units_total, drawn.records_total) == (10, 50, 100)
    assert len(drawn.records) == 20
    assert (drawn.records.groupby("pair").size() == 2).all()  # both answers of a pair
    order = frame.reset_index().merge(drawn.records, on=["record_id", "dataset", "pair"])
    assert order["index"].is_monotonic_increasing


def test_the_sample_does_not_depend_on_row_order_and_grows_by_inclusion():
    frame = _pairs(60)
    shuffled = frame.sample(frac=1.0, random_state=3)
    a = set(sample_records(frame, 12, unit="pair").records["record_id"])
    b = set(sample_records(shuffled, 12, unit="pair").records["record_id"])
    assert a == b
    bigger = set(sample_records(frame, 30, unit="pair").records["record_id"])
    assert a < bigger
    # not simply the head of the file
    assert a != set(frame["record_id"].head(24))


def test_a_sample_larger_than_the_table_keeps_everything():
    frame = _pairs(5)
    drawn = sample_records(frame, 100)
    assert drawn.records.equals(frame)
    assert (drawn.unit, drawn.units_kept) == ("record_id", 10)


def test_a_missing_or_empty_unit_column_is_named():
    with pytest.raises(HarmtraceError, match="'nope' is not in the records"):
        sample_records(_pairs(3), 2, unit="nope")
    frame = _pairs(3).astype({"pair": "Int64"})
    frame.loc[4, "pair"] = pd.NA
    with pytest.raises(HarmtraceError, match=r"empty in rows \[4\]"):
        sample_records(frame, 2, unit="pair")


def test_normalize_writes_the_sample_into_the_provenance(mirror, tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "hh.parquet"
    res = runner.invoke(
        app, ["fetch", "hh-rlhf-harmless", "--raw-dir", str(raw), "--mirror", str(mirror)]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app,
        ["normalize", "hh-rlhf-harmless", "--raw-dir", str(raw), "--out", str(out),
         "--sample", "40"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    records = read_records(out)  # the registry's expected count still checks out
    assert len(records) == 80
    assert records.groupby("hh_pair_id").size().eq(2).all()
    note = read_provenance(out).sample
    assert (note.unit, note.units_kept, note.units_total) == ("hh_pair_id", 40, 2312)
    assert note.records_total == 4624


def test_the_config_names_a_sampled_dataset_that_is_not_in_the_run():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["data"]["sample"] = {"no-such-set": 10}
    with pytest.raises(ConfigError, match="data.sample: 'no-such-set'"):
        check_config(config, ROOT)
