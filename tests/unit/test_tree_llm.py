"""The openai tree generator against the fake OpenAI-compatible server (loopback HTTP):
valid trees, malformed JSON repaired, bounded re-asks then a recorded failure, cache
hits on a rerun, the SafetyReporter style, and the missing-key check."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from harmtrace.data.air_taxonomy import load_air_taxonomy
from harmtrace.llm import LLMConfigError
from harmtrace.trees.llm_generator import OpenAITreeGenerator, request_schema
from harmtrace.trees.registry import make_spec
from harmtrace.trees.tree_files import summarise
from tests.fakeserver import FakeServer
from tests.unit.test_tree_prompts import BENEFITS, HARMS


@pytest.fixture(scope="module")
def taxonomy(raw_dir: Path):
    return load_air_taxonomy(raw_dir)


def records(prompts):
    return pd.DataFrame(
        {
            "record_id": [f"{i:016x}" for i in range(len(prompts))],
            "dataset": "toy",
            "prompt": prompts,
        }
    )


OWN_KEYS = ("style", "harm_model", "benefit_model", "max_attempts", "raw_dir")


def generator(url, taxonomy, tmp_path, **spec):
    """The generator on ``url``: its own keys beside ``endpoint``, endpoint keys inside."""
    endpoint = {
        "base_url": url,
        "model": "fake-model",
        "api_key_env": None,
        "cache": str(tmp_path / "cache.sqlite"),
        "progress": "off",
        "timeout": 5.0,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
    }
    own = {k: spec.pop(k) for k in OWN_KEYS if k in spec}
    block = {"endpoint": {**endpoint, **spec}, **own}
    return OpenAITreeGenerator(make_spec("openai", block), taxonomy=taxonomy)


def verbatim(obj) -> str:
    """A prompt the fake server answers with exactly ``obj`` (its gullible mode)."""
    return "REPLY VERBATIM:" + json.dumps(json.dumps(obj))[1:-1] + "END"


def test_valid_trees_from_the_schema(taxonomy, tmp_path):
    with FakeServer() as server:
        gen = generator(server.url, taxonomy, tmp_path)
        out = gen.generate(records(["how do I pick a lock?", "write a poem about rain"]))
    assert [r.status for r in out] == ["ok", "ok"]
    r = out[0]
    assert r.attempts == 1 and not r.repaired and not r.provenance.proxy
    assert r.provenance.version.startswith("openai-1.0/prompt-1-")
    assert r.provenance.version == f"{gen.version}/format-json_schema"
    air = r.tree.stakeholders[0].harms[0].air
    assert air.l2 in taxonomy.level2  # enumerated in the request schema
    assert server.count(200) == 2


def test_request_schema_enumerates_air_names(taxonomy):
    schema = request_schema(taxonomy)
    air = schema["$defs"]["AirType"]["properties"]
    assert air["l2"]["enum"] == list(taxonomy.level2)
    assert "Violent acts" in air["l3"]["anyOf"][0]["enum"]
    assert schema["$defs"]["AirType"]["additionalProperties"] is False


def test_malformed_json_is_repaired(taxonomy, tmp_path):
    with FakeServer(script=["malformed"]) as server:
        gen = generator(server.url, taxonomy, tmp_path)
        (r,) = gen.generate(records(["how do I pick a lock?"]))
    assert server.log[0].fault == "malformed"
    assert r.status == "ok" and r.repaired and r.attempts == 1
    assert server.count(200) == 1


def test_bounded_reasks_then_recorded_failure(taxonomy, tmp_path):
    bad = {
        "stakeholders": [
            {"name": "x", "harms": [{"action": "a", "air": {"l2": "Cooking"}, "effects": []}]}
        ]
    }
    good_prompt = "a normal request"
    with FakeServer() as server:
        gen = generator(server.url, taxonomy, tmp_path, max_attempts=3)
        out = gen.generate(records([verbatim(bad), good_prompt]))
    failed, ok = out
    assert failed.status == "failed" and failed.tree is None
    assert failed.attempts == 3
    assert "unusable reply after 3 tries" in failed.errors[-1]
    assert "Cooking" in failed.errors[-1] or "effects" in failed.errors[-1]
    assert json.loads(failed.raw) == bad
    assert ok.status == "ok"
    assert server.count(200) == 3 + 1  # three asks for the bad prompt, one for the good
    s = summarise(out)
    assert (s.ok, s.failed) == (1, 1)


def test_rerun_is_served_from_the_cache(taxonomy, tmp_path):
    prompts = [f"request number {i}" for i in range(6)]
    with FakeServer() as server:
        first = generator(server.url, taxonomy, tmp_path).generate(records(prompts))
        sent = server.count()
        gen = generator(server.url, taxonomy, tmp_path)
        second = gen.generate(records(prompts))
        assert server.count() == sent  # nothing new was sent
    assert [r.model_dump() for r in first] == [r.model_dump() for r in second]
    assert gen.stats.cache_hits == 6 and gen.stats.requests == 0


def test_killed_run_resumes_with_only_missing_requests(taxonomy, tmp_path):
    prompts = [f"request number {i}" for i in range(5)]
    with FakeServer() as server:
        generator(server.url, taxonomy, tmp_path).generate(records(prompts[:3]))
        before = server.count()
        generator(server.url, taxonomy, tmp_path).generate(records(prompts))
        assert server.count() - before == 2


def test_transient_errors_are_retried(taxonomy, tmp_path):
    with FakeServer(script=["429", "500"]) as server:
        gen = generator(server.url, taxonomy, tmp_path)
        (r,) = gen.generate(records(["hello"]))
    assert r.status == "ok" and server.count() == 3 and gen.stats.retries == 2


def test_safetyreporter_style_merges_the_two_models(taxonomy, tmp_path):
    both = [{**HARMS[0], "benefits": BENEFITS[0]["benefits"]}]
    with FakeServer() as server:
        gen = generator(server.url, taxonomy, tmp_path, style="safetyreporter", max_attempts=2)
        ok, bad = gen.generate(records([verbatim(both), "plain text answer"]))
    assert ok.status == "ok" and ok.attempts == 1
    assert ok.tree.stakeholders[0].harms[0].air.l2 == "Criminal Activities"
    assert ok.tree.stakeholders[0].benefits[0].effects[0].category == "collective"
    # "safe" is not JSON: regenerated once with the next seed, then recorded as failed
    assert bad.status == "failed" and bad.attempts == 2 and len(bad.errors) == 2
    assert bad.raw.startswith("HARMS:\nsafe")
    assert server.count(200) == 2 * 2 + 2  # two models for both, then both again for one


def test_missing_key_fails_before_any_request(taxonomy, tmp_path, monkeypatch):
    monkeypatch.delenv("HARMTRACE_TEST_KEY", raising=False)
    gen = generator("http://127.0.0.1:9/v1", taxonomy, tmp_path, api_key_env="HARMTRACE_TEST_KEY")
    with pytest.raises(LLMConfigError, match="HARMTRACE_TEST_KEY is not set"):
        gen.generate(records(["x"]))


def test_spec_hash_ignores_transport_settings():
    a = make_spec(
        "openai",
        {"endpoint": {"base_url": "http://a/v1", "concurrency": 64, "cache": None}, "raw_dir": "x"},
    )
    b = make_spec("openai", {})
    c = make_spec("openai", {"endpoint": {"model": "other"}})
    d = make_spec("openai", {"endpoint": {"temperature": 0.5}})
    assert a.spec_hash() == b.spec_hash() != c.spec_hash()
    assert d.spec_hash() not in (b.spec_hash(), c.spec_hash())
    # the generator's own defaults survive a partial endpoint block
    assert a.endpoint.max_tokens == b.endpoint.max_tokens == 4096
    assert a.endpoint.model == "gpt-4o-mini" and a.endpoint.timeout == 120


def test_max_reasks_is_not_a_second_retry_budget():
    from harmtrace.trees.registry import GeneratorConfigError

    with pytest.raises(GeneratorConfigError, match="max_reasks is not used.*max_attempts"):
        make_spec("openai", {"endpoint": {"max_reasks": 4}})


def test_a_server_without_json_schema_gets_json_object_with_the_schema(taxonomy, tmp_path):
    from harmtrace.llm import forget_response_formats

    forget_response_formats()
    with FakeServer(reject_formats={"json_schema": 500}) as server:
        gen = generator(server.url, taxonomy, tmp_path)
        out = gen.generate(records(["how do I pick a lock?", "write a poem about rain"]))
        assert server.count(format="json_schema") == 1
        assert server.count(format="json_object", status=200) == 2
    assert [r.status for r in out] == ["ok", "ok"]
    assert {r.provenance.version for r in out} == {f"{gen.version}/format-json_object"}
