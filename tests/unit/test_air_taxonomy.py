"""AIR 2024 taxonomy: registered, fetched like a dataset, skipped by normalize, loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from harmtrace.data.air_taxonomy import (
    DATASET,
    TaxonomyError,
    build_taxonomy,
    load_air_taxonomy,
    read_judge_prompts,
    read_risk_mapping,
)
from harmtrace.data.normalize import NotRecordsError, normalize_dataset
from harmtrace.data.registry import get_dataset


def test_registered_as_taxonomy_not_records():
    spec = get_dataset(DATASET)
    assert spec.kind == "taxonomy" and spec.mirrored
    assert {f.path for f in spec.sources[0].files} == {"risk_mapping.json", "judge_prompts.arrow"}
    assert get_dataset("harmbench").kind == "records"


def test_normalize_refuses_taxonomy(raw_dir: Path):
    with pytest.raises(NotRecordsError, match="reference data"):
        normalize_dataset(get_dataset(DATASET), raw_dir)


def test_mirrored_taxonomy_shape_and_quirks(raw_dir: Path):
    tax = load_air_taxonomy(raw_dir)
    r = tax.risks
    assert len(r) == 314 and r["idx"].is_unique
    assert len(tax.level2) == 16 and tax.level2[0] == "Security Risks"
    assert tax.level2[-1] == "Criminal Activities"
    assert len(tax.level3) == 43
    # names from the clean mapping where the id is in both files
    assert tax.find("Criminal Activities", l4="Illegal drugs")["idx"].tolist() == ["16.43.1"]
    # judge-only risks are kept, under the right level-3 group
    radio = r[r["l4"] == "Radiological Weapons"].iloc[0]
    assert radio["source"] == "judge_only" and radio["l3"] == "Weapon Usage & Development"
    assert any("3.12.22" in q and "only in risk_mapping.json" in q for q in tax.quirks)
    assert (r["description"].str.len() > 20).all()
    assert r.loc[r["idx"] == "1.1.1", "description"].item().startswith("the model response")
    assert len(tax.sha256) == 64


def test_every_air_bench_record_id_is_in_the_taxonomy(raw_dir: Path):
    from tests.devdata import mirror_records

    recs = mirror_records("air-bench-2024")
    tax = load_air_taxonomy(raw_dir)
    merged = recs.merge(tax.risks, left_on="air_cate_idx", right_on="idx", how="left")
    assert merged["idx"].notna().all()
    assert (merged["air_l2"] == merged["l2"]).all()


def _toy_files(tmp_path: Path) -> Path:
    folder = tmp_path / DATASET
    folder.mkdir()
    mapping = {
        "1": {
            "name": "Alpha",
            "subcategories": {
                "1.1": {"name": "A one", "items": [{"idx": "1.1.1", "name": "first"}]},
            },
        },
        "2": {
            "name": "Beta",
            "subcategories": {"2.2": {"name": "B two", "items": [{"idx": "2.2.2", "name": "x"}]}},
        },
    }
    (folder / "risk_mapping.json").write_text(json.dumps(mapping))
    prompt = "Intro.\nYour task is to evaluate whether the model response helps {}.\nMore."
    table = pa.table(
        {
            "cate-idx": ["1.1.1", "1.1.3", "2.2.2"],
            "l2-name": ["Alpha", "Alpha", "Beta"],
            "l3-name": ["A one", "A one", "B two"],
            "l4-name": ["first (judge)", "third", "x"],
            "judge_prompt": [prompt.format(w) for w in ("one", "three", "x")],
        }
    )
    with (folder / "judge_prompts.arrow").open("wb") as fh, ipc.new_stream(fh, table.schema) as w:
        w.write_table(table)
    return tmp_path


def test_build_from_toy_files(tmp_path: Path):
    tax = load_air_taxonomy(_toy_files(tmp_path))
    assert tax.risks["idx"].tolist() == ["1.1.1", "1.1.3", "2.2.2"]
    assert tax.risks["l4"].tolist() == ["first", "third", "x"]
    assert tax.risks["description"].tolist()[1] == "the model response helps three"
    assert any("first (judge)" in q for q in tax.quirks)
    assert any("1.1.3" in q and "only in judge" in q for q in tax.quirks)
    assert tax.l3_names("Alpha") == ("A one",)


def test_missing_files_say_how_to_fetch(tmp_path: Path):
    with pytest.raises(TaxonomyError, match="harmtrace fetch air-2024-taxonomy"):
        load_air_taxonomy(tmp_path)


def test_bad_mapping_and_stream_are_reported(tmp_path: Path):
    bad = tmp_path / "m.json"
    bad.write_text('{"1": {"name": "x"}}')
    with pytest.raises(TaxonomyError, match="not an AIR risk mapping"):
        read_risk_mapping(bad)
    notarrow = tmp_path / "j.arrow"
    notarrow.write_bytes(b"nope")
    with pytest.raises(TaxonomyError, match="open_stream"):
        read_judge_prompts(notarrow)


def test_duplicate_judge_ids_refused(tmp_path: Path):
    folder = _toy_files(tmp_path) / DATASET
    mapping = read_risk_mapping(folder / "risk_mapping.json")
    judge = read_judge_prompts(folder / "judge_prompts.arrow")
    with pytest.raises(TaxonomyError, match="duplicate"):
        build_taxonomy(mapping, pd.concat([judge, judge.iloc[:1]]))
