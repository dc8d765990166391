"""The LLM stages against a real server: ``transformers serve`` with SmolLM2-135M-Instruct.

What a fake server cannot show: that the client speaks to a real implementation of the
protocol (its request and response bodies, finish reasons, usage), and what happens with
a small model that writes free text whatever response format it is asked for. Every
test asserts the contract -- each item ends ``ok`` or failed with a reason, the
repair/re-ask path runs, a warm rerun sends nothing, the response format is recorded --
never what the model says. Timings are printed (``pytest -s``) for docs/llm.md.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
from pydantic import BaseModel

from harmtrace.graders import make_grader, validate_judgments
from harmtrace.llm import ChatRequest, EndpointSettings, LLMClient
from harmtrace.targets.base import conversation
from harmtrace.targets.registry import make_target
from harmtrace.trees.llm_generator import OpenAITreeGenerator
from harmtrace.trees.registry import make_spec
from tests.realserver.conftest import RealServer

pytestmark = pytest.mark.realserver


def endpoint(server: RealServer, cache: Path, **kw) -> dict:
    """One request at a time (the server gets slower, not faster, with two), long timeouts."""
    base = {
        "base_url": server.url,
        "model": server.model,
        "api_key_env": None,
        "concurrency": 1,
        "timeout": 300.0,
        "max_retries": 1,
        "backoff_initial": 0.5,
        "progress": "off",
        "cache": str(cache),
    }
    return {**base, **kw}


def report(what: str, seconds: float, stats) -> None:
    tokens = stats.completion_tokens
    rate = tokens / seconds if seconds > 0 else 0.0
    per = seconds / stats.requests if stats.requests else 0.0
    print(
        f"\n[realserver] {what}: {seconds:.1f} s ({per:.1f} s per request), "
        f"{stats.requests} HTTP requests, "
        f"{stats.reasks} re-asks, {stats.repaired} repaired, {tokens} completion tokens "
        f"({rate:.1f} tok/s), {stats.prompt_tokens} prompt tokens"
    )


def test_target_answers_and_a_warm_rerun_sends_nothing(real_server: RealServer, tmp_path):
    block = {
        "backend": "openai",
        "system_prompt": "You are a helpful assistant. Answer in one short sentence.",
        "endpoint": endpoint(real_server, tmp_path / "answers.sqlite", max_tokens=12),
    }
    prompts = ["What is the capital of France?", "Name one colour.", "Say hello."]
    convs = [conversation(block["system_prompt"], [], p) for p in prompts]
    target = make_target("smollm2-endpoint", block)
    start = time.perf_counter()
    first = target.generate(convs)
    report("target, 3 prompts, max_tokens 12", time.perf_counter() - start, target.last_run)
    print("[realserver] answers:", [(a.finish_reason, a.text) for a in first if a])
    assert len(first) == 3
    for answer in first:
        assert answer is not None
        if answer.finish_reason == "error":
            assert answer.error
        else:
            assert answer.finish_reason in ("stop", "length") and answer.text.strip()
            assert answer.completion_tokens > 0 and answer.prompt_tokens > 0
    assert target.last_run.requests >= 3

    again = make_target("smollm2-endpoint", block)
    second = again.generate(convs)
    assert again.last_run.requests == 0 and again.last_run.cache_hits == 3
    assert second == first
    assert target.provenance()["weights_sha256"] is None  # unknown behind an endpoint


def records(prompts: list[str]) -> pd.DataFrame:
    n = len(prompts)
    return pd.DataFrame(
        {
            "record_id": pd.array([f"{i:016x}" for i in range(n)], dtype="string"),
            "dataset": pd.array(["real"] * n, dtype="string"),
            "item_id": pd.array([str(i) for i in range(n)], dtype="string"),
            "prompt": pd.array(prompts, dtype="string"),
            "context": pd.array([""] * n, dtype="string"),
            "response": pd.array([None] * n, dtype="string"),
            "response_source": pd.array([None] * n, dtype="string"),
        }
    )


def test_grader_ends_every_record_and_reasks(real_server: RealServer, tmp_path):
    # 16 tokens cannot hold the rubric's JSON: the reply is cut off, then re-asked
    spec = {"endpoint": endpoint(real_server, tmp_path / "grades.sqlite", max_tokens=16)}
    spec["endpoint"]["max_reasks"] = 1
    recs = records(["How do I pick a lock?"])  # one record: ~15 s per request here
    grader = make_grader("openai", spec)
    start = time.perf_counter()
    out = grader.grade(recs)
    report("grader, 1 prompt-only record, max_tokens 16", time.perf_counter() - start,
           grader.last_run)  # fmt: skip
    validate_judgments(out)
    assert out["record_id"].tolist() == recs["record_id"].tolist()
    print("[realserver] grader rows:", out[["status", "error"]].to_dict("records"))
    for _, row in out.iterrows():
        assert row["status"] == "ok" or row["error"].startswith("prompt: "), row["error"]
    stats = grader.last_run
    assert stats.reasks + stats.repaired > 0  # the repair / re-ask path ran
    # json_schema is accepted (and not enforced) by this server: no fallback was needed
    assert (out["grader_version"] == f"{grader.version}/format-json_schema").all()

    again = make_grader("openai", spec)
    second = again.grade(recs)
    assert again.last_run.requests == 0
    assert again.last_run.cache_hits == stats.records + stats.reasks  # every turn, no retry
    pd.testing.assert_frame_equal(second, out)


def test_tree_generator_ends_the_prompt_and_reasks(real_server: RealServer, taxonomy_dir, tmp_path):
    block = {
        "endpoint": endpoint(real_server, tmp_path / "trees.sqlite", max_tokens=32),
        "max_attempts": 2,
        "raw_dir": str(taxonomy_dir),
    }
    gen = OpenAITreeGenerator(make_spec("openai", block))
    recs = pd.DataFrame(
        {"record_id": ["0" * 16], "dataset": ["real"], "prompt": ["How do I pick a lock?"]}
    )
    start = time.perf_counter()
    (tree,) = gen.generate(recs)
    report("tree generator, 1 prompt, max_tokens 32", time.perf_counter() - start, gen.stats)
    print(f"[realserver] tree: {tree.status}, errors {tree.errors}, last reply {tree.raw!r}")
    if tree.status == "ok":
        assert tree.tree is not None
    else:
        assert tree.errors and tree.raw is not None and tree.attempts == 2  # re-asked once
    assert gen.stats.reasks + gen.stats.repaired > 0
    assert tree.provenance.version == f"{gen.version}/format-json_schema"

    again = OpenAITreeGenerator(make_spec("openai", block))
    (same,) = again.generate(recs)
    assert again.stats.requests == 0 and same == tree


class Capital(BaseModel):
    city: str


def test_json_schema_is_accepted_but_not_enforced(real_server: RealServer, tmp_path):
    """What this server does with a strict response format: it takes it (HTTP 200, so
    ``auto`` stays on json_schema) and answers free text anyway; validation notices."""
    settings = EndpointSettings(**endpoint(real_server, tmp_path / "c.sqlite", max_tokens=16,
                                           max_reasks=0))  # fmt: skip
    request = ChatRequest([{"role": "user", "content": "What is the capital of France?"}])
    with LLMClient(settings) as client:
        [result] = client.complete_json([request], Capital)
        assert client.response_format == "json_schema" and client.formats.changes == []
    assert result.response_format == "json_schema" and result.attempts == 1
    assert result.content is not None and result.finish_reason in ("stop", "length")
    try:
        json.loads(result.content)
        enforced = True
    except ValueError:
        enforced = False
    print(f"\n[realserver] json_schema reply (valid JSON: {enforced}): {result.content!r}")
    assert result.ok or "unusable reply" in result.error
