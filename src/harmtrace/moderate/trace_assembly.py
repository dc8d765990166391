"""Stage 4 of the moderation flow: one audit-trail trace per response.

A trace (:mod:`harmtrace.moderate.trace`) follows one response through the four stages
under one request id: the raw output, the safety analysis (scores, sentences, flags with
their reasons and cue words), the intervention (action, rule, justification, diff) and the
final output with its scores after moderation. Flags are the categories that reach a
policy level, on the whole response or on one sentence; the words that weighed most are
collected by :mod:`~harmtrace.moderate.trace_flags`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harmtrace.analysis.transitions import transition
from harmtrace.graders.base import as_texts
from harmtrace.moderate.backends import Scorer
from harmtrace.moderate.decisions import Decisions
from harmtrace.moderate.final_outputs import Outcomes
from harmtrace.moderate.policies import INTERVENTION_KIND, LEVELS, SENTENCE_ACTIONS, PolicySpec
from harmtrace.moderate.response_analysis import RECORD_COLUMNS, ResponseAnalysis
from harmtrace.moderate.sentences import SPLITTER_VERSION, Span
from harmtrace.moderate.trace import (
    AnalysisStage,
    CategoryScore,
    FinalStage,
    Flag,
    GraderRef,
    InterventionStage,
    Overall,
    PolicyRef,
    RawStage,
    RelevanceChange,
    Sentence,
    Stages,
    Trace,
    TransitionChange,
)
from harmtrace.moderate.trace_flags import ScoreArrays, item_flags, score_arrays
from harmtrace.moderate.trace_wording import (
    analysis_summary,
    final_summary,
    intervention_justification,
    line_diff,
    sentence_lines,
)
from harmtrace.taxonomy import CATEGORIES


def request_id(policy: PolicySpec, record_id: str) -> str:
    """``req-`` + 16 hex digits of sha256(policy version, record id): stable on reruns,
    different for every policy version, so traces of two policies never collide."""
    digest = hashlib.sha256(f"{policy.policy_version}\x1f{record_id}".encode()).hexdigest()
    return f"req-{digest[:16]}"


def _rounded(x: float) -> float | None:
    return round(float(x), 4) if np.isfinite(x) else None


def _level_name(code: int) -> str | None:
    return LEVELS[code - 1] if code > 0 else None


@dataclass
class _Run:
    """What every trace of one run shares."""

    analysis: ResponseAnalysis
    decisions: Decisions
    outcomes: Outcomes
    stamps: dict[str, str]
    scores: ScoreArrays
    flags_of: list[list[Flag]]
    responses: list[str]
    rows: list[dict[str, Any]]
    request_ids: list[str]
    rules: dict[int, str]
    before: list[str | None]
    after: list[str | None]
    relevance_before: np.ndarray
    policy_ref: PolicyRef
    grader_ref: GraderRef


@dataclass
class _Item:
    """The facts of one response that several stages of its trace repeat."""

    i: int
    spans: list[Span]
    lo: int
    flags: list[Flag]
    level: int
    action: str
    triggered: list[Flag]
    changed: list[int]
    modified: bool


def build_traces(
    analysis: ResponseAnalysis,
    decisions: Decisions,
    outcomes: Outcomes,
    scorer: Scorer,
    stamps: dict[str, str],
    explain: bool = True,
) -> list[Trace]:
    """One trace per response (see :mod:`harmtrace.moderate.trace`)."""
    policy = decisions.policy
    items = analysis.items
    rids = [request_id(policy, str(r)) for r in items["record_id"]]
    scores = score_arrays(analysis)
    before, after = _transitions(items, scores.sev_r, outcomes.severity_after)
    responses = as_texts(items["response"])
    run = _Run(
        analysis=analysis,
        decisions=decisions,
        outcomes=outcomes,
        stamps=stamps,
        scores=scores,
        flags_of=item_flags(analysis, decisions, scores, responses, scorer, explain),
        responses=responses,
        rows=items[[*RECORD_COLUMNS, "response_source"]].to_dict("records"),
        request_ids=rids,
        rules={level: policy.rule_text(level) for level in range(1, len(LEVELS) + 1)},
        before=before,
        after=after,
        relevance_before=items["relevance"].to_numpy(dtype=float, na_value=np.nan),
        policy_ref=PolicyRef(
            name=policy.name, version=policy.version, policy_version=policy.policy_version
        ),
        grader_ref=GraderRef(name=analysis.scorer_name, version=analysis.judgments_version),
    )
    return [_trace(run, _item(run, i)) for i in range(analysis.n_items)]


def _transitions(
    items: pd.DataFrame, sev_r: np.ndarray, sev_after: np.ndarray
) -> tuple[list[str | None], list[str | None]]:
    """Prompt -> response transition of every item, before and after moderation."""
    prompt_sev = items[[f"prompt_severity_{c}" for c in CATEGORIES]].to_numpy(dtype=float)
    before = [
        None if pd.isna(t) else str(t)
        for t in transition(prompt_sev.max(axis=1), sev_r.max(axis=1))
    ]
    after = [
        None if pd.isna(t) else str(t)
        for t in transition(prompt_sev.max(axis=1), sev_after.max(axis=1))
    ]
    return before, after


def _item(run: _Run, i: int) -> _Item:
    spans = run.analysis.spans[i]
    lo = int(run.analysis.offsets[i])
    flags = run.flags_of[i]
    level = int(run.decisions.item_level[i])
    action = str(run.outcomes.action[i])
    return _Item(
        i=i,
        spans=spans,
        lo=lo,
        flags=flags,
        level=level,
        action=action,
        triggered=[f for f in flags if level > 0 and f.level == LEVELS[level - 1]],
        changed=[
            k
            for k in range(len(spans))
            if run.decisions.changed[lo + k] and action in SENTENCE_ACTIONS
        ],
        modified=bool(run.outcomes.rescored[i]),
    )


def _trace(run: _Run, it: _Item) -> Trace:
    rec = run.rows[it.i]
    ra = run.outcomes.relevance_after[it.i]
    rel_before = run.relevance_before[it.i]
    return Trace(
        request_id=run.request_ids[it.i],
        record_id=str(rec["record_id"]),
        dataset=str(rec["dataset"]),
        item_id=str(rec["item_id"]),
        policy=run.policy_ref,
        grader=run.grader_ref,
        categories=[c for c in CATEGORIES if any(f.category == c for f in it.flags)],
        transition=TransitionChange(before=run.before[it.i], after=run.after[it.i]),
        relevance=RelevanceChange(
            before=None if np.isnan(rel_before) else int(rel_before),
            after=None if np.isnan(ra) else int(ra),
        ),
        stages=Stages(
            raw=RawStage(
                timestamp=run.stamps["raw"],
                prompt=str(rec["prompt"]),
                context=str(rec["context"]),
                response=run.responses[it.i],
                source_model=None
                if pd.isna(rec["response_source"])
                else str(rec["response_source"]),
            ),
            analysis=_analysis_stage(run, it),
            intervention=_intervention_stage(run, it),
            final=_final_stage(run, it),
        ),
    )


def _analysis_stage(run: _Run, it: _Item) -> AnalysisStage:
    s, i, levels = run.scores, it.i, run.decisions.response_levels
    scores = {
        cat: CategoryScore(
            prob=_rounded(s.probs_r[i, c]),
            severity=int(s.sev_r[i, c]),
            confidence=_rounded(s.conf_r[i, c]),
            level=_level_name(int(levels[i, c])),
        )
        for c, cat in enumerate(CATEGORIES)
    }
    top = int(np.lexsort((-s.probs_r[i], -s.sev_r[i]))[0])
    overall_sev = int(s.sev_r[i].max())
    return AnalysisStage(
        timestamp=run.stamps["analysis"],
        grader=run.analysis.scorer_name,
        grader_version=run.analysis.scorer_version,
        splitter=SPLITTER_VERSION,
        scores=scores,
        overall=Overall(
            severity=overall_sev,
            category=CATEGORIES[top] if overall_sev > 0 else None,
            level=_level_name(int(levels[i].max())),
        ),
        sentences=[
            Sentence(
                index=k,
                start=sp.start,
                end=sp.end,
                text=sp.text,
                level=_level_name(int(run.decisions.sentence_levels[it.lo + k].max())),
            )
            for k, sp in enumerate(it.spans)
        ],
        flags=it.flags,
        summary=analysis_summary(len(it.spans), it.flags, it.level),
    )


def _intervention_stage(run: _Run, it: _Item) -> InterventionStage:
    policy = run.decisions.policy
    return InterventionStage(
        timestamp=run.stamps["intervention"],
        action=it.action,
        kind=INTERVENTION_KIND[it.action],
        level=_level_name(it.level),
        rule=run.rules.get(it.level),
        triggered_by=[f.id for f in it.triggered],
        changed_sentences=it.changed,
        justification=intervention_justification(
            policy,
            run.rules.get(it.level, ""),
            it.level,
            it.action,
            str(run.decisions.rule_action[it.i]),
            it.triggered,
            it.changed,
            bool(run.decisions.unlocalized[it.i]),
            bool(run.outcomes.llm_blocked[it.i]),
        ),
        modified=it.modified,
        diff=_diff(run, it),
        backend=run.outcomes.backend[it.i],
    )


def _diff(run: _Run, it: _Item) -> str:
    """Sentence lines before against after; empty when the output did not change."""
    if not it.modified:
        return ""
    lines = sentence_lines(it.spans)
    if it.action == "redact":
        repl = run.outcomes.replacements[it.i]
        return line_diff(lines, [repl.get(k, ln) for k, ln in enumerate(lines)])
    return line_diff(lines, [ln for ln in run.outcomes.final[it.i].splitlines() if ln.strip()])


def _final_stage(run: _Run, it: _Item) -> FinalStage:
    outcomes, i = run.outcomes, it.i
    sev_after = {c: int(outcomes.severity_after[i, k]) for k, c in enumerate(CATEGORIES)}
    ra = outcomes.relevance_after[i]
    return FinalStage(
        timestamp=run.stamps["final"],
        output=outcomes.final[i],
        summary=final_summary(
            run.decisions.policy,
            it.action,
            it.level,
            it.flags,
            it.triggered,
            len(it.spans),
            it.changed,
            outcomes.backend[i],
            bool(outcomes.llm_blocked[i]),
        ),
        severity=sev_after,
        overall_severity=max(sev_after.values()),
        relevance=None if np.isnan(ra) else int(ra),
        refusal=outcomes.refusal_after[i],
        rescored=it.modified,
    )
