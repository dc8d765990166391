"""The traceable moderation flow: raw output -> safety analysis -> intervention -> final output.

:func:`moderate_records` is the whole flow for one policy (:func:`moderate_policies` for
several at once, step 1 shared). It is three steps that the policy simulation also uses on
their own, because the costly part (splitting and scoring every sentence) does not depend
on the policy:

1. :func:`analyse_responses` joins records to their judgments (the whole-response scores
   the rest of the workflow uses), splits each response into sentences
   (:mod:`harmtrace.moderate.sentences`) and scores every sentence with the
   :class:`~harmtrace.moderate.backends.Scorer`, in one batch.
2. :func:`decide` turns scores into policy levels and one action per response
   (vectorised; cheap enough to sweep thresholds). A response's level is the highest
   level any category reaches for the whole response or for one of its sentences; the
   action is the policy's action for that level. Sentence actions (redact, rewrite)
   change the sentences at or above the lowest level that maps to a sentence action;
   when no sentence is that high (the harm is spread over the response) the policy's
   ``unlocalized`` action applies instead, and the justification says so.
3. :func:`finalize` writes the final outputs (placeholders for redacted sentences, the
   safe message for blocks, the LLM backend's text for rewrite/regenerate) and re-scores
   every output that changed, so that severity, relevance and the prompt -> response
   transition *after* moderation are measured, not assumed. An LLM output that still
   reaches a blocking level is replaced by the safe message.

:func:`build_traces` then assembles one :class:`~harmtrace.moderate.trace.Trace` per
response with reasons, justifications, diffs and summaries. Records without a response
get no trace; they are counted and logged.

The steps live in one module each (:mod:`~harmtrace.moderate.response_analysis`,
:mod:`~harmtrace.moderate.decisions`, :mod:`~harmtrace.moderate.final_outputs`,
:mod:`~harmtrace.moderate.trace_assembly` with the words of
:mod:`~harmtrace.moderate.trace_wording`); this module runs them in order and keeps
their names importable from here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from harmtrace.moderate.backends import LLMBackend, Scorer
from harmtrace.moderate.clock import Clock, isoformat, system_clock
from harmtrace.moderate.decisions import NCAT, Decisions, decide, levels_of, threshold_matrix
from harmtrace.moderate.final_outputs import Outcomes, finalize, redact_text
from harmtrace.moderate.policies import PolicySpec, check_backend
from harmtrace.moderate.response_analysis import (
    RECORD_COLUMNS,
    ModerationError,
    ResponseAnalysis,
    analyse_responses,
)
from harmtrace.moderate.trace import Trace
from harmtrace.moderate.trace_assembly import build_traces, request_id

__all__ = [
    "NCAT",
    "RECORD_COLUMNS",
    "Decisions",
    "ModerationError",
    "Outcomes",
    "ResponseAnalysis",
    "analyse_responses",
    "build_traces",
    "decide",
    "finalize",
    "levels_of",
    "moderate_policies",
    "moderate_records",
    "redact_text",
    "request_id",
    "stage_clock",
    "threshold_matrix",
]

log = logging.getLogger("harmtrace.moderate")


def stage_clock(clock: Clock) -> str:
    return isoformat(clock())


def moderate_records(
    records: pd.DataFrame,
    judgments: pd.DataFrame,
    scorer: Scorer,
    policy: PolicySpec,
    clock: Clock = system_clock,
    llm: LLMBackend | None = None,
    explain: bool = True,
    workers: int = 1,
) -> list[Trace]:
    """One trace per record with a response, in record order, under ``policy``.

    Stage timestamps come from ``clock`` (pin it for byte-stable outputs): ``raw`` when
    the records are taken in, ``analysis`` when every sentence is scored, ``intervention``
    when every action is decided, ``final`` when the outputs are written and re-scored.
    Records without a response get no trace and are counted in the log.
    """
    return moderate_policies(records, judgments, scorer, [policy], clock, llm, explain, workers)[0]


def moderate_policies(
    records: pd.DataFrame,
    judgments: pd.DataFrame,
    scorer: Scorer,
    policies: Sequence[PolicySpec],
    clock: Clock = system_clock,
    llm: LLMBackend | None = None,
    explain: bool = True,
    workers: int = 1,
) -> list[list[Trace]]:
    """The traces of :func:`moderate_records` under each of ``policies``, in their order.

    The responses are split and scored once (step 1 does not depend on the policy; it is
    most of the cost), then each policy decides, finalises and assembles its own traces:
    the same traces, byte for byte, as one run per policy with the same clock.
    """
    for policy in policies:
        check_backend(policy, llm)
    raw = stage_clock(clock)
    analysis = analyse_responses(records, judgments, scorer, workers=workers)
    analysed = stage_clock(clock)
    out = []
    for policy in policies:
        stamps = {"raw": raw, "analysis": analysed}
        decisions = decide(analysis, policy)
        stamps["intervention"] = stage_clock(clock)
        ids = [request_id(policy, str(r)) for r in analysis.items["record_id"]]
        outcomes = finalize(analysis, decisions, scorer, llm=llm, request_ids=ids)
        stamps["final"] = stage_clock(clock)
        traces = build_traces(analysis, decisions, outcomes, scorer, stamps, explain=explain)
        if len(traces) != analysis.n_records - analysis.n_without_response:
            raise ModerationError("internal: trace count differs from records with a response")
        actions = pd.Series(outcomes.action).value_counts().to_dict()
        log.info(
            "policy %s: %d record(s), %d with a response -> %d trace(s), %d without a "
            "response (no trace); actions %s",
            policy.policy_version,
            analysis.n_records,
            len(traces),
            len(traces),
            analysis.n_without_response,
            dict(sorted(actions.items())),
        )
        out.append(traces)
    return out
