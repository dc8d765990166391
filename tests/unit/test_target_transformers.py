"""The in-process ``transformers`` target on the real SmolLM2-135M-Instruct folder.

The folder is prepared once per session (see ``converted_smollm2``); generation is kept
short (16 new tokens, a handful of prompts) so the file runs in well under a minute.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harmtrace.llm.settings import answer_fields
from harmtrace.targets.base import ConversationError
from harmtrace.targets.registry import make_target, make_target_spec
from harmtrace.targets.transformers import (
    TransformersSpec,
    TransformersTarget,
    TransformersTargetError,
    check_conversation,
    fit_prompt,
    sorted_batches,
    split_completion,
)
from tests.unit.test_target_weights import SMOLLM2, converted_smollm2

PROMPTS = [
    "What is the capital of France?",
    "Hi",
    "Write a long poem about the sea.",
    "Name three colours.",
    "How many legs does a spider have?",
]


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return converted_smollm2(tmp_path_factory)


@pytest.fixture
def make(folder):
    def build(**block) -> TransformersTarget:
        block = {"backend": "transformers", "model": SMOLLM2, **block}
        block.setdefault("generation", {"max_tokens": 16})
        target = make_target("smollm2", block, model_dir=str(folder))
        assert isinstance(target, TransformersTarget)
        return target

    return build


def record_batches(target: TransformersTarget) -> list[list[int]]:
    """Wrap the target's batch generation to record the prompt lengths of each batch."""
    seen: list[list[int]] = []
    inner = target._generate_batch

    def spy(prompts, batch_no):
        seen.append([batch_no, *(len(p) for p in prompts)])
        return inner(prompts, batch_no)

    target._generate_batch = spy  # type: ignore[method-assign]
    return seen


def test_spec_defaults_and_which_fields_affect_answers():
    spec = make_target_spec("t", {"backend": "transformers", "model": SMOLLM2})
    assert isinstance(spec, TransformersSpec)
    assert spec.generation.temperature == 0 and spec.generation.max_tokens == 64
    assert (spec.batch_size, spec.threads, spec.truncation) == (32, 1, "error")
    fields = answer_fields(TransformersSpec)
    assert "model_dir" not in fields
    assert {"model", "generation", "batch_size", "threads", "truncation"} <= set(fields)


def test_pure_helpers():
    assert sorted_batches([5, 3, 5, 1, 3], 2) == [[3, 1], [4, 0], [2]]
    assert split_completion([7, 8, 2, 2], {2}, 4) == ([7, 8], "stop", 3)
    assert split_completion([7, 8, 9], {2}, 3) == ([7, 8, 9], "length", 3)
    assert fit_prompt(0, [1, 2, 3], 3, "error") == ([1, 2, 3], False)
    assert fit_prompt(0, [1, 2, 3, 4], 3, "left") == ([2, 3, 4], True)
    with pytest.raises(ConversationError, match="conversation 4: the prompt has 4 tokens"):
        fit_prompt(4, [1, 2, 3, 4], 3, "error")


@pytest.mark.parametrize(
    ("conversation", "message"),
    [
        ([], "conversation 3: no messages"),
        (user("   "), "conversation 3: the prompt is empty"),
        (user("bad \ud800 text"), "conversation 3: message 0: content is not valid Unicode"),
        ([{"role": "user", "content": None}], "content must be text, got NoneType"),
    ],
)
def test_bad_conversations_are_named(conversation, message):
    with pytest.raises(ConversationError, match=message):
        check_conversation(3, conversation)


def test_provenance_needs_no_model_and_names_the_weights(make, folder):
    from harmtrace.targets.weights import read_manifest

    target = make()
    prov = target.provenance()
    manifest = read_manifest(folder)
    assert prov["weights_sha256"] == manifest["weights_sha256"]
    assert prov["chat_template_sha256"] == manifest["chat_template_sha256"]
    assert prov["max_prompt_tokens"] == manifest["context_length"] - 16
    assert prov["sampling"] == {"temperature": 0.0, "max_tokens": 16}
    assert str(folder) not in str(prov)
    assert target._model is None  # nothing loaded
    other = make(system_prompt="Be safe.")
    assert other.fingerprint() != target.fingerprint()
    moved = make_target("smollm2", {"backend": "transformers", "model": SMOLLM2,
                                    "generation": {"max_tokens": 16}},
                        model_dir=str(folder))  # fmt: skip
    assert moved.fingerprint() == target.fingerprint()


def test_unprepared_or_wrong_folders_fail_clearly(tmp_path, folder):
    target = make_target("t", {"backend": "transformers", "model": SMOLLM2},
                         model_dir=str(tmp_path))  # fmt: skip
    with pytest.raises(TransformersTargetError, match=f"harmtrace prepare-model {SMOLLM2}"):
        target.check()
    missing = make_target("t", {"backend": "transformers", "model": str(tmp_path / "nope")})
    with pytest.raises(TransformersTargetError, match=f"neither a registered model .*{SMOLLM2}"):
        missing.check()
    (tmp_path / "manifest.json").write_text('{"name": "other", "weights_sha256": "x"}')
    with pytest.raises(TransformersTargetError, match="holds model 'other'"):
        target.check()


def test_a_local_folder_without_manifest_has_the_same_identity(tmp_path, folder, make):
    local = tmp_path / "my-model"
    local.mkdir()
    for path in folder.iterdir():
        if path.name != "manifest.json":
            os.symlink(path, local / path.name)
    target = make_target("t", {"backend": "transformers", "model": str(local),
                               "generation": {"max_tokens": 16}})  # fmt: skip
    prov = target.provenance()
    assert prov["weights_sha256"] == make().provenance()["weights_sha256"]
    assert prov["model"] == str(local)


def test_answers_are_sensible_deterministic_and_finish_reasons_right(make):
    convs = [user(p) for p in PROMPTS]
    seen: list[int] = []
    first = make(batch_size=2).generate(convs, on_answer=lambda i, a: seen.append(i))
    second = make(batch_size=2).generate(convs)  # a fresh instance, a fresh load
    assert sorted(seen) == list(range(len(PROMPTS)))
    assert all(a is not None for a in first)
    assert "Paris" in first[0].text
    assert [a.text for a in first] == [a.text for a in second]
    assert first == second
    for a in first:
        assert a.finish_reason in ("stop", "length") and a.prompt_tokens > 0
        if a.finish_reason == "length":
            assert a.completion_tokens == 16
        else:
            assert 0 < a.completion_tokens <= 16
    assert first[2].finish_reason == "length"  # a long poem does not fit 16 tokens
    assert first[1].finish_reason == "stop"  # "Hi" gets a short greeting


def test_done_skipping_keeps_batches_and_answers(make):
    convs = [user(p) for p in PROMPTS]
    full_target = make(batch_size=2)
    full_batches = record_batches(full_target)
    full = full_target.generate(convs)
    lengths = [a.prompt_tokens for a in full]
    plan = sorted_batches(lengths, 2)
    done = set(plan[0])  # the whole first batch, plus one member of the second
    done.add(plan[1][0])
    resumed_target = make(batch_size=2)
    resumed_batches = record_batches(resumed_target)
    resumed = resumed_target.generate(convs, done=done)
    assert [b[0] for b in resumed_batches] == [1, 2]  # batch 0 skipped, 1 generated whole
    assert resumed_batches == full_batches[1:]
    for i, answer in enumerate(resumed):
        assert (answer is None) == (i in done)
        if answer is not None:
            assert answer == full[i]


def test_sampling_is_seeded(make):
    convs = [user(PROMPTS[2]), user(PROMPTS[3])]
    hot = {"temperature": 1.0, "max_tokens": 8, "seed": 7}
    first = make(generation=hot)
    a = first.generate(convs)
    b = make(generation=hot).generate(convs)  # a fresh instance, a fresh load
    other = make(generation={**hot, "seed": 8})
    other._tokenizer, other._model = first.load()  # same weights: skip a third load
    c = other.generate(convs)
    assert [x.text for x in a] == [x.text for x in b]
    assert [x.text for x in a] != [x.text for x in c]


def test_too_long_prompts_error_or_are_left_truncated(make):
    convs = [user("Hi"), user("Tell me everything about " + "the history of Rome, " * 10)]
    with pytest.raises(ConversationError, match=r"conversation 1: the prompt has \d+"):
        make(max_prompt_tokens=40).generate(convs)
    left = make(max_prompt_tokens=40, truncation="left", generation={"max_tokens": 4})
    answers = left.generate(convs)
    assert answers[0].prompt_truncated is False and answers[0].prompt_tokens < 40
    assert answers[1].prompt_truncated is True and answers[1].prompt_tokens == 40
    assert answers[1].finish_reason in ("stop", "length")


def test_an_empty_prompt_in_a_list_is_named(make):
    with pytest.raises(ConversationError, match="conversation 1: the prompt is empty"):
        make().generate([user("Hi"), user("")])


def test_a_respond_job_takes_its_targets_threads():
    """The rule's threads follow the target: torch threads in process, one for an endpoint."""
    from harmtrace.targets.base import TargetSpec

    assert TransformersSpec(model="m", threads=3).cpu_threads() == 3
    assert TransformersSpec(model="m").cpu_threads() == 1
    assert TargetSpec().cpu_threads() == 1
