"""The ``openai`` target against the fake OpenAI-compatible server (loopback HTTP): one
answer per conversation, done ones skipped, finish reasons and tokens from the server,
failures as error answers, a warm rerun from the cache, and what the provenance holds."""

from __future__ import annotations

import pytest

from harmtrace.llm import LLMConfigError
from harmtrace.targets.base import Answer, conversation
from harmtrace.targets.openai import OpenAITarget
from harmtrace.targets.registry import TargetConfigError, make_target
from tests.fakeserver import FakeServer


def target(url: str, tmp_path=None, **endpoint) -> OpenAITarget:
    block = {
        "backend": "openai",
        "system_prompt": endpoint.pop("system_prompt", "Be brief."),
        "endpoint": {
            "base_url": url,
            "model": "fake-target",
            "api_key_env": None,
            "progress": "off",
            "timeout": 2.0,
            "backoff_initial": 0.01,
            "backoff_max": 0.05,
            "cache": str(tmp_path / "answers.sqlite") if tmp_path else None,
            **endpoint,
        },
    }
    made = make_target("t", block)
    assert isinstance(made, OpenAITarget)
    return made


def convs(n: int, system: str | None = "Be brief.") -> list[list[dict[str, str]]]:
    """Conversations the fake model answers with ``answer <i>`` (its verbatim mode)."""
    return [conversation(system, [], f"REPLY VERBATIM: answer {i} END") for i in range(n)]


def test_every_conversation_gets_its_answer_in_order_and_streamed(tmp_path):
    seen: dict[int, Answer] = {}
    with FakeServer(latency=0.005) as server:
        t = target(server.url, tmp_path, concurrency=4)
        out = t.generate(convs(6), on_answer=seen.__setitem__)
        assert server.count() == 6 and server.count(format="none") == 6
    assert [a.text for a in out] == [f"answer {i}" for i in range(6)]
    assert seen == dict(enumerate(out))
    assert all(a.finish_reason == "stop" and a.error is None for a in out)
    assert all(a.prompt_tokens > 0 and a.completion_tokens > 0 for a in out)


def test_done_indices_are_skipped_and_left_none(tmp_path):
    seen = []
    with FakeServer() as server:
        out = target(server.url).generate(
            convs(5), done=[0, 3], on_answer=lambda i, a: seen.append(i)
        )
        assert server.count() == 3
    assert out[0] is None and out[3] is None
    assert [out[i].text for i in (1, 2, 4)] == ["answer 1", "answer 2", "answer 4"]
    assert sorted(seen) == [1, 2, 4]
    with FakeServer() as server:
        assert target(server.url).generate(convs(2), done=[0, 1]) == [None, None]
        assert server.count() == 0


def test_length_and_failures_come_back_as_answers():
    # request 0 is cut off; request 1 gets a 400 (not retried); request 2 two 500s (retried)
    with FakeServer(script=["truncated", "400", "500", "500"]) as server:
        out = target(server.url, concurrency=1).generate(convs(3))
        assert server.count() == 5
    cut, bad, retried = out
    assert cut.finish_reason == "length" and cut.text == "answer 0"[:4]
    assert bad.finish_reason == "error" and bad.text == ""
    assert bad.error.startswith("HTTP 400: This model's maximum context length")
    assert retried.finish_reason == "stop" and retried.text == "answer 2"


def test_a_warm_rerun_sends_nothing(tmp_path):
    with FakeServer() as server:
        first = target(server.url, tmp_path).generate(convs(4))
        sent = server.count()
        t = target(server.url, tmp_path)
        second = t.generate(convs(4))
        assert server.count() == sent == 4
    assert t.last_run.requests == 0 and t.last_run.cache_hits == 4
    assert first == second


def test_no_response_format_is_sent_whatever_the_setting():
    with FakeServer() as server:
        t = target(server.url, response_format="json_schema")
        [a] = t.generate(convs(1))
        assert server.log[0].format == "none"
    assert a.text == "answer 0"


def test_defaults_and_spec_errors():
    t = target("http://127.0.0.1:9/v1")
    assert t.spec.endpoint.max_tokens == 256 and t.spec.endpoint.response_format == "none"
    assert target("http://x/v1", max_tokens=12).spec.endpoint.max_tokens == 12
    with pytest.raises(TargetConfigError, match=r"targets\.t\.endpoint\.model"):
        make_target("t", {"backend": "openai", "endpoint": {}})
    with pytest.raises(TargetConfigError, match=r"targets\.t\.base_url"):
        make_target("t", {"backend": "openai", "endpoint": {"model": "m"}, "base_url": "x"})


def test_check_needs_the_key_variable(monkeypatch):
    monkeypatch.delenv("HT_TARGET_KEY", raising=False)
    t = target("http://127.0.0.1:9/v1", api_key_env="HT_TARGET_KEY")
    with pytest.raises(LLMConfigError, match="HT_TARGET_KEY is not set"):
        t.check()
    monkeypatch.setenv("HT_TARGET_KEY", "k")
    t.check()


def test_provenance_names_what_decides_answers_and_not_where_they_come_from():
    t = target("http://a/v1", temperature=0.0, seed=4)
    prov = t.provenance()
    assert prov["backend"] == "openai" and prov["model"] == "fake-target"
    assert prov["weights_sha256"] is None and prov["chat_template_sha256"] is None
    assert prov["system_prompt"] == "Be brief."
    assert prov["sampling"] == {"temperature": 0.0, "max_tokens": 256, "seed": 4}
    assert prov["max_tokens"] == 256
    assert "http://a/v1" not in str(prov)
    moved = target("http://b/v1", temperature=0.0, seed=4, concurrency=64, timeout=9)
    assert moved.fingerprint() == t.fingerprint()
    for change in ({"temperature": 0.7}, {"max_tokens": 9}, {"system_prompt": None}):
        assert target("http://a/v1", seed=4, **change).fingerprint() != t.fingerprint()
