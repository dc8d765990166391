"""The trace of one moderated response, and its JSON Lines file.

A trace follows one response through four stages under one request id:

1. ``raw``: the prompt, any earlier dialogue, the response as given and its source model;
2. ``analysis``: per-category scores of the whole response and the overall severity, the
   response split into sentences, and flags (category, severity, level, reason,
   confidence) for the sentences and the whole response;
3. ``intervention``: the action the policy's rule chose, the flags that triggered it, a
   justification in words and a unified diff between original and final output;
4. ``final``: the output shown to the user, a one-line safety summary, and the output's
   own severity and relevance (re-scored when it differs from the response).

The pydantic models below build traces in code; the file format is the JSON Schema in
``harmtrace/schemas/traces.yaml`` (a nested document, so JSON Schema, draft-07, rather
than the column schemas the tables use), checked for every trace written and read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import fastjsonschema
import yaml
from pydantic import BaseModel, ConfigDict

from harmtrace.errors import HarmtraceError

TRACE_SCHEMA = "harmtrace.trace/1"


class TraceError(HarmtraceError):
    """A trace file or trace does not match ``schemas/traces.yaml``."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CategoryScore(_Model):
    prob: float | None
    """Calibrated probability; None when the grader gives none."""
    severity: int
    confidence: float | None
    level: str | None
    """Policy level this score reaches (``low``, ``medium``, ``high``) or None."""


class Overall(_Model):
    severity: int
    category: str | None
    """The category with the highest severity (highest probability on ties); None at 0."""
    level: str | None


class Sentence(_Model):
    index: int
    start: int
    end: int
    text: str
    level: str | None
    """Highest policy level any category reaches on this sentence."""


class Flag(_Model):
    id: str
    scope: Literal["response", "sentence"]
    sentence: int | None
    category: str
    severity: int
    level: str
    prob: float
    confidence: float
    reason: str
    cues: list[str]


class RawStage(_Model):
    timestamp: str
    prompt: str
    context: str
    response: str
    source_model: str | None


class AnalysisStage(_Model):
    timestamp: str
    grader: str
    grader_version: str
    splitter: str
    scores: dict[str, CategoryScore]
    overall: Overall
    sentences: list[Sentence]
    flags: list[Flag]
    summary: str


class InterventionStage(_Model):
    timestamp: str
    action: str
    kind: str
    level: str | None
    rule: str | None
    triggered_by: list[str]
    changed_sentences: list[int]
    justification: str
    modified: bool
    diff: str
    backend: str | None


class FinalStage(_Model):
    timestamp: str
    output: str
    summary: str
    severity: dict[str, int]
    overall_severity: int
    relevance: int | None
    refusal: bool | None
    rescored: bool


class Stages(_Model):
    raw: RawStage
    analysis: AnalysisStage
    intervention: InterventionStage
    final: FinalStage


class PolicyRef(_Model):
    name: str
    version: str
    policy_version: str


class GraderRef(_Model):
    name: str
    version: str


class TransitionChange(_Model):
    before: str | None
    after: str | None


class RelevanceChange(_Model):
    before: int | None
    after: int | None


class Trace(_Model):
    schema_id: str = TRACE_SCHEMA
    request_id: str
    record_id: str
    dataset: str
    item_id: str
    policy: PolicyRef
    grader: GraderRef
    categories: list[str]
    """Categories flagged at any level (response or sentence), in taxonomy order."""
    transition: TransitionChange
    """Overall prompt -> response transition before and after moderation."""
    relevance: RelevanceChange
    stages: Stages

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


@cache
def trace_schema() -> dict[str, Any]:
    text = resources.files("harmtrace.schemas").joinpath("traces.yaml").read_text("utf-8")
    return yaml.safe_load(text)


@cache
def _validator() -> Any:
    # fastjsonschema compiles the schema to Python once: ~20x faster than jsonschema's
    # interpreter on these nested documents, which matters at thousands of traces per file
    return fastjsonschema.compile(trace_schema())


def validate_trace(payload: dict[str, Any], where: str = "trace") -> None:
    """Raise :class:`TraceError` naming the first problem's path unless ``payload`` fits."""
    try:
        _validator()(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        path = "/".join(str(p) for p in exc.path[1:]) or "(top level)"
        raise TraceError(f"{where}: at {path}: {exc.message}") from None


def dumps(trace: Trace) -> str:
    """One JSON line (keys in model order, compact, UTF-8 kept)."""
    return json.dumps(trace.to_json(), ensure_ascii=False, separators=(",", ":"))


def write_traces(traces: Iterable[Trace], path: Path) -> int:
    """Validate every trace, then write them as JSON Lines atomically; return the count."""
    path = Path(path)
    lines = []
    seen: set[str] = set()
    for i, trace in enumerate(traces):
        payload = trace.to_json()
        validate_trace(payload, where=f"{path}: trace {i} ({trace.request_id})")
        if trace.request_id in seen:
            raise TraceError(f"{path}: request id {trace.request_id} occurs twice")
        seen.add(trace.request_id)
        lines.append(json.dumps(payload, ensure_ascii=False, separators=(",", ":")))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(path)
    return len(lines)


def iter_traces(path: Path, validate: bool = True) -> Iterator[dict[str, Any]]:
    """Trace payloads of a JSON Lines file, each checked against the schema."""
    path = Path(path)
    if not path.is_file():
        raise TraceError(f"{path}: no such trace file")
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                payload = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TraceError(f"{path}:{lineno}: not JSON ({exc.msg})") from None
            if validate:
                validate_trace(payload, where=f"{path}:{lineno}")
            yield payload


def read_traces(path: Path, validate: bool = True) -> list[Trace]:
    """Every trace of a file as :class:`Trace` models."""
    return [Trace.model_validate(p) for p in iter_traces(path, validate=validate)]
