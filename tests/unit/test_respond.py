"""The respond stage's shard runner: conversations, resume after a kill, answer records."""

from __future__ import annotations

from typing import ClassVar

import pandas as pd
import pytest

from harmtrace.data.normalize import build_records, record_id
from harmtrace.io import validate
from harmtrace.targets.base import Answer, Target, TargetSpec
from harmtrace.targets.respond import (
    RespondError,
    answer_dataset,
    answer_shard,
    context_turns,
    conversations,
    gather_answers,
    sample_prompts,
)


class EchoSpec(TargetSpec):
    suffix: str = "!"


class Echo(Target):
    """Answers with the prompt reversed; counts what it was asked; can die mid-run."""

    name: ClassVar[str] = "echo"
    Spec: ClassVar[type[TargetSpec]] = EchoSpec

    def __init__(self, spec: TargetSpec, die_after: int | None = None) -> None:
        super().__init__(spec)
        self.asked: list[int] = []
        self.die_after = die_after

    def provenance(self):
        return {
            "backend": "echo",
            "system_prompt": self.spec.system_prompt,
            "suffix": self.spec.suffix,
        }

    def generate(self, conversations, *, done=(), on_answer=None):
        out: list[Answer | None] = [None] * len(conversations)
        for i, conv in enumerate(conversations):
            if i in set(done):
                continue
            if self.die_after is not None and len(self.asked) >= self.die_after:
                raise KeyboardInterrupt("killed")
            self.asked.append(i)
            text = conv[-1]["content"][::-1] + self.spec.suffix
            out[i] = Answer(text, "stop", prompt_tokens=len(conv), completion_tokens=len(text))
            if on_answer:
                on_answer(i, out[i])
        return out


def _prompts(n: int = 5, context: str = "") -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "item_id": [f"q{i}" for i in range(n)],
            "prompt": [f"question number {i}" for i in range(n)],
            "context": [context] * n,
            "response": [None] * n,
            "response_source": [None] * n,
            "sst_harm_area": ["area"] * n,
        }
    )
    frame["_source_row"] = range(n)
    return build_records("simplesafetytests", frame).records


def test_hh_transcript_context_becomes_turns():
    turns = context_turns("\n\nHuman: hi there\n\nAssistant: hello, how can I help?")
    assert turns == [
        {"role": "user", "content": "hi there"},
        {"role": "assistant", "content": "hello, how can I help?"},
    ]
    assert context_turns("some earlier text") == [{"role": "user", "content": "some earlier text"}]
    assert context_turns("  ") == []


def test_conversation_puts_the_condition_first():
    convs = conversations(_prompts(1, context="\n\nHuman: a\n\nAssistant: b"), "be safe")
    assert [m["role"] for m in convs[0]] == ["system", "user", "assistant", "user"]
    assert convs[0][0]["content"] == "be safe"
    assert convs[0][-1]["content"] == "question number 0"


def test_an_empty_prompt_is_refused_with_its_record():
    prompts = _prompts(2)
    prompts.loc[1, "prompt"] = "   "
    with pytest.raises(RespondError, match=prompts.loc[1, "record_id"]):
        conversations(prompts, None)


def test_answer_records_follow_the_schema_and_keep_labels(tmp_path):
    target = Echo(EchoSpec(system_prompt="s"))
    res = answer_shard(
        _prompts(3), prompt_set="simplesafetytests", target_name="echo-s", target=target,
        kind="harmful", progress=tmp_path / "log.jsonl",
    )  # fmt: skip
    rec = validate(res.records, "records")
    dataset = answer_dataset("simplesafetytests", "echo-s")
    assert (rec["dataset"] == dataset).all()
    assert rec["record_id"].tolist() == [record_id(dataset, f"q{i}", "echo-s") for i in range(3)]
    assert rec["response"].tolist() == [f"question number {i}"[::-1] + "!" for i in range(3)]
    assert (rec["sst_harm_area"] == "area").all()
    assert (rec["gen_prompt_kind"] == "harmful").all()
    assert rec["gen_finish_reason"].tolist() == ["stop"] * 3
    assert res.generated == 3 and res.reused == 0


def test_a_killed_run_resumes_with_only_the_missing_prompts(tmp_path):
    log = tmp_path / "log.jsonl"
    prompts = _prompts(5)
    args = {"prompt_set": "simplesafetytests", "target_name": "e", "kind": "benign"}
    dying = Echo(EchoSpec(), die_after=2)
    with pytest.raises(KeyboardInterrupt):
        answer_shard(prompts, target=dying, progress=log, **args)
    with log.open("a") as fh:
        fh.write('{"fingerprint": "torn')  # a write cut off by the kill
    again = Echo(EchoSpec())
    res = answer_shard(prompts, target=again, progress=log, **args)
    assert again.asked == [2, 3, 4]
    assert res.reused == 2 and res.generated == 3
    warm = Echo(EchoSpec())
    res2 = answer_shard(prompts, target=warm, progress=log, **args)
    assert warm.asked == [] and res2.generated == 0
    cold = answer_shard(prompts, target=Echo(EchoSpec()), progress=None, **args)
    pd.testing.assert_frame_equal(res2.records, cold.records)


def test_answers_under_other_settings_are_not_reused(tmp_path):
    log = tmp_path / "log.jsonl"
    args = {"prompt_set": "simplesafetytests", "target_name": "e", "kind": "benign"}
    answer_shard(_prompts(3), target=Echo(EchoSpec()), progress=log, **args)
    other = Echo(EchoSpec(suffix="?"))
    res = answer_shard(_prompts(3), target=other, progress=log, **args)
    assert other.asked == [0, 1, 2]
    assert res.records["response"].str.endswith("?").all()


def test_gather_checks_every_prompt_is_answered_once(tmp_path):
    prompts = _prompts(4)
    args = {"prompt_set": "simplesafetytests", "target_name": "e", "kind": "harmful"}
    a = answer_shard(prompts.iloc[:2], target=Echo(EchoSpec()), progress=None, **args).records
    b = answer_shard(prompts.iloc[2:], target=Echo(EchoSpec()), progress=None, **args).records
    whole = gather_answers([b, a], prompts)
    assert whole["gen_prompt_record_id"].tolist() == prompts["record_id"].tolist()
    with pytest.raises(RespondError, match="lack an answer"):
        gather_answers([a], prompts)
    with pytest.raises(RespondError, match="more than one shard"):
        gather_answers([a, a, b], prompts)


def test_sample_is_stable_and_order_free():
    prompts = _prompts(10)
    s1 = sample_prompts(prompts, 4)
    s2 = sample_prompts(prompts.iloc[::-1].reset_index(drop=True), 4)
    assert sorted(s1["record_id"]) == sorted(s2["record_id"])
    assert len(s1) == 4
    assert sample_prompts(prompts, None)["record_id"].tolist() == prompts["record_id"].tolist()
