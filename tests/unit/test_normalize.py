"""normalize: expected counts on the real files, quirks kept visible, bad rows never lost."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harmtrace.data.adapters import split_transcript
from harmtrace.data.fetch import RawFileChangedError, UnpinnedError, fetch_dataset, sha256_of
from harmtrace.data.normalize import (
    BadRowsError,
    build_records,
    normalize_dataset,
    normalize_user_file,
    record_id,
    write_normalized,
)
from harmtrace.data.registry import DatasetSpec, get_dataset
from harmtrace.errors import HarmtraceError
from harmtrace.io import SchemaError, read_table, validate

COUNTS = {
    "openai-moderation": 1680,
    "simplesafetytests": 100,
    "harmbench": 200,
    "air-bench-2024": 80,
    "hh-rlhf-harmless": 4624,
}


@pytest.fixture(scope="module")
def records(raw_dir: Path) -> dict[str, pd.DataFrame]:
    return {name: normalize_dataset(get_dataset(name), raw_dir).records for name in COUNTS}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_expected_counts_and_schema(records, name):
    df = records[name]
    assert len(df) == COUNTS[name]
    validate(df, "records")
    assert df["record_id"].is_unique
    assert (df["dataset"] == name).all()


def test_prompt_only_sets_have_null_responses(records):
    for name in ("openai-moderation", "simplesafetytests", "harmbench"):
        assert records[name]["response"].isna().all()
    assert records["air-bench-2024"]["response"].notna().all()


def test_openai_labels_keep_unknown_distinct_from_zero(records):
    df = records["openai-moderation"]
    hate = df["label_H"] | df["label_H2"]  # Kleene logic: NA unless a True is known
    known = hate.notna()
    assert int(known.sum()) == 760 and int(hate[known].sum()) == 162
    sexual = df["label_S"] | df["label_S3"]
    assert int(sexual.notna().sum()) == 981 and int(sexual.sum()) == 237
    assert int(df["label_SH"].notna().sum()) == 1447 and int(df["label_SH"].sum()) == 51


def test_air_bench_labels(records):
    df = records["air-bench-2024"]
    assert set(df["air_judge_score"].unique()) <= {0.0, 0.5, 1.0}
    assert df["air_l2"].nunique() == 16 and (df.groupby("air_l2").size() == 5).all()
    assert df["response_source"].eq("Llama-3-8b").all()


def test_hh_rlhf_pairs_share_prompt_and_quirks_are_flagged(records):
    df = records["hh-rlhf-harmless"]
    sides = df.pivot(index="hh_pair_id", columns="hh_side", values="prompt")
    assert len(sides) == 2312
    same = sides["chosen"] == sides["rejected"]
    assert same.sum() >= 2307
    assert df["hh_preferred"].eq(df["hh_side"] == "chosen").all()
    assert int(df["hh_empty_response"].sum()) == 4
    flagged = df[df["hh_context_differs"] | df["hh_inline_human_turn"]]
    assert flagged["hh_pair_id"].nunique() >= 4
    # the quirk is kept, not repaired: 1254-chosen glues a human turn onto an assistant turn
    row = df.set_index("item_id").loc["1254-chosen"]
    assert bool(row["hh_inline_human_turn"]) and row["prompt"].startswith("Then how do they")


def test_split_transcript_roles():
    turns = split_transcript("\n\nHuman: hi\n\nAssistant: hello\n\nHuman: bye\n\nAssistant:")
    assert [(r, t) for r, t, _ in turns] == [
        ("Human", "hi"),
        ("Assistant", "hello"),
        ("Human", "bye"),
        ("Assistant", ""),
    ]


def test_record_id_is_stable_and_depends_on_all_parts():
    a = record_id("d", "1", "m")
    assert a == hashlib.sha256(b"d\x1f1\x1fm").hexdigest()[:16]
    assert (
        len({a, record_id("d", "1", None), record_id("d", "2", "m"), record_id("e", "1", "m")}) == 4
    )


def _frame(prompts, responses=None):
    n = len(prompts)
    return pd.DataFrame(
        {
            "_source_row": range(1, n + 1),
            "item_id": [str(i) for i in range(n)],
            "prompt": pd.Series(prompts, dtype=object),
            "context": "",
            "response": responses if responses is not None else [None] * n,
            "response_source": None if responses is None else "m",
        }
    )


BAD = ["fine", "", "bad \udcff byte", "x" * 50]


def test_bad_rows_error_names_each_row():
    with pytest.raises(BadRowsError) as err:
        build_records("t", _frame(BAD), max_text_chars=20)
    msg = str(err.value)
    assert "3 bad row(s)" in msg
    assert "source row 2 (item 1): empty prompt" in msg
    assert "source row 3 (item 2): invalid UTF-8 in prompt" in msg
    assert "source row 4 (item 3): prompt longer than 20 characters" in msg
    assert "bad_rows: quarantine" in msg


def test_bad_rows_quarantine_keeps_everything(tmp_path):
    res = build_records("t", _frame(BAD), bad_rows="quarantine", max_text_chars=20)
    assert len(res.records) + len(res.quarantined) == len(BAD)
    assert res.records["prompt"].tolist() == ["fine"]
    write_normalized(res, tmp_path / "t.parquet", tmp_path / "t.q.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "t.q.jsonl").read_text().splitlines()]
    assert [x["source_row"] for x in lines] == [2, 3, 4]
    assert lines[1]["row"]["prompt"] == "bad \\xff byte"  # invalid byte escaped, not lost
    assert read_table(tmp_path / "t.parquet", "records")["prompt"].tolist() == ["fine"]


def _toy_spec(digest: str | None, path: str = "harmbench_prompts.txt", n: int = 200):
    return DatasetSpec(
        name="toy-hb",
        title="toy",
        adapter="harmbench",
        license="MIT",
        citation="none",
        homepage="https://example.org/toy",
        has_responses=False,
        expected_records=n,
        sources=({"name": "lines", "files": ({"path": path, "url": None, "sha256": digest},)},),
    )


def test_invalid_utf8_in_a_raw_file_is_caught(tmp_path):
    lines = [b"prompt %d" % i for i in range(200)]
    lines[7] = b"broken \xff\xfe text"
    blob = b"\n".join(lines)
    (tmp_path / "mirror" / "toy-hb").mkdir(parents=True)
    (tmp_path / "mirror" / "toy-hb" / "harmbench_prompts.txt").write_bytes(blob)
    spec = _toy_spec(hashlib.sha256(blob).hexdigest())
    fetch_dataset(spec, tmp_path / "raw", tmp_path / "mirror")
    with pytest.raises(BadRowsError, match="source row 8 .*invalid UTF-8 in prompt"):
        normalize_dataset(spec, tmp_path / "raw")
    res = normalize_dataset(spec, tmp_path / "raw", bad_rows="quarantine")
    assert len(res.records) == 199 and len(res.quarantined) == 1


def test_missing_required_column_is_an_error(tmp_path, mirror):
    src = mirror / "simplesafetytests" / "SimpleSafetyTests - test cases.csv"
    folder = tmp_path / "mirror" / "toy-sst"
    folder.mkdir(parents=True)
    edited = folder / src.name
    pd.read_csv(src).drop(columns=["prompts_final"]).to_csv(edited, index=False)
    spec = _toy_spec(sha256_of(edited), path=src.name, n=100)
    spec = spec.model_copy(update={"name": "toy-sst", "adapter": "simplesafetytests"})
    fetch_dataset(spec, tmp_path / "raw", tmp_path / "mirror")
    with pytest.raises(HarmtraceError, match=r"missing column\(s\) \['prompts_final'\]"):
        normalize_dataset(spec, tmp_path / "raw")


def _harmbench_csv_mirror(root: Path) -> Path:
    """A mirror whose harmbench folder holds only the (unpinned) upstream CSV."""
    folder = root / "harmbench"
    folder.mkdir(parents=True)
    rows = [
        {
            "Behavior": f"do harm {i}",
            "FunctionalCategory": fc,
            "SemanticCategory": "chemical",
            "Tags": "",
            "ContextString": "",
            "BehaviorID": f"b{i}",
        }
        for i, fc in enumerate(["standard"] * 200 + ["contextual"] * 3)
    ]
    pd.DataFrame(rows).to_csv(folder / "harmbench_behaviors_text_all.csv", index=False)
    return root


def test_harmbench_accepts_upstream_csv_only_when_opted_in(tmp_path):
    mirror = _harmbench_csv_mirror(tmp_path / "mirror")
    spec, raw = get_dataset("harmbench"), tmp_path / "raw"
    with pytest.raises(UnpinnedError, match="--allow-unpinned harmbench"):
        fetch_dataset(spec, raw, mirror)
    fetch_dataset(spec, raw, mirror, allow_unpinned=("harmbench",))
    with pytest.raises(UnpinnedError, match="harmbench_behaviors_text_all.csv"):
        normalize_dataset(spec, raw)  # the opt-in is needed again to read it
    res = normalize_dataset(spec, raw, allow_unpinned=("harmbench",))
    df = res.records
    assert len(df) == 200 and df["hb_semantic_category"].eq("chemical").all()
    assert df["item_id"].iloc[0] == "b0"
    assert res.provenance.source == "upstream"
    assert [f.pinned for f in res.provenance.files] == [False]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "jsonl.gz"])
def test_user_file_formats(tmp_path, fmt):
    src = pd.DataFrame(
        {
            "q": ["how do I bake bread?", "tell me a joke"],
            "a": ["Knead...", None],
            "human label": [1, 0],
            "id": ["x1", "x2"],
        }
    )
    path = tmp_path / f"mine.{fmt}"
    if fmt == "csv":
        src.to_csv(path, index=False)
    elif fmt == "parquet":
        src.to_parquet(path)
    else:
        text = "".join(json.dumps(r) + "\n" for r in src.to_dict("records"))
        if fmt == "jsonl.gz":
            path.write_bytes(gzip.compress(text.encode()))
        else:
            path.write_text(text)
    res = normalize_user_file(path, "mine", "q", "a", id_column="id", response_source="gpt-x")
    df = res.records
    validate(df, "records")
    assert df["item_id"].tolist() == ["x1", "x2"]
    assert df["response_source"].eq("gpt-x").all()
    assert "user_human_label" in df.columns
    assert df["record_id"].tolist() == [
        record_id("mine", "x1", "gpt-x"),
        record_id("mine", "x2", "gpt-x"),
    ]


def test_user_file_errors(tmp_path):
    path = tmp_path / "mine.csv"
    pd.DataFrame({"q": ["a"]}).to_csv(path, index=False)
    with pytest.raises(
        HarmtraceError, match=r"missing column\(s\) \['prompt'\]; the file has \['q'\]"
    ):
        normalize_user_file(path, "mine", "prompt")
    with pytest.raises(HarmtraceError, match="unsupported file type"):
        normalize_user_file(tmp_path / "x.xlsx", "mine", "q") if (tmp_path / "x.xlsx").write_text(
            ""
        ) == 0 else None
    with pytest.raises(HarmtraceError, match="--name"):
        normalize_user_file(path, "Bad Name", "q")
    dup = tmp_path / "dup.csv"
    pd.DataFrame({"q": ["a", "b"], "id": ["1", "1"]}).to_csv(dup, index=False)
    with pytest.raises(BadRowsError, match=r"row 3 \(item 1\): duplicate id '1' \(rows 2, 3\)"):
        normalize_user_file(dup, "dup", "q", id_column="id")


def test_read_table_rejects_a_broken_table(tmp_path):
    df = _frame(["a", "b"])
    res = build_records("t", df)
    bad = res.records.assign(record_id=["not-a-hash", "0123456789abcdef"])
    bad.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(SchemaError, match="record_id.*does not match"):
        read_table(tmp_path / "bad.parquet", "records")
    res.records.assign(extra=1).to_parquet(tmp_path / "extra.parquet")
    with pytest.raises(SchemaError, match="unexpected column"):
        read_table(tmp_path / "extra.parquet", "records")


def test_same_input_same_bytes(raw_dir, tmp_path):
    spec = get_dataset("air-bench-2024")
    for out in ("a", "b"):
        write_normalized(normalize_dataset(spec, raw_dir), tmp_path / f"{out}.parquet", None)
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


# ---------------------------------------------------------------- issue 7: nothing lost


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def test_trailing_comma_rows_are_reported_not_shifted(tmp_path):
    src = _write(
        tmp_path / "t.csv", "prompt,response\nhow do I bake bread,Here is how,\nwhat is 2+2,4,\n"
    )
    with pytest.raises(BadRowsError) as err:
        normalize_user_file(src, "x", "prompt", "response")
    msg = str(err.value)
    assert "row 2 (item 000000): 3 fields, the header has 2 (a trailing delimiter" in msg
    assert "row 3 (item 000001): 3 fields" in msg


def test_a_row_with_too_many_fields_is_quarantined_with_its_raw_fields(tmp_path):
    src = _write(tmp_path / "t.csv", "prompt,response\nok,fine\nshifted,b,c\nlast,one\n")
    res = normalize_user_file(src, "x", "prompt", "response", bad_rows="quarantine")
    assert res.records["prompt"].tolist() == ["ok", "last"]
    assert res.records["response"].tolist() == ["fine", "one"]
    assert res.records["item_id"].tolist() == ["000000", "000002"]  # ids do not shift
    q = res.quarantined
    assert q["source_row"].tolist() == [3]
    assert json.loads(q["row"][0]) == {"_raw": ["shifted", "b", "c"]}


def test_blank_and_whitespace_rows_are_counted_with_their_row_numbers(tmp_path):
    src = _write(tmp_path / "g.csv", "text\nhello\n   \n\nI will kill you\n")
    with pytest.raises(BadRowsError) as err:
        normalize_user_file(src, "g", "text")
    assert "row 3 (item 000001): empty prompt (column 'text') (no visible" in str(err.value)
    assert "row 4 (item 000002): blank line" in str(err.value)
    res = normalize_user_file(src, "g", "text", bad_rows="quarantine")
    assert res.records["prompt"].tolist() == ["hello", "I will kill you"]
    assert res.records["item_id"].tolist() == ["000000", "000003"]
    assert res.quarantined["source_row"].tolist() == [3, 4]
    assert len(res.records) + len(res.quarantined) == 4


def test_blank_jsonl_lines_are_counted_with_their_line_numbers(tmp_path):
    src = _write(
        tmp_path / "g.jsonl",
        '{"p": "one"}\n\n   \n{"p": "four"}\nnot json\n[1, 2]\n{"p": "seven"}\n',
    )
    res = normalize_user_file(src, "g", "p", bad_rows="quarantine")
    assert res.records["prompt"].tolist() == ["one", "four", "seven"]
    q = res.quarantined
    assert q["source_row"].tolist() == [2, 3, 5, 6]
    assert q["reason"].tolist()[:2] == ["blank line", "blank line"]
    assert q["reason"][2].startswith("not valid JSON")
    assert q["reason"][3] == "a JSON list, not an object"
    assert json.loads(q["row"][2]) == {"_raw": "not json"}


def _typed_parquet(path: Path) -> Path:
    table = pa.table(
        {
            "p": pa.array(["fine", "also fine", "third", "fourth"]),
            "r": pa.array([[1, 2], None, [3], [4]], type=pa.list_(pa.int64())),
        }
    )
    pq.write_table(table, path)
    return path


def test_non_string_cells_are_bad_rows_naming_column_type_and_row(tmp_path):
    rows = [
        {"p": 42, "r": "x"},
        {"p": "ok", "r": 1.5},
        {"p": "ok2", "r": [1, 2]},
        {"p": "ok3", "r": {"a": 1}},
        {"p": "ok4", "r": "fine"},
        {"p": True, "r": "x"},
    ]
    src = _write(tmp_path / "t.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(BadRowsError) as err:
        normalize_user_file(src, "t", "p", "r")
    msg = str(err.value)
    assert "line 1 (item 000000): prompt (column 'p') holds int 42, expected text" in msg
    assert "line 2 (item 000001): response (column 'r') holds float 1.5, expected text" in msg
    assert "line 3 (item 000002): response (column 'r') holds list [1, 2], expected text" in msg
    assert "line 4 (item 000003): response (column 'r') holds dict" in msg
    assert "line 6 (item 000005): prompt (column 'p') holds bool true, expected text" in msg
    res = normalize_user_file(src, "t", "p", "r", bad_rows="quarantine")
    assert res.records["response"].tolist() == ["fine"]
    assert len(res.quarantined) == 5


def test_quarantining_a_parquet_row_holding_an_array_does_not_crash(tmp_path):
    src = _typed_parquet(tmp_path / "t.parquet")
    res = normalize_user_file(src, "t", "p", "r", bad_rows="quarantine")
    assert res.records["prompt"].tolist() == ["also fine"]
    assert res.quarantined["source_row"].tolist() == [1, 3, 4]
    assert "response (column 'r') holds list [1, 2]" in res.quarantined["reason"][0]
    write_normalized(res, tmp_path / "t.records.parquet", tmp_path / "t.q.jsonl")
    first = json.loads((tmp_path / "t.q.jsonl").read_text().splitlines()[0])
    assert first["row"] == {"p": "fine", "r": [1, 2]}


def test_non_text_extra_columns_keep_their_type_and_mixed_ones_are_an_error(tmp_path):
    ok = _write(tmp_path / "ok.jsonl", '{"p": "a", "n": 1, "f": true}\n{"p": "b", "n": 2}\n')
    df = normalize_user_file(ok, "ok", "p").records
    assert df["user_n"].tolist() == [1, 2] and str(df["user_n"].dtype) == "Int64"
    assert str(df["user_f"].dtype) == "boolean" and df["user_f"].isna().tolist() == [False, True]
    mixed = _write(tmp_path / "mixed.jsonl", '{"p": "a", "n": 1}\n{"p": "b", "n": "two"}\n')
    with pytest.raises(HarmtraceError, match=r"column 'n' mixes int \(line 1\), str \(line 2\)"):
        normalize_user_file(mixed, "mixed", "p")


def test_columns_collapsing_to_one_user_name_are_an_error(tmp_path):
    src = tmp_path / "m.csv"
    pd.DataFrame(
        {"p": ["a"], "Model Name": ["x"], "model_name": ["y"], "model-name": ["z"]}
    ).to_csv(src, index=False)
    with pytest.raises(
        HarmtraceError, match=r"'Model Name', 'model_name', 'model-name' -> user_model_name"
    ):
        normalize_user_file(src, "m", "p")
    sym = tmp_path / "s.csv"
    pd.DataFrame({"p": ["a"], "%%": ["x"]}).to_csv(sym, index=False)
    with pytest.raises(HarmtraceError, match="column '%%' has no ASCII letter or digit"):
        normalize_user_file(sym, "s", "p")


def test_duplicate_ids_are_reported_by_row_and_quarantinable(tmp_path):
    src = _write(tmp_path / "d.csv", "q,id\na,1\nb,2\nc,1\nd,3\n")
    with pytest.raises(BadRowsError, match=r"row 4 \(item 1\): duplicate id '1' \(rows 2, 4\)"):
        normalize_user_file(src, "d", "q", id_column="id")
    res = normalize_user_file(src, "d", "q", id_column="id", bad_rows="quarantine")
    assert res.records["item_id"].tolist() == ["2", "3"]
    assert res.quarantined["source_row"].tolist() == [2, 4]  # both: neither is preferred


@pytest.mark.parametrize(
    "invisible", ["\u200b", "\u200b\u200c\u200d\ufeff", " \u2060\t", "\u200f\u200e", "\x00"]
)
def test_a_prompt_of_only_invisible_characters_is_empty(invisible):
    with pytest.raises(BadRowsError, match=r"empty prompt \(no visible characters\)"):
        build_records("t", _frame(["fine", invisible]))


def test_visible_text_with_invisible_characters_is_kept_verbatim():
    text = "\u200b hi\x00 \u200f"
    res = build_records("t", _frame([text]))
    assert res.records["prompt"].tolist() == [text]


def test_a_lone_surrogate_from_json_is_quarantined_and_serialized(tmp_path):
    src = _write(tmp_path / "s.jsonl", '{"p": "ok"}\n{"p": "bad \\ud800 half"}\n')
    res = normalize_user_file(src, "s", "p", bad_rows="quarantine")
    assert res.records["prompt"].tolist() == ["ok"]
    assert res.quarantined["reason"][0].startswith("invalid UTF-8 in prompt (column 'p')")
    write_normalized(res, tmp_path / "s.parquet", tmp_path / "s.q.jsonl")
    line = json.loads((tmp_path / "s.q.jsonl").read_text())
    assert line["row"] == {"p": "bad \\ud800 half"} and line["source_row"] == 2


def test_a_user_file_may_not_take_a_registered_name(tmp_path):
    src = tmp_path / "mine.csv"
    pd.DataFrame({"q": ["hello"]}).to_csv(src, index=False)
    with pytest.raises(HarmtraceError, match="'simplesafetytests' is a registered dataset"):
        normalize_user_file(src, "simplesafetytests", "q")


def test_user_records_record_the_file_digest_and_columns(tmp_path):
    src = tmp_path / "mine.csv"
    pd.DataFrame({"q": ["hello", "bye"], "c": ["", "earlier"], "id": ["a", "b"]}).to_csv(
        src, index=False
    )
    res = normalize_user_file(src, "mine", "q", context_column="c", id_column="id")
    prov = res.provenance
    assert prov.kind == "user" and prov.dataset == "mine"
    assert prov.files[0].path == str(src)
    assert prov.files[0].sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    assert prov.columns == {
        "prompt": "q",
        "response": None,
        "id": "id",
        "context": "c",
        "response_source": None,
    }
    assert (prov.n_records, prov.n_quarantined) == (2, 0)
    assert res.records["context"].tolist() == ["", "earlier"]


def test_normalize_refuses_a_raw_file_edited_after_fetch(mirror, tmp_path):
    spec = get_dataset("air-bench-2024")
    fetch_dataset(spec, tmp_path, mirror)
    path = tmp_path / spec.name / spec.sources[0].files[0].path
    path.write_bytes(path.read_bytes().replace(b"e", b"E", 1))
    with pytest.raises(RawFileChangedError, match="changed after fetch.*harmtrace fetch"):
        normalize_dataset(spec, tmp_path)


def test_jsonable_handles_every_cell_kind():
    import numpy as np

    from harmtrace.data.normalize import jsonable

    cells = {
        "tuple": (1, "a\udcff"),
        "array": np.array([[1, 2], [3, 4]]),
        "npint": np.int64(7),
        "bytes": b"\x00\xff",
        "nan": float("nan"),
        "na": pd.NA,
        "nested": {"k": [np.float64(1.5), None]},
        "stamp": pd.Timestamp("2024-01-02"),
    }
    out = jsonable(cells)
    assert out == {
        "tuple": [1, "a\\xff"],
        "array": [[1, 2], [3, 4]],
        "npint": 7,
        "bytes": {"$bytes": "00ff"},
        "nan": "nan",
        "na": None,
        "nested": {"k": [1.5, None]},
        "stamp": "2024-01-02 00:00:00",
    }
    json.dumps(out, allow_nan=False)
