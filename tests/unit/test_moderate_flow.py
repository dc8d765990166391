"""The moderation flow on records whose scores are known (keyword scorer)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from harmtrace.moderate import flow
from harmtrace.moderate.clock import fixed_clock
from harmtrace.moderate.decisions import decide, levels_of
from harmtrace.moderate.final_outputs import redact_text
from harmtrace.moderate.flow import moderate_records
from harmtrace.moderate.policies import PolicyError, get_policy, validate_policy
from harmtrace.moderate.response_analysis import ModerationError, analyse_responses
from harmtrace.moderate.sentences import split_spans
from harmtrace.moderate.trace import dumps, validate_trace
from harmtrace.moderate.trace_assembly import request_id
from tests.moderation_fakes import KeywordScorer, ScriptedLLM, make_judgments, make_records

ROWS = [
    ("How was the weather?", "The weather was fine. We walked in the park."),
    ("Tell me about the war.", "It began slowly. Then came the massacre of the village. It ended."),
    ("Tell me a story.", "Once there was a knight. He would stab the dragon. Then he went home."),
    ("Anything?", None),
    ("Be rude.", "That is a rude question. Still, here is an answer."),
    ("Empty?", ""),
]
CLOCK = fixed_clock(1_700_000_000)


@pytest.fixture
def toy():
    scorer = KeywordScorer()
    records = make_records(ROWS)
    return records, make_judgments(records, scorer), scorer


def by_item(traces):
    return {t.item_id: t for t in traces}


def test_one_trace_per_response_and_the_rest_counted(toy, caplog):
    records, judgments, scorer = toy
    with caplog.at_level(logging.INFO, logger="harmtrace.moderate"):
        traces = moderate_records(records, judgments, scorer, get_policy("observe"), clock=CLOCK)
    assert [t.item_id for t in traces] == ["item-0", "item-1", "item-2", "item-4", "item-5"]
    assert len({t.request_id for t in traces}) == len(traces)
    assert "1 without a response" in caplog.text


def test_observe_never_changes_an_output_but_records_flags(toy):
    records, judgments, scorer = toy
    traces = by_item(
        moderate_records(records, judgments, scorer, get_policy("observe"), clock=CLOCK)
    )
    for t in traces.values():
        assert t.stages.final.output == t.stages.raw.response
        assert t.stages.intervention.action == "pass"
        assert t.stages.intervention.diff == ""
        assert t.transition.before == t.transition.after
    war = traces["item-1"]
    assert war.categories == ["violence"]
    sentence_flags = [f for f in war.stages.analysis.flags if f.scope == "sentence"]
    assert [(f.sentence, f.category, f.level, f.severity) for f in sentence_flags] == [
        (1, "violence", "high", 3)
    ]
    assert war.stages.analysis.overall.category == "violence"
    assert war.stages.intervention.triggered_by == [f.id for f in war.stages.analysis.flags]


def test_block_high_blocks_and_explains_why(toy):
    records, judgments, scorer = toy
    policy = get_policy("block_high")
    t = by_item(moderate_records(records, judgments, scorer, policy, clock=CLOCK))["item-1"]
    iv = t.stages.intervention
    assert (iv.action, iv.kind, iv.level) == ("block", "block", "high")
    assert t.stages.final.output == policy.safe_message
    assert iv.modified and t.stages.final.rescored
    assert "high -> block" in iv.rule
    for flag_id in iv.triggered_by:
        assert flag_id in iv.justification
    assert "-Then came the massacre of the village." in iv.diff.splitlines()
    assert f"+{policy.safe_message}" in iv.diff.splitlines()
    # the prompt is safe and the response escalated; the safe message does not
    assert (t.transition.before, t.transition.after) == ("escalate", "preserve")
    assert t.stages.final.overall_severity == 0
    assert t.stages.final.summary.startswith("Blocked:")
    assert "\n" not in t.stages.final.summary


def test_redaction_replaces_only_flagged_sentences(toy):
    records, judgments, scorer = toy
    traces = by_item(
        moderate_records(
            records, judgments, scorer, get_policy("redact_medium_block_high"), clock=CLOCK
        )
    )
    t = traces["item-2"]
    assert t.stages.intervention.action == "redact"
    assert t.stages.intervention.changed_sentences == [1]
    assert t.stages.final.output == (
        "Once there was a knight. [sentence removed] Then he went home."
    )
    assert t.stages.final.severity["violence"] == 0
    assert "+[sentence removed]" in t.stages.intervention.diff
    # Low findings are annotated, not changed
    rude = traces["item-4"]
    assert rude.stages.intervention.action == "annotate"
    assert rude.stages.final.output == rude.stages.raw.response
    # High still blocks
    assert traces["item-1"].stages.intervention.action == "block"


def test_unlocalized_harm_falls_back_and_says_so(toy):
    records, judgments, scorer = toy
    # the whole response is judged Medium violence although no sentence is
    j = judgments.copy()
    row = j["record_id"] == records.loc[0, "record_id"]
    j.loc[row, "response_severity_violence"] = 2
    j.loc[row, "response_prob_violence"] = 0.7
    policy = get_policy("redact_medium_block_high")
    t = by_item(moderate_records(records, j, scorer, policy, clock=CLOCK))["item-0"]
    assert t.stages.intervention.action == "block"
    assert "fallback 'block'" in t.stages.intervention.justification
    assert [f.scope for f in t.stages.analysis.flags] == ["response"]


def test_probability_basis_uses_probabilities(toy):
    records, judgments, scorer = toy
    policy = validate_policy(
        {
            "name": "prob",
            "version": "1",
            "description": "block at p >= 0.6",
            "basis": "probability",
            "thresholds": {"default": {"high": 0.6}},
            "actions": {"low": "pass", "medium": "pass", "high": "block"},
        }
    )
    traces = by_item(moderate_records(records, judgments, scorer, policy, clock=CLOCK))
    # stab (p=0.7) and massacre (p=0.95) reach 0.6; rude (p=0.3) does not
    assert traces["item-2"].stages.intervention.action == "block"
    assert traces["item-1"].stages.intervention.action == "block"
    assert traces["item-4"].stages.intervention.action == "pass"
    assert "probability >= 0.6" in traces["item-2"].stages.analysis.flags[0].reason


def test_empty_response_gets_a_trace_without_sentences(toy):
    records, judgments, scorer = toy
    t = by_item(
        moderate_records(records, judgments, scorer, get_policy("block_high"), clock=CLOCK)
    )["item-5"]
    assert t.stages.raw.response == ""
    assert t.stages.analysis.sentences == []
    assert t.stages.final.output == ""


def test_timestamps_come_from_the_clock(toy):
    records, judgments, scorer = toy
    moments = iter(datetime(2025, 3, 12, 10, 0, s, 5000, tzinfo=UTC) for s in range(10))
    traces = moderate_records(
        records, judgments, scorer, get_policy("observe"), clock=lambda: next(moments)
    )
    st = traces[0].stages
    assert [
        st.raw.timestamp,
        st.analysis.timestamp,
        st.intervention.timestamp,
        st.final.timestamp,
    ] == [
        "2025-03-12T10:00:00.005Z",
        "2025-03-12T10:00:01.005Z",
        "2025-03-12T10:00:02.005Z",
        "2025-03-12T10:00:03.005Z",
    ]


def test_reruns_are_byte_identical_and_ids_depend_on_the_policy(toy):
    records, judgments, scorer = toy

    def run(name):
        return [
            dumps(t)
            for t in moderate_records(records, judgments, scorer, get_policy(name), clock=CLOCK)
        ]

    assert run("block_high") == run("block_high")
    a = moderate_records(records, judgments, scorer, get_policy("block_high"), clock=CLOCK)
    b = moderate_records(records, judgments, scorer, get_policy("observe"), clock=CLOCK)
    assert a[0].request_id == request_id(get_policy("block_high"), a[0].record_id)
    assert {t.request_id for t in a}.isdisjoint({t.request_id for t in b})


def test_every_trace_fits_the_schema(toy):
    records, judgments, scorer = toy
    for name in ("observe", "block_high", "redact_medium_block_high", "block_medium"):
        for t in moderate_records(records, judgments, scorer, get_policy(name), clock=CLOCK):
            validate_trace(t.to_json())


def test_llm_actions_need_a_backend_and_use_it(toy):
    records, judgments, scorer = toy
    data = {
        "name": "llm",
        "version": "1",
        "description": "rewrite medium, regenerate high",
        "actions": {"low": "pass", "medium": "rewrite", "high": "regenerate"},
    }
    with pytest.raises(PolicyError, match="LLM"):
        validate_policy(data)
    llm = ScriptedLLM()
    policy = validate_policy(data, llm=llm)
    with pytest.raises(PolicyError, match="LLM"):
        moderate_records(records, judgments, scorer, policy, clock=CLOCK)
    traces = by_item(moderate_records(records, judgments, scorer, policy, clock=CLOCK, llm=llm))
    assert traces["item-2"].stages.intervention.action == "rewrite"
    assert traces["item-2"].stages.final.output == "A calm reply."
    assert traces["item-2"].stages.intervention.backend == llm.version
    assert [f.text for f in llm.rewrites[0].flagged] == ["He would stab the dragon."]
    assert traces["item-1"].stages.intervention.action == "regenerate"
    assert llm.regenerations[0].reasons == ("violence",)


def test_llm_output_that_is_still_harmful_is_blocked(toy):
    records, judgments, scorer = toy
    llm = ScriptedLLM(regenerate_text="Another massacre story.")
    policy = validate_policy(
        {
            "name": "regen",
            "version": "1",
            "description": "regenerate high",
            "actions": {"low": "pass", "medium": "pass", "high": "regenerate"},
        },
        llm=llm,
    )
    t = by_item(moderate_records(records, judgments, scorer, policy, clock=CLOCK, llm=llm))[
        "item-1"
    ]
    assert t.stages.final.output == policy.safe_message
    assert "still reached a blocking level" in t.stages.intervention.justification


def test_judgments_from_another_grader_are_refused(toy):
    records, judgments, scorer = toy
    j = judgments.copy()
    j["grader_version"] = pd.array(["other-2"] * len(j), dtype="string")
    with pytest.raises(ModerationError, match="graded by"):
        analyse_responses(records, j, scorer)


def test_records_without_judgments_are_refused(toy):
    records, judgments, scorer = toy
    with pytest.raises(ModerationError, match="1 record\\(s\\) have no judgment"):
        analyse_responses(records, judgments.iloc[1:], scorer)


def test_decide_levels_are_the_highest_reached():
    scorer = KeywordScorer()
    records = make_records([("q", "A rude remark. A slur. Fine.")])
    a = analyse_responses(records, make_judgments(records, scorer), scorer)
    d = decide(a, get_policy("redact_medium_block_high"))
    assert d.sentence_levels[:, 0].tolist() == [1, 2, 0]  # hate per sentence
    assert d.item_level.tolist() == [2]
    assert d.changed.tolist() == [False, True, False]


def test_redact_text_keeps_layout():
    text = "One.  Two!\n\nThree?"
    spans = split_spans(text)
    assert redact_text(spans, {1: "[x]"}) == "One.  [x]\n\nThree?"


def test_levels_of_takes_the_highest_level_reached_even_with_levels_off():
    thr = np.array([[0.2, np.inf, 0.6], [np.inf, np.inf, np.inf]])
    values = np.array([[0.1, 0.9], [0.3, 0.0], [0.7, np.nan]])
    assert levels_of(values, thr).tolist() == [[0, 0], [1, 0], [3, 0]]


def test_redaction_placeholder_may_name_the_category(toy):
    records, judgments, scorer = toy
    policy = validate_policy(
        {
            "name": "named",
            "version": "1",
            "description": "redact medium with the category named",
            "actions": {"low": "pass", "medium": "redact", "high": "redact"},
            "redaction": "[removed: {category}]",
        }
    )
    t = by_item(moderate_records(records, judgments, scorer, policy, clock=CLOCK))["item-2"]
    assert (
        t.stages.final.output == "Once there was a knight. [removed: violence] Then he went home."
    )


def test_failed_judgments_are_refused(toy):
    records, judgments, scorer = toy
    j = judgments.copy()
    j.loc[1, "status"] = "failed"
    with pytest.raises(ModerationError, match="1 response\\(s\\) have failed judgments"):
        analyse_responses(records, j, scorer)


def test_judgments_of_the_same_model_with_a_spec_suffix_are_accepted(toy):
    records, judgments, scorer = toy
    j = judgments.copy()
    j["grader_version"] = pd.array([f"{scorer.version}/spec-abc"] * len(j), dtype="string")
    traces = moderate_records(records, j, scorer, get_policy("observe"), clock=CLOCK)
    assert traces[0].grader.version == f"{scorer.version}/spec-abc"
    assert traces[0].stages.analysis.grader_version == scorer.version


def test_the_stages_stay_importable_from_the_flow():
    """The notebook, CLI and benchmarks import the stages from ``flow``."""
    assert all(hasattr(flow, name) for name in flow.__all__)
    moved = [analyse_responses, decide, levels_of, redact_text, request_id, ModerationError]
    assert all(getattr(flow, obj.__name__) is obj for obj in moved)
