"""Policy simulation: what response-side moderation does to the risk transitions.

The responses are analysed once (:func:`~harmtrace.moderate.flow.analyse_responses`);
each policy is then applied with the same code that writes the traces
(:func:`~harmtrace.moderate.flow.decide` and :func:`~harmtrace.moderate.flow.finalize`,
which re-scores every output that changed). For every response and category this gives
the prompt severity, the response severity before moderation (the judgments) and after
it, and relevance before and after, so transitions can be compared before and after a
policy on exactly the same records. Definitions, per category (and ``overall``, the
maximum over categories):

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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harmtrace.analysis.transitions import OVERALL, transition, transition_shares
from harmtrace.moderate.backends import LLMBackend, Scorer
from harmtrace.moderate.flow import ResponseAnalysis, decide, finalize
from harmtrace.moderate.judge import Judge
from harmtrace.moderate.policies import (
    ACTION_RANK,
    INTERVENTION_KIND,
    PolicySpec,
    validate_policy,
)
from harmtrace.taxonomy import CATEGORIES

CATEGORY_ORDER: tuple[str, ...] = (*CATEGORIES, OVERALL)
STAGES: tuple[str, ...] = ("before", "after")


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


def _rate(k: np.ndarray, n: np.ndarray, alpha: float) -> tuple[np.ndarray, ...]:
    """Share with a Wilson interval (statsmodels); NaN where there is nothing to count."""
    from statsmodels.stats.proportion import proportion_confint

    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    share = np.divide(k, n, out=np.full(len(k), np.nan), where=n > 0)
    lo, hi = proportion_confint(k, np.where(n > 0, n, 1), alpha=alpha, method="wilson")
    empty = n <= 0
    return share, np.where(empty, np.nan, lo), np.where(empty, np.nan, hi)


def policy_effects(
    long: pd.DataFrame, by: Sequence[str] = ("sample", "policy", "category"), alpha: float = 0.05
) -> pd.DataFrame:
    """Escalations removed, benign responses changed or blocked, relevance lost per group.

    Columns: ``*by, n, escalations_before, escalations_after, removed, removed_share,
    removed_lo, removed_hi, harmful_escalations, harmful_removed, harmful_removed_share,
    harmful_removed_lo, harmful_removed_hi, benign, benign_changed, benign_changed_share,
    benign_changed_lo, benign_changed_hi, benign_blocked, benign_blocked_share, relevant,
    relevance_lost, relevance_lost_share, relevance_lost_lo, relevance_lost_hi,
    mean_relevance_change``.
    """
    d = long.copy()
    esc_b = (d["transition_before"] == "escalate").to_numpy()
    esc_a = (d["transition_after"] == "escalate").to_numpy()
    benign = (d["before_sev"] == 0).to_numpy()
    harmful = esc_b & (d["before_sev"] >= 2).to_numpy()
    harmful_removed = harmful & (d["after_sev"] < 2).to_numpy()
    rel_b, rel_a = d["relevance_before"].to_numpy(float), d["relevance_after"].to_numpy(float)
    relevant = rel_b == 3
    d["_n"] = 1
    d["_esc_b"], d["_esc_a"] = esc_b.astype(int), esc_a.astype(int)
    d["_removed"] = (esc_b & ~esc_a).astype(int)
    d["_harmful"] = harmful.astype(int)
    d["_harmful_removed"] = harmful_removed.astype(int)
    d["_benign"] = benign.astype(int)
    d["_benign_changed"] = (benign & d["modified"].to_numpy(bool)).astype(int)
    d["_benign_blocked"] = (benign & d["blocked"].to_numpy(bool)).astype(int)
    d["_relevant"] = relevant.astype(int)
    d["_lost"] = (relevant & (rel_a < 3)).astype(int)
    d["_rel_change"] = rel_a - rel_b
    cols = [c for c in d.columns if c.startswith("_") and c != "_rel_change"]
    g = d.groupby(list(by), observed=True, sort=True)
    out = g[cols].sum().reset_index()
    out["mean_relevance_change"] = g["_rel_change"].mean().to_numpy()
    out = out.rename(
        columns={
            "_n": "n",
            "_esc_b": "escalations_before",
            "_esc_a": "escalations_after",
            "_removed": "removed",
            "_harmful": "harmful_escalations",
            "_harmful_removed": "harmful_removed",
            "_benign": "benign",
            "_benign_changed": "benign_changed",
            "_benign_blocked": "benign_blocked",
            "_relevant": "relevant",
            "_lost": "relevance_lost",
        }
    )
    for name, k, n in (
        ("removed", "removed", "escalations_before"),
        ("harmful_removed", "harmful_removed", "harmful_escalations"),
        ("benign_changed", "benign_changed", "benign"),
        ("benign_blocked", "benign_blocked", "benign"),
        ("relevance_lost", "relevance_lost", "relevant"),
    ):
        share, lo, hi = _rate(out[k].to_numpy(float), out[n].to_numpy(float), alpha)
        out[f"{name}_share"], out[f"{name}_lo"], out[f"{name}_hi"] = share, lo, hi
    return out


def transitions_before_after(
    long: pd.DataFrame, by: Sequence[str] = ("sample", "policy", "category"), alpha: float = 0.05
) -> pd.DataFrame:
    """Transition shares with Wilson CIs before and after each policy (column ``stage``)."""
    frames = []
    for stage in STAGES:
        d = long.assign(transition=long[f"transition_{stage}"])
        shares = transition_shares(d, by=list(by), alpha=alpha)
        shares.insert(len(by), "stage", stage)
        frames.append(shares)
    out = pd.concat(frames, ignore_index=True)
    out["stage"] = pd.Categorical(out["stage"], categories=list(STAGES))
    return out.sort_values([*by, "stage", "transition"], kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------- frontier
def threshold_policy(action: str, threshold: float, unlocalized: str = "block") -> PolicySpec:
    """A one-level policy of the sweep: ``action`` when any category's calibrated
    probability (whole response or one sentence) reaches ``threshold``."""
    return validate_policy(
        {
            "name": f"sweep_{action}",
            "version": "1",
            "description": f"{action} at probability >= {threshold:g}",
            "basis": "probability",
            "thresholds": {"default": {"high": float(threshold)}},
            "actions": {"low": "pass", "medium": "pass", "high": action},
            "unlocalized": unlocalized,
        }
    )


def threshold_frontier(
    analysis: ResponseAnalysis,
    scorer: Scorer,
    thresholds: Sequence[float],
    actions: Sequence[str] = ("block", "redact"),
    samples: pd.Series | None = None,
    alpha: float = 0.05,
    judge: Judge | None = None,
) -> pd.DataFrame:
    """Escalations removed (all, and harmful) against benign responses changed, per
    sample, across a probability threshold, for each policy family (overall category),
    counted by the judge when there is one.

    Columns: ``family, threshold, sample`` and the :func:`policy_effects` columns.
    """
    rows = []
    for action in actions:
        for t in sorted(float(x) for x in thresholds):
            policy = threshold_policy(action, t)
            out = apply_policy(analysis, policy, scorer, samples=samples, judge=judge)
            long = long_outcomes(out, "judge" if judge is not None else "trigger")
            eff = policy_effects(long.loc[long["category"] == OVERALL], by=("sample",), alpha=alpha)
            eff.insert(0, "threshold", t)
            eff.insert(0, "family", action)
            rows.append(eff)
    return pd.concat(rows, ignore_index=True)


# ------------------------------------------------------------------------- needs
def policy_cost(effects: pd.DataFrame) -> pd.DataFrame:
    """Per policy, pooled over samples (overall category): ``benign_changed`` (share of
    benign responses changed) and ``relevance_lost`` (share of fully relevant responses
    that lose relevance), the two costs by which :func:`category_needs` ranks policies."""
    d = effects.loc[effects["category"] == OVERALL]
    cols = ["benign_changed", "benign", "relevance_lost", "relevant"]
    g = d.groupby("policy", observed=True, sort=False)[cols].sum()
    return pd.DataFrame(
        {
            "benign_changed": (g["benign_changed"] / g["benign"].where(g["benign"] > 0)),
            "relevance_lost": (g["relevance_lost"] / g["relevant"].where(g["relevant"] > 0)),
        }
    ).fillna(0.0)


def category_needs(
    effects: pd.DataFrame, target: float = 0.8, min_escalations: int = 1
) -> pd.DataFrame:
    """Per sample and category: the least intrusive policy removing >= ``target`` of the
    category's harmful escalations (to Medium or High).

    Policies are ranked by :func:`policy_cost`: benign responses changed, then relevance
    lost, then their order. Columns: ``sample,
    category, escalations_before, harmful_escalations, needed_policy`` (``None`` when no
    policy reaches the target or there are fewer than ``min_escalations`` harmful
    escalations) and ``harmful_removed_share`` of every policy as ``removed_<policy>``.
    """
    cost = policy_cost(effects)
    names = list(cost.index)
    order = sorted(
        names,
        key=lambda p: (cost.at[p, "benign_changed"], cost.at[p, "relevance_lost"], names.index(p)),
    )
    rows = []
    d = effects.loc[effects["category"].astype(str).isin(CATEGORIES)]
    for (sample, cat), g in d.groupby(["sample", "category"], observed=True, sort=True):
        g = g.set_index("policy")
        n_harm = int(g["harmful_escalations"].iloc[0])
        row = {
            "sample": sample,
            "category": str(cat),
            "escalations_before": int(g["escalations_before"].iloc[0]),
            "harmful_escalations": n_harm,
        }
        needed = None
        if n_harm >= min_escalations:
            for p in order:
                if p in g.index and g.at[p, "harmful_removed_share"] >= target:
                    needed = str(p)
                    break
        row["needed_policy"] = needed
        for p in g.index:
            row[f"removed_{p}"] = float(g.at[p, "harmful_removed_share"])
        rows.append(row)
    out = pd.DataFrame(rows)
    if len(out):
        out["category"] = pd.Categorical(out["category"], categories=list(CATEGORIES))
    return out


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


def samples_for(analysis: ResponseAnalysis, records: pd.DataFrame) -> pd.Series:
    """Samples of the analysed responses, using ``hh_side`` from ``records`` if present."""
    if "hh_side" not in records:
        return sample_of(analysis.items)
    side = records.set_index("record_id")["hh_side"]
    items = analysis.items.assign(hh_side=analysis.items["record_id"].map(side))
    return sample_of(items)


def policies_by_name(
    names: Sequence[str], user: Mapping[str, Mapping] | None = None, llm: object | None = None
) -> list[PolicySpec]:
    """Policies for a notebook parameter list (shipped names or ``user`` specs)."""
    from harmtrace.moderate.policies import get_policy

    return [get_policy(n, llm=llm, user=user) for n in names]


def check_traces_agree(
    outcomes: pd.DataFrame, policies: Sequence[PolicySpec], trace_paths: Sequence[str]
) -> pd.DataFrame:
    """Check that the written traces say what the simulation computed.

    For every trace file of a simulated policy: same policy version, and for every
    response the same action and the same final severity per category. Returns one row
    per file (``policy, dataset, traces, compared, agree``) and raises
    :class:`~harmtrace.errors.HarmtraceError` on any disagreement, so the paper's numbers
    and the audit trail cannot drift apart.
    """
    from pathlib import Path

    from harmtrace.errors import HarmtraceError
    from harmtrace.moderate.trace import iter_traces

    by_name = {p.name: p for p in policies}
    index = outcomes.assign(policy=outcomes["policy"].astype(str)).set_index(
        ["policy", "record_id"]
    )
    rows = []
    for path in trace_paths:
        traces = list(iter_traces(Path(path)))
        if not traces:
            continue
        name = traces[0]["policy"]["name"]
        if name not in by_name:
            raise HarmtraceError(
                f"{path}: traces of policy {name!r}, which the simulation did not run; "
                "add it to the simulated policies or drop the file"
            )
        want = by_name[name].policy_version
        got = traces[0]["policy"]["policy_version"]
        if got != want:
            raise HarmtraceError(
                f"{path}: traces of {got}, but the simulation ran {want}; rerun moderate"
            )
        compared = agree = 0
        for t in traces:
            key = (name, t["record_id"])
            if key not in index.index:
                continue
            row = index.loc[key]
            compared += 1
            same_action = row["action"] == t["stages"]["intervention"]["action"]
            sev = t["stages"]["final"]["severity"]
            same_sev = all(int(row[f"after_sev_{c}"]) == sev[c] for c in CATEGORIES)
            agree += int(same_action and same_sev)
        rows.append(
            {
                "policy": name,
                "dataset": traces[0]["dataset"],
                "traces": len(traces),
                "compared": compared,
                "agree": agree,
            }
        )
        if agree != compared:
            raise HarmtraceError(
                f"{path}: {compared - agree} of {compared} traces disagree with the simulation "
                "of the same policy; rerun moderate and the notebook"
            )
    return pd.DataFrame(rows, columns=["policy", "dataset", "traces", "compared", "agree"])
