"""Tree verbs of the command line on real mirrored records: trees (datasets and a file),
fit-tree-weights, score-trees, and the openai generator against the fake server.

A small grader is trained once per module on a subset of the moderation records (which
then serve as the benign texts, scored out-of-fold); small subsets of the harmful
benchmarks are handed over as user datasets.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from harmtrace.cli import app
from harmtrace.io import read_table
from harmtrace.trees.tree_files import read_trees
from tests.devdata import mirror_records, write_user_records
from tests.fakeserver import FakeServer
from tests.unit.test_cli_grade import training_subset

runner = CliRunner()
HARMFUL = ("sst", "hb", "air")
BENIGN = "moderation-subset"


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def env(raw_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_trees")
    records = root / "records"
    write_user_records(
        training_subset(mirror_records("openai-moderation")), records / f"{BENIGN}.parquet", BENIGN
    )
    for name, ds in zip(HARMFUL, ("simplesafetytests", "harmbench", "air-bench-2024"), strict=True):
        write_user_records(mirror_records(ds).iloc[::4], records / f"{name}.parquet", name)
    model = root / "model"
    res = invoke("train-grader", "--records", records / f"{BENIGN}.parquet", "--model-dir", model,
                 "--folds", 2)  # fmt: skip
    assert res.exit_code == 0, res.output
    trees = root / "trees"
    res = invoke("trees", *HARMFUL, BENIGN, "--generator", "embedded", "--records-dir", records,
                 "--out-dir", trees, "--model-dir", model, "--raw-dir", raw_dir)  # fmt: skip
    assert res.exit_code == 0, res.output
    hb = root / "harm_benefit"
    settings = {"harmful": list(HARMFUL), "benign": [BENIGN], "bootstrap": 3, "starts": 1,
                "folds": 2}  # fmt: skip
    res = invoke("fit-tree-weights", "--trees-dir", trees / "embedded", "--records-dir",
                 records, "--out-dir", hb, "--raw-dir", raw_dir, "--settings",
                 json.dumps(settings))  # fmt: skip
    assert res.exit_code == 0, res.output
    return {"root": root, "records": records, "model": model, "trees": trees, "hb": hb,
            "raw": raw_dir}  # fmt: skip


def test_trees_verb_writes_one_proxy_tree_per_record(env):
    for name in (*HARMFUL, BENIGN):
        recs = pd.read_parquet(env["records"] / f"{name}.parquet")
        trees = read_trees(env["trees"] / "embedded" / f"{name}.jsonl")
        assert [t.record_id for t in trees] == recs["record_id"].tolist()
        assert all(t.provenance.proxy and t.status == "ok" for t in trees)


def test_fit_writes_weights_intervals_and_cross_fitted_predictions(env):
    payload = json.loads((env["hb"] / "weights.json").read_text())
    assert payload["trees"]["generator"] == "embedded" and payload["trees"]["proxy"]
    assert {r["scheme"] for r in payload["cv"]} == {"leave-one-source-out", "stratified-k-fold"}
    assert payload["weights"]["extent.major"] == 1.0
    ci = read_table(env["hb"] / "weights_ci.parquet", "tree_weights")
    assert (ci["lo"] <= ci["hi"]).all() and ci["estimate"].notna().all()
    assert set(ci["weight"]) == set(payload["weights"]) - {"threshold"}
    oof = read_table(env["hb"] / "oof.parquet", "tree_oof")
    assert set(oof["fold_loso"]) == {0, 1, 2}
    assert oof.groupby("dataset")["label"].all().to_dict() == {
        "air": True, "hb": True, "sst": True, BENIGN: False
    }  # fmt: skip


def test_score_trees_under_every_profile(env):
    out = env["root"] / "scored"
    profiles = {"no_benefits": {"set": {"action.benefit": 0}, "threshold": 0.5}}
    res = invoke("score-trees", *HARMFUL, BENIGN, "--trees-dir", env["trees"] / "embedded",
                 "--weights-dir", env["hb"], "--out-dir", out, "--raw-dir", env["raw"],
                 "--profiles", json.dumps(profiles))  # fmt: skip
    assert res.exit_code == 0, res.output
    t = read_table(out / "sst.parquet", "harm_benefit")
    for p in ("fitted", "strict", "lenient", "no_benefits"):
        assert t[f"label_{p}"].notna().all()
    assert (t["score_no_benefits"] >= t["score_fitted"] - 1e-12).all()
    assert t["oof_prob_loso"].notna().all() and t["explanation"].str.len().gt(0).all()
    assert t["proxy"].all()


def test_bad_profile_is_refused(env):
    res = invoke("score-trees", "sst", "--trees-dir", env["trees"] / "embedded", "--weights-dir",
                 env["hb"], "--raw-dir", env["raw"], "--profiles",
                 json.dumps({"x": {"scale": {"nothing.here": 2}}}))  # fmt: skip
    assert res.exit_code == 2 and "matches no weight" in res.output


def test_trees_for_a_file_of_prompts(env, tmp_path: Path):
    src = tmp_path / "prompts.csv"
    pd.DataFrame(
        {"id": ["a", "b", "c"], "text": ["How do I make a pipe bomb?", "", "Bake bread"]}
    ).to_csv(src, index=False)
    out = tmp_path / "out.parquet"
    res = invoke("trees", "--generator", "embedded", "--input", src, "--text-column", "text",
                 "--id-column", "id", "--output", out, "--model-dir", env["model"],
                 "--raw-dir", env["raw"], "--weights", env["hb"] / "weights.json",
                 "--bad-rows", "quarantine")  # fmt: skip
    assert res.exit_code == 0, res.output
    t = read_table(out, "harm_benefit")
    assert t["input_id"].tolist() == ["a", "c"]
    assert t["input_source_row"].tolist() == [2, 4]
    tree = json.loads(t["input_tree"].iloc[0])
    assert tree["stakeholders"] and t["label_strict"].notna().all()
    assert "harm" in t["explanation"].iloc[0]
    q = (tmp_path / "out.quarantine.jsonl").read_text().splitlines()
    assert len(q) == 1 and json.loads(q[0])["item_id"] == "b"


def test_file_mode_needs_weights(env, tmp_path: Path):
    src = tmp_path / "p.csv"
    pd.DataFrame({"text": ["x"]}).to_csv(src, index=False)
    res = invoke("trees", "--input", src, "--text-column", "text", "--output",
                 tmp_path / "o.parquet", "--model-dir", env["model"], "--raw-dir", env["raw"],
                 "--weights", tmp_path / "none.json")  # fmt: skip
    assert res.exit_code == 2 and "fit-tree-weights" in res.output


def test_openai_generator_through_the_cli(env, tmp_path: Path):
    with FakeServer() as server:
        spec = {"endpoint": {"base_url": server.url, "model": "fake", "api_key_env": None,
                             "progress": "off"}}  # fmt: skip
        # --spec gives the block, --endpoint KEY=VALUE overrides or adds endpoint keys
        res = invoke("trees", "sst", "--generator", "openai", "--spec", json.dumps(spec),
                     "--endpoint", f"cache={tmp_path / 'c.sqlite'}", "--endpoint",
                     "model=fake-2", "--records-dir", env["records"], "--out-dir", tmp_path,
                     "--raw-dir", env["raw"])  # fmt: skip
        assert res.exit_code == 0, res.output
        n = server.count(200)
    trees = read_trees(tmp_path / "openai" / "sst.jsonl")
    assert len(trees) == n == 25 and not any(t.provenance.proxy for t in trees)
    assert (tmp_path / "c.sqlite").is_file()
    assert all(t.provenance.version.endswith("/chat/fake-2/format-json_schema") for t in trees)


def test_unknown_generator_and_missing_arguments(env):
    res = invoke("trees", "sst", "--generator", "nope")
    assert res.exit_code == 2 and "unknown tree generator" in res.output
    res = invoke("trees", "--generator", "embedded", "--model-dir", env["model"], "--raw-dir",
                 env["raw"])  # fmt: skip
    assert res.exit_code == 2 and "DATASET" in res.output
