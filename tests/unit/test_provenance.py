"""Records carry their provenance; read_records refuses tables whose story does not hold."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from harmtrace.data.normalize import (
    build_records,
    normalize_dataset,
    normalize_user_file,
    write_normalized,
)
from harmtrace.data.provenance import (
    PROVENANCE_KEY,
    FileDigest,
    Provenance,
    ProvenanceError,
    read_provenance,
    read_records,
)
from harmtrace.data.registry import get_dataset
from harmtrace.io import read_table_metadata, write_table


@pytest.fixture(scope="module")
def air(raw_dir: Path, tmp_path_factory) -> tuple[Path, Provenance]:
    out = tmp_path_factory.mktemp("prov") / "air-bench-2024.parquet"
    res = normalize_dataset(get_dataset("air-bench-2024"), raw_dir)
    write_normalized(res, out, None)
    return out, res.provenance


def test_registered_records_carry_their_provenance(air):
    path, prov = air
    stored = json.loads(read_table_metadata(path)[PROVENANCE_KEY])
    spec = get_dataset("air-bench-2024")
    assert stored == {
        "kind": "registered",
        "dataset": "air-bench-2024",
        "source": "upstream",
        "files": [
            {
                "path": spec.sources[0].files[0].path,
                "sha256": spec.sources[0].files[0].sha256,
                "pinned": True,
            }
        ],
        "n_records": 80,
        "n_quarantined": 0,
        "expected_records": 80,
        "columns": None,
        "target": None,
    }
    assert read_provenance(path) == prov
    df = read_records(path, "air-bench-2024")
    assert len(df) == 80


def test_read_records_checks_the_expected_dataset(air):
    with pytest.raises(ProvenanceError, match="holds dataset 'air-bench-2024', expected 'x'"):
        read_records(air[0], "x")


def test_a_subset_under_a_registered_name_is_refused(air, tmp_path):
    path, prov = air
    subset = read_records(path).iloc[:10]
    out = tmp_path / "air-bench-2024.parquet"
    write_table(subset, out, "records", metadata=prov.to_metadata())
    with pytest.raises(ProvenanceError, match="10 rows, 80 were written"):
        read_records(out)
    relabelled = prov.model_copy(update={"n_records": 10})
    write_table(subset, out, "records", metadata=relabelled.to_metadata())
    with pytest.raises(ProvenanceError, match="the registry expects 80 for air-bench-2024"):
        read_records(out)


def test_records_without_provenance_are_refused(air, tmp_path):
    out = tmp_path / "r.parquet"
    write_table(read_records(air[0]), out, "records")
    with pytest.raises(ProvenanceError, match="no provenance; records must be written by"):
        read_records(out)


def test_a_digest_other_than_the_registry_pin_is_refused(air, tmp_path):
    path, prov = air
    f = prov.files[0]
    forged = prov.model_copy(update={"files": (f.model_copy(update={"sha256": "0" * 64}),)})
    out = tmp_path / "r.parquet"
    write_table(read_records(path), out, "records", metadata=forged.to_metadata())
    with pytest.raises(ProvenanceError, match="the registry pins"):
        read_records(out)


def _user_records(name: str, kind: str, tmp_path: Path) -> Path:
    res = build_records(
        name,
        pd.DataFrame(
            {
                "_source_row": [2, 3],
                "item_id": ["a", "b"],
                "prompt": ["hello", "bye"],
                "context": "",
                "response": None,
                "response_source": None,
            }
        ),
    )
    prov = Provenance(
        kind=kind,
        dataset=name,
        source="user-file",
        files=(FileDigest(path="mine.csv", sha256="1" * 64, pinned=False),),
        n_records=2,
        n_quarantined=0,
    )
    out = tmp_path / f"{name}.parquet"
    write_table(res.records, out, "records", metadata=prov.to_metadata())
    return out


def test_user_records_under_a_registered_name_are_refused(tmp_path):
    out = _user_records("simplesafetytests", "user", tmp_path)
    with pytest.raises(ProvenanceError, match="user file under the registered dataset name"):
        read_records(out)


def test_registered_kind_for_an_unknown_name_is_refused(tmp_path):
    out = _user_records("mine", "registered", tmp_path)
    with pytest.raises(ProvenanceError, match="which the registry no longer has"):
        read_records(out)


def test_user_records_round_trip(tmp_path):
    src = tmp_path / "mine.csv"
    pd.DataFrame({"q": ["hello", "bye"]}).to_csv(src, index=False)
    out = tmp_path / "mine.parquet"
    write_normalized(normalize_user_file(src, "mine", "q"), out, None)
    assert read_records(out, "mine")["prompt"].tolist() == ["hello", "bye"]
    assert read_provenance(out).files[0].path == str(src)


def test_provenance_bytes_are_stable(raw_dir, tmp_path):
    spec = get_dataset("simplesafetytests")
    for name in ("a", "b"):
        write_normalized(normalize_dataset(spec, raw_dir), tmp_path / f"{name}.parquet", None)
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
