"""Trace files: the JSON schema, the pydantic models, writing and reading JSON Lines."""

from __future__ import annotations

import copy
import json
import re

import pytest

from harmtrace.errors import HarmtraceError
from harmtrace.moderate.clock import clock_from_env, fixed_clock, isoformat, parse_clock
from harmtrace.moderate.flow import moderate_records
from harmtrace.moderate.policies import get_policy
from harmtrace.moderate.trace import (
    Trace,
    TraceError,
    iter_traces,
    read_traces,
    trace_schema,
    validate_trace,
    write_traces,
)
from tests.moderation_fakes import KeywordScorer, make_judgments, make_records


@pytest.fixture(scope="module")
def traces():
    scorer = KeywordScorer()
    records = make_records(
        [("q one", "A slur here. Fine there."), ("q two", "The massacre. Done."), ("q", None)]
    )
    return moderate_records(
        records,
        make_judgments(records, scorer),
        scorer,
        get_policy("redact_medium_block_high"),
        clock=fixed_clock(0),
    )


def _required(schema: dict, path: list[str]) -> set[str]:
    node = schema
    for key in path:
        node = node["properties"][key]
    return set(node["required"])


def test_schema_and_models_name_the_same_fields():
    schema = trace_schema()
    assert _required(schema, []) == set(Trace.model_fields)
    stages = Trace.model_fields["stages"].annotation
    for stage, field in stages.model_fields.items():
        assert _required(schema, ["stages", stage]) == set(field.annotation.model_fields), stage


def test_written_traces_read_back_equal(traces, tmp_path):
    path = tmp_path / "p" / "toy.jsonl"
    assert write_traces(traces, path) == 2
    assert read_traces(path) == traces
    assert len(path.read_text().splitlines()) == 2


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda t: t.update(request_id="nope"), "request_id"),
        (lambda t: t["stages"]["final"].update(summary="two\nlines"), "stages/final/summary"),
        (lambda t: t["stages"]["analysis"]["scores"].pop("hate"), "stages/analysis/scores"),
        (
            lambda t: t["stages"]["intervention"].update(action="shrug"),
            "stages/intervention/action",
        ),
        (lambda t: t["stages"]["raw"].update(timestamp="yesterday"), "stages/raw/timestamp"),
        (lambda t: t.update(extra=1), "(top level)"),
    ],
)
def test_schema_violations_name_their_path(traces, mutate, where):
    payload = copy.deepcopy(traces[0].to_json())
    validate_trace(payload)
    mutate(payload)
    with pytest.raises(TraceError, match=f"at {re.escape(where)}"):
        validate_trace(payload, where="x.jsonl:1")


def test_reading_a_bad_line_names_file_and_line(traces, tmp_path):
    path = tmp_path / "bad.jsonl"
    good = json.dumps(traces[0].to_json())
    path.write_text(good + "\n{not json\n", encoding="utf-8")
    with pytest.raises(TraceError, match="bad.jsonl:2: not JSON"):
        list(iter_traces(path))


def test_duplicate_request_ids_are_refused(traces, tmp_path):
    with pytest.raises(TraceError, match="occurs twice"):
        write_traces([traces[0], traces[0]], tmp_path / "dup.jsonl")


def test_parse_clock_settings(monkeypatch):
    assert isoformat(parse_clock("2025-03-12T10:00:00Z")()) == "2025-03-12T10:00:00.000Z"
    assert isoformat(parse_clock("2025-03-12T11:00:00+01:00")()) == "2025-03-12T10:00:00.000Z"
    assert isoformat(parse_clock(86400)()) == "1970-01-02T00:00:00.000Z"
    assert isoformat(parse_clock("86400")()) == "1970-01-02T00:00:00.000Z"
    assert parse_clock("now")().year >= 2025
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    assert isoformat(parse_clock(None)()) == "1970-01-01T00:00:00.000Z"
    for bad in ("tomorrow", "2025-03-12T10:00:00"):
        with pytest.raises(HarmtraceError, match="clock"):
            parse_clock(bad)


def test_clock_helpers(monkeypatch):
    assert isoformat(fixed_clock(1_700_000_000.25)()) == "2023-11-14T22:13:20.250Z"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "86400")
    assert isoformat(clock_from_env()()) == "1970-01-02T00:00:00.000Z"
    assert isoformat(clock_from_env(0)()) == "1970-01-01T00:00:00.000Z"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "soon")
    with pytest.raises(HarmtraceError, match="SOURCE_DATE_EPOCH"):
        clock_from_env()
