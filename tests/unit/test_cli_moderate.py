"""Moderation verbs on real mirrored records with a small embedded grader."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from typer.testing import CliRunner

from harmtrace.cli import app
from harmtrace.data.normalize import normalize_dataset
from harmtrace.data.registry import get_dataset
from harmtrace.graders.embedded import EmbeddedGrader, EmbeddedScorer, grade_records
from harmtrace.io import write_table
from harmtrace.moderate.trace import iter_traces
from tests.devdata import toy_refusal_detector

runner = CliRunner()
PIN = ("--clock", "1970-01-01T00:00:00Z")


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def inputs(raw_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_moderate")
    train = normalize_dataset(get_dataset("openai-moderation"), raw_dir).records
    sh = train["label_SH"].fillna(False) | train["label_V"].fillna(False)
    rare = sh.to_numpy(dtype=bool)
    keep = np.sort(np.concatenate([np.flatnonzero(rare), np.flatnonzero(~rare)[::6]]))
    model = EmbeddedGrader(c_grid=(4.0,), inner_splits=3).fit(
        train.iloc[keep], refusal=toy_refusal_detector()
    )
    model.save(root / "model")
    records = normalize_dataset(get_dataset("air-bench-2024"), raw_dir).records
    write_table(records, root / "records.parquet", "records")
    write_table(grade_records(model, records), root / "judgments.parquet", "judgments")
    return root


def run_moderate(root, policy, out, *extra):
    return invoke(
        "moderate",
        "air-bench-2024",
        "--policy",
        policy,
        "--records",
        root / "records.parquet",
        "--judgments",
        root / "judgments.parquet",
        "--model-dir",
        root / "model",
        "--out",
        out,
        *extra,
    )


def test_moderate_writes_one_trace_per_response_byte_stably(inputs, tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    res = run_moderate(inputs, "redact_medium_block_high", a, *PIN)
    assert res.exit_code == 0, res.output
    assert run_moderate(inputs, "redact_medium_block_high", b, *PIN).exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    traces = list(iter_traces(a))
    assert len(traces) == 80
    assert {t["stages"]["raw"]["timestamp"] for t in traces} == {"1970-01-01T00:00:00.000Z"}
    assert {t["stages"]["raw"]["source_model"] for t in traces} == {"Llama-3-8b"}


def test_several_policies_in_one_call_write_what_one_call_each_writes(inputs, tmp_path, caplog):
    """The DAG moderates a dataset under every policy in one job: the responses are split
    and scored once, and each policy's traces are the bytes a call of its own writes."""
    spec = (
        '{name: strict, version: "1", description: s, '
        "actions: {low: block, medium: block, high: block}}"
    )
    names = ["observe", "strict", "block_high"]
    together = [tmp_path / f"all-{n}.jsonl" for n in names]
    args = [a for n, o in zip(names, together, strict=True) for a in ("--policy", n, "--out", o)]
    caplog.set_level(logging.INFO)
    res = invoke(
        "moderate", "air-bench-2024", *args, "--policy-spec", spec,
        "--records", inputs / "records.parquet", "--judgments", inputs / "judgments.parquet",
        "--model-dir", inputs / "model", *PIN,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    # one line per policy for its traces; the records without a response, said once
    assert caplog.text.count("without a response have no trace") == 1, caplog.text
    assert all(f"under {n}:" in caplog.text for n in names)
    for name, path in zip(names, together, strict=True):
        alone = tmp_path / f"{name}.jsonl"
        extra = ("--policy-spec", spec) if name == "strict" else ()
        assert run_moderate(inputs, name, alone, *extra, *PIN).exit_code == 0
        assert path.read_bytes() == alone.read_bytes(), name
    actions = {n: {t["stages"]["intervention"]["action"] for t in iter_traces(p)}
               for n, p in zip(names, together, strict=True)}  # fmt: skip
    assert actions["observe"] == {"pass"} and "block" in actions["strict"]
    res = invoke("moderate", "air-bench-2024", "--policy", "observe", "--policy", "strict",
                 "--out", tmp_path / "x.jsonl", "--policy-spec", spec)  # fmt: skip
    assert res.exit_code == 2 and "one --out per --policy: 2 policies" in res.output
    nameless = '{version: "1", description: s, actions: {low: pass, medium: pass, high: block}}'
    res = invoke("moderate", "air-bench-2024", "--policy", "observe", "--policy", "strict",
                 "--policy-spec", nameless)  # fmt: skip
    assert res.exit_code == 2 and "add `name:`" in res.output


def test_source_date_epoch_pins_the_clock(inputs, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "86400")
    out = tmp_path / "t.jsonl"
    assert run_moderate(inputs, "observe", out).exit_code == 0
    first = json.loads(out.read_text().splitlines()[0])
    assert first["stages"]["final"]["timestamp"] == "1970-01-02T00:00:00.000Z"


def test_user_policy_from_a_spec_and_llm_refusal(inputs, tmp_path):
    spec = '{version: "1", description: strict, actions: {low: block, medium: block, high: block}}'
    out = tmp_path / "strict.jsonl"
    res = run_moderate(inputs, "strict", out, "--policy-spec", spec, *PIN)
    assert res.exit_code == 0, res.output
    actions = {t["stages"]["intervention"]["action"] for t in iter_traces(out)}
    assert actions <= {"pass", "block"}
    llm = '{version: "1", description: x, actions: {low: pass, medium: rewrite, high: block}}'
    res = run_moderate(inputs, "llm", tmp_path / "llm.jsonl", "--policy-spec", llm)
    assert res.exit_code == 2
    assert "no LLM backend is configured" in res.output
    res = run_moderate(inputs, "nope", tmp_path / "x.jsonl")
    assert res.exit_code == 2 and "unknown policy 'nope'" in res.output


def test_records_of_another_dataset_are_refused(inputs, tmp_path):
    res = invoke(
        "moderate",
        "hh-rlhf-harmless",
        "--policy",
        "observe",
        "--records",
        inputs / "records.parquet",
        "--judgments",
        inputs / "judgments.parquet",
        "--model-dir",
        inputs / "model",
        "--out",
        tmp_path / "x.jsonl",
    )
    assert res.exit_code == 2 and "not only 'hh-rlhf-harmless'" in res.output


def test_trace_viewer_verb(inputs, tmp_path):
    out = tmp_path / "block_high.jsonl"
    assert run_moderate(inputs, "block_high", out, *PIN).exit_code == 0
    res = invoke("trace-viewer", "--traces", out, "--out-dir", tmp_path / "site")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "site" / "index.html").is_file()
    assert len(list((tmp_path / "site" / "requests").glob("req-*.html"))) == 80
    res = invoke("trace-viewer", "--traces", tmp_path / "missing.jsonl", "--out-dir", tmp_path)
    assert res.exit_code == 2 and "no such trace file" in res.output


def test_embedded_scorer_explains_with_words_of_the_text(inputs):
    scorer = EmbeddedScorer.load(inputs / "model")
    texts = ["I will kill you with a knife tonight.", "Lovely weather for a picnic."]
    cues = scorer.explain(texts, ["violence", "violence"])
    assert cues[0] and all(w.split()[0] in texts[0].lower() for w in cues[0])
    scores = scorer.score(texts)
    assert scores["prob_violence"].iloc[0] > scores["prob_violence"].iloc[1]
    rel = scorer.relevance(["How do I bake bread?"], ["Mix flour, water and yeast."], [""])
    assert list(rel.columns) == ["relevance", "refusal"]
