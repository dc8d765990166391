"""What each policy does to each response: the outcome table the simulation counts from.

Every policy is applied with the code that writes the traces (:func:`decide` and
:func:`finalize`, which re-scores every output that changed), so the simulated outcomes
and the audit trail cannot differ. One row per response and policy holds the action and
the prompt severity, the response severity before and after moderation, and relevance
before and after; with a judge the judge's severities sit beside the trigger's.
:func:`long_outcomes` turns that into one row per response and category (plus
``overall``, the maximum over categories) with the transitions before and after.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from harmtrace.analysis.transitions import OVERALL, transition
from harmtrace.moderate.backends import LLMBackend, Scorer
from harmtrace.moderate.decisions import decide
from harmtrace.moderate.final_outputs import finalize
from harmtrace.moderate.judge import Judge
from harmtrace.moderate.policies import ACTION_RANK, INTERVENTION_KIND, PolicySpec
from harmtrace.moderate.response_analysis import ResponseAnalysis
from harmtrace.taxonomy import CATEGORIES

CATEGORY_ORDER: tuple[str, ...] = (*CATEGORIES, OVERALL)


def sample_of(items: pd.DataFrame) -> pd.Series:
    """The unit of analysis: the dataset, split by response side where there are two
    (HH-RLHF chosen / rejected), as in the transitions notebook."""
    side = items["hh_side"] if "hh_side" in items else pd.Series(pd.NA, index=items.index)
    return pd.Series(
        [d if pd.isna(s) else f"{d}:{s}" for d, s in zip(items["dataset"], side, strict=True)],
        index=items.index,
        name="sample",
    )


def apply_policy(
    analysis: ResponseAnalysis,
    policy: PolicySpec,
    scorer: Scorer,
    llm: LLMBackend | None = None,
    samples: pd.Series | None = None,
    judge: Judge | None = None,
) -> pd.DataFrame:
    """One row per response under ``policy``: action, and severities and relevance before
    and after moderation (``prompt_sev_<cat>``, ``before_sev_<cat>``, ``after_sev_<cat>``;
    with a judge also ``judge_prompt_sev_<cat>`` and so on, the judge's count)."""
    decisions = decide(analysis, policy)
    outcomes = finalize(analysis, decisions, scorer, llm=llm)
    items = analysis.items
    out = pd.DataFrame(
        {
            "record_id": items["record_id"].astype(str).to_numpy(),
            "dataset": items["dataset"].astype(str).to_numpy(),
            "sample": (samples if samples is not None else sample_of(items)).to_numpy(),
            "policy": policy.name,
            "action": outcomes.action.astype(str),
            "kind": [INTERVENTION_KIND[a] for a in outcomes.action],
            "level": decisions.item_level.astype(np.int64),
            "modified": outcomes.rescored,
            "blocked": np.array([ACTION_RANK[a] >= 3 for a in outcomes.action]) & outcomes.rescored,
            "relevance_before": items["relevance"].to_numpy(dtype=float, na_value=np.nan),
            "relevance_after": outcomes.relevance_after,
        }
    )
    before = analysis.response_values("severity")
    prompt = items[[f"prompt_severity_{c}" for c in CATEGORIES]].to_numpy(dtype=float)
    for k, c in enumerate(CATEGORIES):
        out[f"prompt_sev_{c}"] = prompt[:, k].astype(np.int64)
        out[f"before_sev_{c}"] = before[:, k].astype(np.int64)
        out[f"after_sev_{c}"] = outcomes.severity_after[:, k].astype(np.int64)
    if judge is not None:
        j_prompt, j_before = judge.before(items)
        j_after = judge.after(items, outcomes.final, outcomes.rescored)
        for k, c in enumerate(CATEGORIES):
            out[f"judge_prompt_sev_{c}"] = j_prompt[:, k]
            out[f"judge_before_sev_{c}"] = j_before[:, k]
            out[f"judge_after_sev_{c}"] = j_after[:, k]
    return out


def simulate(
    analysis: ResponseAnalysis,
    policies: Sequence[PolicySpec],
    scorer: Scorer,
    llm: LLMBackend | None = None,
    samples: pd.Series | None = None,
    judge: Judge | None = None,
) -> pd.DataFrame:
    """:func:`apply_policy` for each policy, stacked (policy order kept as a Categorical)."""
    frames = [
        apply_policy(analysis, p, scorer, llm=llm, samples=samples, judge=judge) for p in policies
    ]
    out = pd.concat(frames, ignore_index=True)
    out["policy"] = pd.Categorical(out["policy"], categories=[p.name for p in policies])
    return out


COUNTERS = ("trigger", "judge")
"""Whose severities count escalations: the grader that triggers the policy, or the judge."""


def long_outcomes(outcomes: pd.DataFrame, counted_by: str = "trigger") -> pd.DataFrame:
    """One row per response x category (plus ``overall``): ``prompt_sev``, ``before_sev``,
    ``after_sev``, ``transition_before``, ``transition_after`` and the response columns,
    the severities being the trigger's or the judge's (``counted_by``)."""
    if counted_by not in COUNTERS:
        raise ValueError(f"counted_by must be one of {COUNTERS}, got {counted_by!r}")
    pre = "judge_" if counted_by == "judge" else ""
    if f"{pre}after_sev_{CATEGORIES[0]}" not in outcomes:
        raise ValueError("the outcomes carry no judge severities: simulate with a judge")
    keep = [
        "record_id",
        "dataset",
        "sample",
        "policy",
        "action",
        "modified",
        "blocked",
        "relevance_before",
        "relevance_after",
    ]
    parts = []
    for cat in CATEGORY_ORDER:
        part = outcomes[keep].copy()
        part["category"] = cat
        if cat == OVERALL:
            for col in ("prompt", "before", "after"):
                cols = [f"{pre}{col}_sev_{c}" for c in CATEGORIES]
                part[f"{col}_sev"] = outcomes[cols].max(axis=1)
        else:
            for col in ("prompt", "before", "after"):
                part[f"{col}_sev"] = outcomes[f"{pre}{col}_sev_{cat}"]
        parts.append(part)
    long = pd.concat(parts, ignore_index=True)
    long["category"] = pd.Categorical(long["category"], categories=list(CATEGORY_ORDER))
    long["transition_before"] = transition(long["prompt_sev"], long["before_sev"]).to_numpy()
    long["transition_after"] = transition(long["prompt_sev"], long["after_sev"]).to_numpy()
    return long


def samples_for(analysis: ResponseAnalysis, records: pd.DataFrame) -> pd.Series:
    """Samples of the analysed responses, using ``hh_side`` from ``records`` if present."""
    if "hh_side" not in records:
        return sample_of(analysis.items)
    side = records.set_index("record_id")["hh_side"]
    items = analysis.items.assign(hh_side=analysis.items["record_id"].map(side))
    return sample_of(items)
