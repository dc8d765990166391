"""The shared LLM client against a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import email.utils
import multiprocessing
import time
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from harmtrace.llm import (
    AnswerCache,
    ChatRequest,
    EndpointSettings,
    JsonReply,
    LLMClient,
    LLMConfigError,
    TextReply,
    cache_key,
    strict_schema,
)
from harmtrace.llm.client import forget_response_formats, parse_retry_after
from tests.fakeserver import FakeServer

Level = Literal[0, 1, 2, 3]


class Harm(BaseModel):
    rationale: str = Field(max_length=200)
    hate: Level
    violence: Level


def settings(url: str, **kw) -> EndpointSettings:
    base = dict(
        base_url=url,
        model="fake-model",
        api_key_env=None,
        progress="off",
        backoff_initial=0.01,
        backoff_max=0.05,
        timeout=2.0,
    )
    return EndpointSettings(**{**base, **kw})


def requests(n: int, offset: int = 0) -> list[ChatRequest]:
    return [
        ChatRequest(
            [{"role": "user", "content": f"record {i} [hate={i % 4}] [violence={(i // 4) % 4}]"}],
            tag="test-v1",
        )
        for i in range(offset, offset + n)
    ]


def expected(i: int) -> tuple[int, int]:
    return i % 4, (i // 4) % 4


def test_every_request_ends_answered_or_failed_under_heavy_faults():
    faults = {
        "429": 0.30,
        "500": 0.10,
        "malformed": 0.025,
        "truncated": 0.025,
        "hang": 0.01,
        "out_of_range": 0.02,
    }
    n = 200
    with FakeServer(latency=0.002, faults=faults, seed=3, hang=10.0) as server:
        s = settings(server.url, concurrency=16, timeout=0.4)
        with LLMClient(s) as client:
            results = client.complete_json(requests(n), Harm)
            stats = client.last_run
    assert len(results) == n
    faulted = {e.fault for e in server.log}
    assert {"429", "500", "malformed", "truncated", "hang"} <= faulted
    for i, r in enumerate(results):
        if r.ok:
            assert (r.value.hate, r.value.violence) == expected(i)
        else:
            assert r.value is None and r.error  # explicit failure with its reason
            assert any(w in r.error for w in ("HTTP", "no answer within", "unusable reply"))
    ok = sum(r.ok for r in results)
    assert ok >= 0.95 * n
    assert stats.records == n and stats.failures == n - ok
    assert stats.retries > 0.3 * n and stats.reasks > 0 and stats.repaired > 0
    assert stats.requests == server.count()


def test_retry_after_is_honoured():
    # backoff alone would wait ~0.01 s; the server asked for 1 s
    with (
        FakeServer(script=["429"], retry_after=1.0) as server,
        LLMClient(settings(server.url)) as client,
    ):
        [result] = client.complete_json(requests(1), Harm)
    assert result.ok and result.attempts == 2
    assert server.log[1].t - server.log[0].t >= 0.95


def test_parse_retry_after_forms():
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    now = 1_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(7, abs=1)
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None


def test_warm_rerun_sends_zero_requests_and_gives_the_same_values(tmp_path):
    cache = tmp_path / "cache.sqlite"
    with FakeServer(latency=0.001, faults={"500": 0.2}) as server:
        with LLMClient(settings(server.url, cache=str(cache))) as client:
            first = client.complete_json(requests(60), Harm)
        sent = server.count()
        with LLMClient(settings(server.url, cache=str(cache))) as client:
            second = client.complete_json(requests(60), Harm)
            assert client.last_run.requests == 0 and client.last_run.cache_hits == 60
        assert server.count() == sent
    assert all(r.ok for r in first)
    assert [r.value for r in first] == [r.value for r in second]
    assert all(r.cached for r in second) and not any(r.cached for r in first)


def test_cache_key_ignores_url_and_key_but_not_what_changes_answers(tmp_path):
    cache = str(tmp_path / "c.sqlite")
    with FakeServer() as a, FakeServer() as b:
        with LLMClient(settings(a.url, cache=cache), api_key="k1") as client:
            client.complete_json(requests(5), Harm)
        with LLMClient(settings(b.url, cache=cache), api_key="k2") as client:
            client.complete_json(requests(5), Harm)
        assert b.count() == 0
        with LLMClient(settings(b.url, cache=cache, temperature=0.7)) as client:
            client.complete_json(requests(5), Harm)
        assert b.count() == 5
    msgs = [{"role": "user", "content": "x"}]
    base = cache_key("m", "t", msgs, {"temperature": 0})
    assert base == cache_key("m", "t", [dict(m) for m in msgs], {"temperature": 0})
    assert base != cache_key("m2", "t", msgs, {"temperature": 0})
    assert base != cache_key("m", "t2", msgs, {"temperature": 0})
    assert base != cache_key("m", "t", msgs, {"temperature": 0, "max_tokens": 5})
    assert base != cache_key("m", "t", [{"role": "user", "content": "y"}], {"temperature": 0})


def test_identical_requests_in_flight_are_sent_once():
    with (
        FakeServer(latency=0.05) as server,
        LLMClient(settings(server.url, concurrency=8)) as client,
    ):
        results = client.complete_json(requests(1) * 10, Harm)
        assert client.last_run.cache_hits == 9
    assert server.count() == 1
    assert len({r.value.model_dump_json() for r in results}) == 1


def test_concurrency_limit_holds():
    with (
        FakeServer(latency=0.03) as server,
        LLMClient(settings(server.url, concurrency=3)) as client,
    ):
        client.complete_json(requests(30), Harm)
    assert server.max_inflight == 3


def test_rate_limit_spaces_requests():
    with FakeServer() as server:
        start = time.monotonic()
        with LLMClient(settings(server.url, rps=10, concurrency=16)) as client:
            client.complete_json(requests(25), Harm)
        elapsed = time.monotonic() - start
    # a bucket of 10 then 10/s: 15 more requests need about 1.5 s
    assert elapsed >= 1.2


def test_reask_then_explicit_failure_with_reason():
    with FakeServer(script=["out_of_range"]) as server, LLMClient(settings(server.url)) as client:
        [ok] = client.complete_json(requests(1), Harm)
    assert ok.ok and ok.reasks == 1 and ok.attempts == 2
    assert server.log[1].digest != server.log[0].digest  # the re-ask is a new conversation

    with (
        FakeServer(script=["truncated"] * 3) as server,
        LLMClient(settings(server.url, max_reasks=2)) as client,
    ):
        [bad] = client.complete_json(requests(1), Harm)
    assert not bad.ok and bad.reasks == 2
    assert "unusable reply after 3 tries" in bad.error and "cut off at max_tokens" in bad.error


def test_validator_rejects_and_reasks():
    def no_hate_with_violence(h: Harm) -> None:
        if h.hate and h.violence:
            raise ValueError("hate and violence cannot both be set here")

    with FakeServer() as server, LLMClient(settings(server.url, max_reasks=1)) as client:
        [r] = client.complete_json(
            [ChatRequest([{"role": "user", "content": "[hate=1] [violence=2]"}])],
            Harm,
            no_hate_with_violence,
        )
    assert not r.ok and "cannot both be set" in r.error and server.count() == 2


def test_bad_request_fails_that_request_only():
    with (
        FakeServer(script=["400"]) as server,
        LLMClient(settings(server.url, concurrency=1)) as client,
    ):
        results = client.complete_json(requests(3), Harm)
    assert [r.ok for r in results] == [False, True, True]
    assert results[0].error.startswith("HTTP 400: This model's maximum context length")
    assert server.count() == 3  # a 400 is not retried


def test_wrong_key_aborts_with_the_variable_named_and_the_key_redacted(monkeypatch):
    secret = "sk-proj-TOPSECRET0123456789"
    monkeypatch.setenv("HT_TEST_KEY", secret)
    with FakeServer(api_key="sk-other") as server:
        s = settings(server.url, api_key_env="HT_TEST_KEY")
        with LLMClient(s) as client, pytest.raises(LLMConfigError) as err:
            client.complete_json(requests(20), Harm)
    message = str(err.value)
    assert "HTTP 401" in message and "HT_TEST_KEY" in message
    assert secret not in message and "TOPSECRET" not in message
    assert server.log[0].auth == f"Bearer {secret}"


def test_unset_key_variable_is_one_clear_error(monkeypatch):
    monkeypatch.delenv("HT_NO_SUCH_KEY", raising=False)
    with pytest.raises(LLMConfigError, match="HT_NO_SUCH_KEY is not set"):
        LLMClient(settings("http://127.0.0.1:9/v1", api_key_env="HT_NO_SUCH_KEY"))


def test_an_unreachable_server_is_one_clear_error():
    s = settings("http://127.0.0.1:9/v1", max_retries=1)
    with LLMClient(s) as client, pytest.raises(LLMConfigError, match="cannot reach .*:9/v1"):
        client.complete_json(requests(50), Harm)


def test_a_server_that_goes_away_fails_the_rest_without_aborting():
    server = FakeServer(latency=0.01).start()
    results = []
    with LLMClient(settings(server.url, concurrency=1, max_retries=1)) as client:

        def on_result(i, r):
            results.append(r)
            if i == 2:
                server.stop()

        client.complete_json(requests(6), Harm, on_result=on_result)
    assert [r.ok for r in results[:3]] == [True] * 3
    assert not any(r.ok for r in results[4:])
    assert all("connection error" in r.error for r in results[4:])


def test_streaming_results_keep_nothing():
    seen = {}
    with FakeServer() as server, LLMClient(settings(server.url)) as client:
        out = client.complete_json(
            iter(requests(12)), Harm, on_result=lambda i, r: seen.__setitem__(i, r)
        )
    assert out == [] and sorted(seen) == list(range(12))
    assert all((seen[i].value.hate, seen[i].value.violence) == expected(i) for i in seen)


def test_free_text_replies_and_mixed_parsers():
    def verdict(text: str) -> str:
        first = text.strip().splitlines()[0]
        if first not in ("safe", "unsafe"):
            raise ValueError(f"first line is {first!r}")
        return first

    text = TextReply(verdict, name="guard")
    with FakeServer() as server:
        reqs = [
            ChatRequest([{"role": "user", "content": "hello"}], parser=text),
            ChatRequest([{"role": "user", "content": "x [unsafe=S1]"}], parser=text),
            *requests(1),
        ]
        with LLMClient(settings(server.url)) as client:
            results = client.complete(reqs, JsonReply(Harm))
    assert [r.value for r in results[:2]] == ["safe", "unsafe"]
    assert isinstance(results[2].value, Harm)
    assert server.count() == 3


def test_strict_schema_closes_objects():
    class Inner(BaseModel):
        title: str
        default: int = 3

    class Outer(BaseModel):
        inner: Inner
        level: Level = 0

    schema = strict_schema(Outer)
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["inner", "level"]
    inner = schema["$defs"]["Inner"]
    assert inner["required"] == ["title", "default"] and inner["additionalProperties"] is False
    assert "title" in inner["properties"]  # a property called title survives
    assert "default" not in schema["properties"]["level"]
    assert schema["properties"]["level"]["enum"] == [0, 1, 2, 3]


def _worker(url: str, cache: str, offset: int) -> None:
    with LLMClient(settings(url, cache=cache, concurrency=4)) as client:
        results = client.complete_json(requests(40, offset), Harm)
    assert all(r.ok for r in results)


def test_processes_share_one_cache_file(tmp_path):
    cache = str(tmp_path / "shared.sqlite")
    ctx = multiprocessing.get_context("spawn")
    with FakeServer(latency=0.005) as server:
        procs = [ctx.Process(target=_worker, args=(server.url, cache, o)) for o in (0, 20)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(300)  # spawn start-up is slow on a loaded 2-core machine
        assert [p.exitcode for p in procs] == [0, 0]
    with AnswerCache(cache) as c:
        assert len(c) == 60  # 0..59: the 20 overlapping requests stored once


def test_cache_is_wal_and_first_answer_wins(tmp_path):
    from harmtrace.llm.cache import Answer

    path = tmp_path / "c.sqlite"
    with AnswerCache(path) as a, AnswerCache(path) as b:
        assert a._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        first = a.put("k", "m", "t", "d", Answer("one", "stop", 1, 2))
        second = b.put("k", "m", "t", "d", Answer("two", "stop", 3, 4))
        assert first.content == second.content == "one"
        assert b.get("k") == Answer("one", "stop", 1, 2) and b.get("nope") is None


def test_an_error_in_on_result_stops_the_batch_and_is_raised():
    def explode(index, result):
        raise RuntimeError(f"callback failed at {index}")

    with (
        FakeServer() as server,
        LLMClient(settings(server.url, concurrency=2)) as client,
        pytest.raises(RuntimeError, match="callback failed"),
    ):
        client.complete_json(iter(requests(2000)), Harm, on_result=explode)
    assert server.count() < 2000


# ------------------------------------------------------------------ response formats
@pytest.fixture
def fresh_formats():
    """Nothing learned about endpoints by earlier tests (a port may be reused)."""
    forget_response_formats()
    yield
    forget_response_formats()


@pytest.mark.parametrize("status", [500, 400])
def test_a_rejected_json_schema_is_detected_once_and_json_object_used(fresh_formats, status):
    with FakeServer(latency=0.01, reject_formats={"json_schema": status}) as server:
        with LLMClient(settings(server.url, concurrency=8)) as client:
            results = client.complete_json(requests(20), Harm)
            stats = client.last_run
            assert client.response_format == "json_object"
            assert len(client.formats.changes) == 1
            assert f"HTTP {status}" in client.formats.changes[0]
            # a second batch on the same client never tries the schema again
            client.complete_json(requests(5, offset=20), Harm)
        with LLMClient(settings(server.url)) as again:  # nor does another client
            again.complete_json(requests(5, offset=40), Harm)
        assert server.count(format="json_schema") == 1
        assert server.count(format="json_object") == 30 and server.count() == 31
    assert all(r.ok and r.response_format == "json_object" for r in results)
    assert [(r.value.hate, r.value.violence) for r in results] == [expected(i) for i in range(20)]
    assert stats.retries == 0 and stats.requests == 21
    assert sum(r.attempts for r in results) == 21  # the rejected probe counts for its record


def test_fallback_order_ends_with_the_prompt_alone(fresh_formats):
    reject = {"json_schema": 400, "json_object": 500}
    with FakeServer(reject_formats=reject) as server:
        with LLMClient(settings(server.url, concurrency=4)) as client:
            results = client.complete_json(requests(6), Harm)
        kinds = [e.format for e in server.log]
    assert kinds[:2] == ["json_schema", "json_object"] and set(kinds[2:]) == {"none"}
    assert len(kinds) == 8
    # the schema went into the prompt: the fake model answered it from there
    assert all(r.ok and r.response_format == "none" for r in results)
    assert [(r.value.hate, r.value.violence) for r in results] == [expected(i) for i in range(6)]


def test_schema_note_joins_the_first_system_message():
    from harmtrace.llm.client import with_schema_note

    schema = {"type": "object"}
    system = [{"role": "system", "content": "Rate it."}, {"role": "user", "content": "x"}]
    out = with_schema_note(system, schema)
    assert len(out) == 2 and out[0]["content"].startswith("Rate it.\n\nReply with one JSON")
    assert out[0]["content"].endswith('{"type":"object"}') and system[0]["content"] == "Rate it."
    bare = with_schema_note([{"role": "user", "content": "x"}], schema)
    assert [m["role"] for m in bare] == ["system", "user"]


def test_a_plain_500_is_still_retried_and_not_taken_for_a_format_problem(fresh_formats):
    with FakeServer(script=["500", "500"]) as server, LLMClient(settings(server.url)) as client:
        [r] = client.complete_json(requests(1), Harm)
        assert client.last_run.retries == 2 and client.formats.changes == []
    assert r.ok and r.attempts == 3 and r.response_format == "json_schema"
    assert server.count(format="json_schema") == 3


def test_an_explicit_format_that_is_rejected_aborts_with_the_fix(fresh_formats):
    with FakeServer(reject_formats={"json_schema": 500}) as server:
        s = settings(server.url, response_format="json_schema")
        with LLMClient(s) as client, pytest.raises(LLMConfigError) as err:
            client.complete_json(requests(10), Harm)
        digests = [e.digest for e in server.log]
        assert len(digests) == len(set(digests))  # none retried; the batch stopped
    message = str(err.value)
    assert (
        "rejects response_format 'json_schema'" in message
        and "set response_format to auto" in message
    )


def test_a_warm_rerun_after_a_fallback_sends_nothing(fresh_formats, tmp_path):
    cache = str(tmp_path / "c.sqlite")
    with FakeServer(reject_formats={"json_schema": 500}) as server:
        with LLMClient(settings(server.url, cache=cache)) as client:
            first = client.complete_json(requests(8), Harm)
        sent = server.count()
        forget_response_formats()  # as a new process would start
        with LLMClient(settings(server.url, cache=cache)) as client:
            second = client.complete_json(requests(8), Harm)
            assert client.last_run.requests == 0 and client.response_format == "json_object"
        assert server.count() == sent == 9
    assert [r.value for r in first] == [r.value for r in second]
    assert all(r.cached and r.response_format == "json_object" for r in second)


def test_free_text_requests_ignore_the_format_and_expose_finish_reason(fresh_formats):
    text = TextReply(lambda t: t, name="free")
    with FakeServer(reject_formats={"json_schema": 500}, script=[None, "truncated"]) as server:
        reqs = [ChatRequest([{"role": "user", "content": f"hello {i}"}]) for i in range(3)]
        with LLMClient(settings(server.url, concurrency=1)) as client:
            results = client.complete(reqs, text)
            assert client.formats.changes == []
    assert server.count(format="none") == 3
    assert all(r.ok and r.response_format == "none" for r in results)
    assert [r.finish_reason for r in results] == ["stop", "length", "stop"]
    assert results[1].content == "safe"[:2]  # cut off, as the server said
