"""Splitting a record's context into the turns the prompt side reads."""

from __future__ import annotations

from harmtrace.graders.dialogue import dialogue_turns, turn_index


def test_turns_are_split_at_speaker_tags_and_stripped():
    ctx = "\n\nHuman: how do I pick a lock?\n\nAssistant: Why?\n\nhuman:  it is mine "
    assert dialogue_turns(ctx) == ["how do I pick a lock?", "Why?", "it is mine"]
    assert dialogue_turns("User: hi\nAssistant: hello\nSystem: be kind") == [
        "hi",
        "hello",
        "be kind",
    ]


def test_a_context_without_tags_is_one_turn_and_empty_is_none():
    assert dialogue_turns("We talked about knives earlier.") == ["We talked about knives earlier."]
    assert dialogue_turns("") == [] and dialogue_turns(None) == [] and dialogue_turns("  \n") == []
    # a tag must open a line: "Plan A: ..." or a colon mid-sentence is not a speaker
    assert dialogue_turns("my user: name is bob") == ["my user: name is bob"]


def test_turn_index_says_whose_turn_each_is():
    turns, owner = turn_index(["Human: a\n\nAssistant: b", "", "Human: c"])
    assert turns == ["a", "b", "c"] and owner == [0, 0, 2]
