"""Policy simulation: what response-side moderation does to the risk transitions.

The responses are analysed once
(:func:`~harmtrace.moderate.response_analysis.analyse_responses`); each policy is then
applied with the same code that writes the traces
(:func:`~harmtrace.moderate.decisions.decide` and
:func:`~harmtrace.moderate.final_outputs.finalize`, which re-scores every output that
changed). For every response and category this gives the prompt severity, the response
severity before moderation (the judgments) and after it, and relevance before and after,
so transitions can be compared before and after a policy on exactly the same records.
Definitions, per category (and ``overall``, the maximum over categories):

* **escalation removed**: the transition was *escalate* before and is not after;
  share = removed / escalations before, with a Wilson interval. Most escalations go from
  Safe to Low, which no shipped policy acts on, so a second measure counts only
  **harmful escalations** (the response reached Medium or High, the grader's "harmful"
  decision): removed when the final output is below Medium;
* **benign response changed**: the response was Safe (severity 0) before, and its output
  was changed (redacted, rewritten, blocked, regenerated); ``blocked`` counts blocks
  (and regenerations) alone. This is the cost side: harm the grader did not see in the
  whole response, but the policy still acted on (a sentence flag, or a low threshold);
* **relevance lost**: among responses with relevance 3 before, the share whose final
  output has relevance below 3 (a block is a refusal, so it loses relevance).

With a judge (:class:`~harmtrace.moderate.judge.Judge`, config ``moderate.judge``) the
prompt, before and after severities that these definitions read are the judge's, not the
trigger's (``counted_by``); the trigger's own count stays in ``trigger_effects``.

:func:`threshold_frontier` sweeps one probability threshold for a family of policies
(``block`` or ``redact``) to trace escalations removed against benign responses changed;
:func:`category_needs` names, per category, the least intrusive policy that removes at
least a target share of that category's escalations.

The parts live in their own modules (:mod:`~harmtrace.moderate.simulation_outcomes`,
:mod:`~harmtrace.moderate.simulation_effects`, :mod:`~harmtrace.moderate.simulation_frontier`,
:mod:`~harmtrace.moderate.simulation_needs`, :mod:`~harmtrace.moderate.simulation_agreement`);
:func:`run_simulation` runs them in order, and their names stay importable from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from harmtrace.moderate.backends import LLMBackend, Scorer
from harmtrace.moderate.judge import Judge
from harmtrace.moderate.policies import PolicySpec, get_policy
from harmtrace.moderate.response_analysis import ResponseAnalysis
from harmtrace.moderate.simulation_agreement import check_traces_agree
from harmtrace.moderate.simulation_effects import STAGES, policy_effects, transitions_before_after
from harmtrace.moderate.simulation_frontier import threshold_frontier, threshold_policy
from harmtrace.moderate.simulation_needs import category_needs, policy_cost
from harmtrace.moderate.simulation_outcomes import (
    CATEGORY_ORDER,
    COUNTERS,
    apply_policy,
    long_outcomes,
    sample_of,
    samples_for,
    simulate,
)

__all__ = [
    "CATEGORY_ORDER",
    "COUNTERS",
    "STAGES",
    "SimulationResults",
    "apply_policy",
    "category_needs",
    "check_traces_agree",
    "long_outcomes",
    "policies_by_name",
    "policy_cost",
    "policy_effects",
    "run_simulation",
    "sample_of",
    "samples_for",
    "simulate",
    "threshold_frontier",
    "threshold_policy",
    "transitions_before_after",
]


@dataclass
class SimulationResults:
    """Everything notebook 06 reports, as tidy frames."""

    outcomes: pd.DataFrame
    long: pd.DataFrame
    effects: pd.DataFrame
    transitions: pd.DataFrame
    needs: pd.DataFrame
    frontier: pd.DataFrame
    target: float
    alpha: float
    counted_by: str = "trigger"
    judge: str | None = None
    """The judge's name (grader and extractor) when the judge counted."""
    trigger_effects: pd.DataFrame | None = None
    """:func:`policy_effects` as the trigger counts them, beside the judge's."""


def run_simulation(
    analysis: ResponseAnalysis,
    policies: Sequence[PolicySpec],
    scorer: Scorer,
    thresholds: Sequence[float] = (),
    frontier_actions: Sequence[str] = ("block", "redact"),
    samples: pd.Series | None = None,
    target: float = 0.8,
    alpha: float = 0.05,
    llm: LLMBackend | None = None,
    judge: Judge | None = None,
) -> SimulationResults:
    """Apply every policy, summarise, and sweep the frontier (skipped without thresholds);
    with a ``judge`` every count is the judge's, the trigger's kept in ``trigger_effects``."""
    outcomes = simulate(analysis, policies, scorer, llm=llm, samples=samples, judge=judge)
    counted_by = "judge" if judge is not None else "trigger"
    long = long_outcomes(outcomes, counted_by)
    effects = policy_effects(long, alpha=alpha)
    trans = transitions_before_after(long, alpha=alpha)
    needs = category_needs(effects, target=target)
    frontier = (
        threshold_frontier(analysis, scorer, thresholds, frontier_actions, samples, alpha, judge)
        if len(thresholds)
        else pd.DataFrame()
    )
    trigger = (
        policy_effects(long_outcomes(outcomes, "trigger"), alpha=alpha)
        if judge is not None
        else None
    )
    return SimulationResults(
        outcomes, long, effects, trans, needs, frontier, target, alpha,
        counted_by=counted_by,
        judge=judge.name if judge is not None else None,
        trigger_effects=trigger,
    )  # fmt: skip


def policies_by_name(
    names: Sequence[str], user: Mapping[str, Mapping] | None = None, llm: object | None = None
) -> list[PolicySpec]:
    """Policies for a notebook parameter list (shipped names or ``user`` specs)."""
    return [get_policy(n, llm=llm, user=user) for n in names]
