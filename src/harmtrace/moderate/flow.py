"""The traceable moderation flow: raw output -> safety analysis -> intervention -> final output.

:func:`moderate_records` is the whole flow for one policy. It is three steps that the
policy simulation also uses on their own, because the costly part (splitting and scoring
every sentence) does not depend on the policy:

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
"""

from __future__ import annotations

import difflib
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harmtrace.analysis.transitions import transition
from harmtrace.errors import HarmtraceError
from harmtrace.graders.base import as_texts
from harmtrace.moderate.backends import (
    FlaggedSentence,
    LLMBackend,
    RegenerateRequest,
    RewriteRequest,
    Scorer,
)
from harmtrace.moderate.clock import Clock, isoformat, system_clock
from harmtrace.moderate.policies import (
    ACTION_RANK,
    INTERVENTION_KIND,
    LEVELS,
    LLM_ACTIONS,
    SENTENCE_ACTIONS,
    PolicySpec,
    check_backend,
)
from harmtrace.moderate.sentences import SPLITTER_VERSION, Span, split_many
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
from harmtrace.taxonomy import CATEGORIES, CATEGORY_TITLES, SEVERITY_NAMES

log = logging.getLogger("harmtrace.moderate")

RECORD_COLUMNS = ("record_id", "dataset", "item_id", "prompt", "context", "response")
NCAT = len(CATEGORIES)


class ModerationError(HarmtraceError):
    """Inputs to the moderation flow do not fit together."""


# ------------------------------------------------------------------------- analysis
@dataclass
class ResponseAnalysis:
    """Everything the flow knows about the responses before a policy is applied.

    ``items`` has one row per record with a response, in input order (record columns,
    prompt and response severities per category, relevance, refusal). Sentences of item
    ``i`` are rows ``offsets[i]:offsets[i+1]`` of ``sentence_scores``.
    """

    items: pd.DataFrame
    spans: list[list[Span]]
    offsets: np.ndarray
    sentence_scores: pd.DataFrame
    scorer_name: str
    scorer_version: str
    judgments_version: str
    n_records: int
    n_without_response: int

    @property
    def n_items(self) -> int:
        return len(self.items)

    def response_values(self, kind: str) -> np.ndarray:
        """(items x categories) array of whole-response ``prob`` or ``severity``."""
        cols = [f"response_{kind}_{c}" for c in CATEGORIES]
        return self.items[cols].to_numpy(dtype=float, na_value=np.nan)

    def sentence_values(self, kind: str) -> np.ndarray:
        cols = [f"{kind}_{c}" for c in CATEGORIES]
        return self.sentence_scores[cols].to_numpy(dtype=float, na_value=np.nan)

    def sentence_item(self) -> np.ndarray:
        """Item position of every sentence row."""
        return np.repeat(np.arange(self.n_items), np.diff(self.offsets))


def _judged_items(records: pd.DataFrame, judgments: pd.DataFrame) -> pd.DataFrame:
    missing_cols = [c for c in RECORD_COLUMNS if c not in records.columns]
    if missing_cols:
        raise ModerationError(f"records lack column(s) {missing_cols}")
    if records["record_id"].duplicated().any():
        dup = records.loc[records["record_id"].duplicated(), "record_id"].iloc[0]
        raise ModerationError(f"records hold duplicate record_id values, e.g. {dup}")
    need = [
        "record_id",
        "status",
        "relevance",
        "refusal",
        "grader_version",
        *(f"prompt_severity_{c}" for c in CATEGORIES),
        *(f"response_{k}_{c}" for c in CATEGORIES for k in ("prob", "severity", "confidence")),
    ]
    lacking = [c for c in need if c not in judgments.columns]
    if lacking:
        raise ModerationError(f"judgments lack column(s) {lacking}")
    known = set(judgments["record_id"])
    unjudged = [r for r in records["record_id"] if r not in known]
    if unjudged:
        raise ModerationError(
            f"{len(unjudged)} record(s) have no judgment, e.g. {unjudged[:3]}; "
            "grade the records again so records and judgments match"
        )
    rec = records[[*RECORD_COLUMNS, *(["response_source"] if "response_source" in records else [])]]
    items = rec.merge(judgments[need], on="record_id", how="left", validate="one_to_one")
    if "response_source" not in items:
        items["response_source"] = pd.NA
    return items


def analyse_responses(
    records: pd.DataFrame, judgments: pd.DataFrame, scorer: Scorer, workers: int = 1
) -> ResponseAnalysis:
    """Join, split and score: the policy-independent part of the flow.

    The judgments must come from the same grader as ``scorer`` (same version string), so
    that whole-response scores, sentence scores and re-scored outputs are comparable.
    ``workers`` processes split sentences (see :func:`~harmtrace.moderate.sentences.split_many`).
    """
    items = _judged_items(records, judgments)
    versions = sorted(set(items["grader_version"].dropna().astype(str)))
    if len(versions) > 1:
        raise ModerationError(f"judgments mix grader versions {versions}; grade again")
    if versions and not (
        versions[0] == scorer.version or versions[0].startswith(f"{scorer.version}/")
    ):
        raise ModerationError(
            f"judgments were graded by {versions[0]!r} but the scorer is {scorer.version!r}; "
            "pass the model the judgments were graded with, or grade again"
        )
    has_response = items["response"].notna().to_numpy()
    n_records = len(items)
    items = items.loc[has_response].reset_index(drop=True)
    failed = (items["status"].astype(str) != "ok").to_numpy()
    if failed.any():
        raise ModerationError(
            f"{int(failed.sum())} response(s) have failed judgments (status != ok), e.g. "
            f"record {items.loc[failed, 'record_id'].iloc[0]}; grade them again"
        )
    unscored = items[[f"response_severity_{c}" for c in CATEGORIES]].isna().any(axis=1)
    if unscored.any():
        raise ModerationError(
            f"{int(unscored.sum())} response(s) have no response severity in the judgments, "
            f"e.g. record {items.loc[unscored, 'record_id'].iloc[0]}; grade them again"
        )
    responses = as_texts(items["response"])
    spans = split_many(responses, workers=workers)
    counts = np.array([len(s) for s in spans], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    sentence_texts = [sp.text for group in spans for sp in group]
    scores = scorer.score(sentence_texts).reset_index(drop=True)
    if len(scores) != len(sentence_texts):
        raise ModerationError(
            f"scorer {scorer.version} returned {len(scores)} rows for {len(sentence_texts)} texts"
        )
    return ResponseAnalysis(
        items=items,
        spans=spans,
        offsets=offsets,
        sentence_scores=scores,
        scorer_name=scorer.name,
        scorer_version=scorer.version,
        judgments_version=versions[0] if versions else scorer.version,
        n_records=n_records,
        n_without_response=int((~has_response).sum()),
    )


# ------------------------------------------------------------------------- decision
def threshold_matrix(policy: PolicySpec) -> np.ndarray:
    """(categories x levels) thresholds; a level switched off is +inf."""
    out = np.full((NCAT, len(LEVELS)), np.inf)
    for i, cat in enumerate(CATEGORIES):
        for j, t in enumerate(policy.category_thresholds(cat)):
            if t is not None:
                out[i, j] = float(t)
    return out


def levels_of(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Level code 0..3 per (row, category): the highest level whose threshold the value
    reaches (levels switched off never are). Missing values reach nothing."""
    v = np.nan_to_num(np.asarray(values, dtype=float), nan=-np.inf)
    reached = v[:, :, None] >= thresholds[None, :, :]
    codes = np.arange(1, thresholds.shape[1] + 1, dtype=np.int8)
    return (reached * codes).max(axis=2, initial=0).astype(np.int8)


@dataclass
class Decisions:
    """Levels and actions of one policy on one :class:`ResponseAnalysis`."""

    policy: PolicySpec
    response_levels: np.ndarray  # items x categories
    sentence_levels: np.ndarray  # sentences x categories
    item_level: np.ndarray  # items
    rule_action: np.ndarray  # items, the action the level maps to
    action: np.ndarray  # items, the action taken (after the unlocalized fallback)
    changed: np.ndarray  # sentences: the sentence action changes this sentence
    unlocalized: np.ndarray  # items: sentence action found no sentence to change


def decide(analysis: ResponseAnalysis, policy: PolicySpec) -> Decisions:
    """Policy levels per category, per sentence and per response, and one action each."""
    kind = "severity" if policy.basis == "severity" else "prob"
    thr = threshold_matrix(policy)
    resp = levels_of(analysis.response_values(kind), thr)
    sent = levels_of(analysis.sentence_values(kind).reshape(-1, NCAT), thr)
    n = analysis.n_items
    item_of = analysis.sentence_item()
    sent_max = sent.max(axis=1) if len(sent) else np.zeros(0, dtype=np.int8)
    item_sent_max = np.zeros(n, dtype=np.int8)
    np.maximum.at(item_sent_max, item_of, sent_max)
    item_level = np.maximum(resp.max(axis=1) if n else np.zeros(0, np.int8), item_sent_max)
    by_level = np.array([policy.action_at(k) for k in range(len(LEVELS) + 1)], dtype=object)
    rule_action = by_level[item_level]
    sentence_rule = np.isin(rule_action, list(SENTENCE_ACTIONS))
    changed = (sent_max >= policy.first_sentence_level) & sentence_rule[item_of]
    has_changed = np.zeros(n, dtype=bool)
    np.logical_or.at(has_changed, item_of, changed)
    unlocalized = sentence_rule & ~has_changed
    action = rule_action.copy()
    action[unlocalized] = policy.unlocalized
    return Decisions(policy, resp, sent, item_level, rule_action, action, changed, unlocalized)


# ------------------------------------------------------------------------- outcome
@dataclass
class Outcomes:
    """Final outputs and what they score after moderation."""

    final: list[str]
    action: np.ndarray  # action finally taken (after LLM verification)
    rescored: np.ndarray  # items whose output changed and was scored again
    severity_after: np.ndarray  # items x categories, int
    relevance_after: np.ndarray  # float with NaN
    refusal_after: list[bool | None]
    backend: list[str | None]
    llm_blocked: np.ndarray  # items: LLM output still reached a blocking level
    replacements: list[dict[int, str]] = field(default_factory=list)
    """Per item: sentence index -> placeholder, for redacted responses."""


def _placeholder(policy: PolicySpec, levels: np.ndarray, probs: np.ndarray, floor: int) -> str:
    cats = [CATEGORIES[i] for i in np.flatnonzero(levels >= floor)]
    if not cats:
        cats = [CATEGORIES[int(np.argmax(probs))]]
    return policy.redaction.format(category=", ".join(cats))


def redact_text(spans: Sequence[Span], replace: dict[int, str]) -> str:
    """The response with sentence ``i`` replaced by ``replace[i]`` (its trailing
    whitespace kept, so the layout of the rest is untouched)."""
    parts = []
    for i, sp in enumerate(spans):
        if i in replace:
            body = sp.text.rstrip()
            parts.append(replace[i] + sp.text[len(body) :])
        else:
            parts.append(sp.text)
    return "".join(parts)


def finalize(
    analysis: ResponseAnalysis,
    decisions: Decisions,
    scorer: Scorer,
    llm: LLMBackend | None = None,
    request_ids: Sequence[str] | None = None,
) -> Outcomes:
    """Final outputs under the decisions, re-scored wherever they changed."""
    policy = decisions.policy
    if np.isin(decisions.action, list(LLM_ACTIONS)).any():
        check_backend(policy, llm)
    items = analysis.items
    responses = as_texts(items["response"])
    prompts = as_texts(items["prompt"])
    contexts = as_texts(items["context"])
    n = analysis.n_items
    ids = list(request_ids) if request_ids is not None else [str(r) for r in items["record_id"]]
    final = list(responses)
    action = decisions.action.copy()
    backend: list[str | None] = [None] * n
    sprobs = analysis.sentence_values("prob")
    floor = policy.first_sentence_level
    rewrite_idx, regen_idx = [], []
    replacements: list[dict[int, str]] = [{} for _ in range(n)]
    for i in range(n):
        a = action[i]
        if a in ("pass", "annotate"):
            continue
        if a == "block":
            final[i] = policy.safe_message
        elif a == "redact":
            lo, hi = analysis.offsets[i], analysis.offsets[i + 1]
            replace = {
                k: _placeholder(policy, decisions.sentence_levels[lo + k], sprobs[lo + k], floor)
                for k in range(hi - lo)
                if decisions.changed[lo + k]
            }
            final[i] = redact_text(analysis.spans[i], replace)
            replacements[i] = replace
        elif a == "rewrite":
            rewrite_idx.append(i)
        elif a == "regenerate":
            regen_idx.append(i)
    if rewrite_idx or regen_idx:
        assert llm is not None  # check_backend above
        if rewrite_idx:
            reqs = []
            for i in rewrite_idx:
                lo = analysis.offsets[i]
                flagged = tuple(
                    FlaggedSentence(
                        analysis.spans[i][k].text.strip(),
                        CATEGORIES[int(np.argmax(decisions.sentence_levels[lo + k]))],
                        LEVELS[int(decisions.sentence_levels[lo + k].max()) - 1],
                    )
                    for k in range(len(analysis.spans[i]))
                    if decisions.changed[lo + k]
                )
                reqs.append(
                    RewriteRequest(
                        ids[i], prompts[i], contexts[i], responses[i], flagged, policy.constraints
                    )
                )
            for i, text in zip(rewrite_idx, llm.rewrite(reqs), strict=True):
                final[i], backend[i] = text, llm.version
        if regen_idx:
            reqs2 = [
                RegenerateRequest(
                    ids[i],
                    prompts[i],
                    contexts[i],
                    policy.constraints,
                    tuple(
                        CATEGORIES[c]
                        for c in range(NCAT)
                        if decisions.response_levels[i, c] >= decisions.item_level[i]
                    ),
                )
                for i in regen_idx
            ]
            for i, text in zip(regen_idx, llm.regenerate(reqs2), strict=True):
                final[i], backend[i] = text, llm.version
    changed = np.array([final[i] != responses[i] for i in range(n)], dtype=bool)
    sev_after = analysis.response_values("severity").astype(float)
    rel_after = items["relevance"].to_numpy(dtype=float, na_value=np.nan).copy()
    ref_after: list[bool | None] = [None if pd.isna(x) else bool(x) for x in items["refusal"]]
    llm_blocked = np.zeros(n, dtype=bool)
    idx = np.flatnonzero(changed)
    if len(idx):
        texts = [final[i] for i in idx]
        unique = sorted(set(texts))
        scored = scorer.score(unique).reset_index(drop=True)
        pos = {t: k for k, t in enumerate(unique)}
        rows = [pos[t] for t in texts]
        sev = scored[[f"severity_{c}" for c in CATEGORIES]].to_numpy(dtype=float)[rows]
        prob = scored[[f"prob_{c}" for c in CATEGORIES]].to_numpy(dtype=float)[rows]
        # an LLM output that still reaches a blocking level is not shown
        kind_vals = sev if policy.basis == "severity" else prob
        lv = levels_of(kind_vals, threshold_matrix(policy)).max(axis=1)
        for k, i in enumerate(idx):
            if action[i] in LLM_ACTIONS and ACTION_RANK[policy.action_at(int(lv[k]))] >= 3:
                llm_blocked[i] = True
                final[i] = policy.safe_message
                texts[k] = policy.safe_message
        if llm_blocked.any():
            unique = sorted(set(texts))
            scored = scorer.score(unique).reset_index(drop=True)
            pos = {t: k for k, t in enumerate(unique)}
            rows = [pos[t] for t in texts]
            sev = scored[[f"severity_{c}" for c in CATEGORIES]].to_numpy(dtype=float)[rows]
        sev_after[idx] = sev
        rel = scorer.relevance(
            [prompts[i] for i in idx], texts, [contexts[i] for i in idx]
        ).reset_index(drop=True)
        rel_after[idx] = rel["relevance"].to_numpy(dtype=float, na_value=np.nan)
        for k, i in enumerate(idx):
            v = rel["refusal"].iloc[k]
            ref_after[i] = None if pd.isna(v) else bool(v)
    return Outcomes(
        final=final,
        action=action,
        rescored=changed,
        severity_after=sev_after.astype(np.int64),
        relevance_after=rel_after,
        refusal_after=ref_after,
        backend=backend,
        llm_blocked=llm_blocked,
        replacements=replacements,
    )


# ------------------------------------------------------------------------- traces
def request_id(policy: PolicySpec, record_id: str) -> str:
    """``req-`` + 16 hex digits of sha256(policy version, record id): stable on reruns,
    different for every policy version, so traces of two policies never collide."""
    digest = hashlib.sha256(f"{policy.policy_version}\x1f{record_id}".encode()).hexdigest()
    return f"req-{digest[:16]}"


def _rounded(x: float) -> float | None:
    return round(float(x), 4) if np.isfinite(x) else None


def _level_name(code: int) -> str | None:
    return LEVELS[code - 1] if code > 0 else None


def _threshold_text(thresholds: np.ndarray, basis: str, cat_index: int, level: int) -> str:
    t = thresholds[cat_index, level - 1]
    if basis == "severity":
        return f"severity >= {int(t)}"
    return f"probability >= {t:g}"


def _reason(
    thresholds: np.ndarray,
    basis: str,
    scope: str,
    c: int,
    level: int,
    sev: int,
    prob: float,
    cues: list[str],
) -> str:
    what = "this sentence" if scope == "sentence" else "the whole response"
    text = (
        f"{CATEGORY_TITLES[CATEGORIES[c]]} scored p={prob:.2f} on {what}, severity {sev} "
        f"({SEVERITY_NAMES[sev]}); level {LEVELS[level - 1]} starts at "
        f"{_threshold_text(thresholds, basis, c, level)}"
    )
    if cues:
        text += "; words weighing most: " + ", ".join(f"'{w}'" for w in cues)
    return text


def _flag_label(f: Flag) -> str:
    where = f"sentence {f.sentence + 1}" if f.scope == "sentence" else "whole response"
    return f"{f.id} ({f.category}, {f.level}, {where})"


def _diff(original: Sequence[str], modified: Sequence[str]) -> str:
    lines = difflib.unified_diff(
        list(original), list(modified), "original", "modified", lineterm="", n=2
    )
    return "\n".join(lines)


def _lines(spans: Sequence[Span]) -> list[str]:
    return [sp.text.strip() for sp in spans]


def _cat_list(cats: Sequence[str]) -> str:
    return ", ".join(CATEGORY_TITLES[c].lower() for c in cats) if cats else "no category"


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
    n = analysis.n_items
    rids = [request_id(policy, str(r)) for r in items["record_id"]]
    probs_r = analysis.response_values("prob")
    sev_r = analysis.response_values("severity").astype(np.int64)
    conf_r = items[[f"response_confidence_{c}" for c in CATEGORIES]].to_numpy(dtype=float)
    probs_s = analysis.sentence_values("prob")
    sev_s = analysis.sentence_values("severity").astype(np.int64)
    conf_s = analysis.sentence_values("confidence")
    prompt_sev = items[[f"prompt_severity_{c}" for c in CATEGORIES]].to_numpy(dtype=float)
    before = [
        None if pd.isna(t) else str(t)
        for t in transition(prompt_sev.max(axis=1), sev_r.max(axis=1))
    ]
    after = [
        None if pd.isna(t) else str(t)
        for t in transition(prompt_sev.max(axis=1), outcomes.severity_after.max(axis=1))
    ]
    thr = threshold_matrix(policy)
    rules = {level: policy.rule_text(level) for level in range(1, len(LEVELS) + 1)}
    rel_before = items["relevance"].to_numpy(dtype=float, na_value=np.nan)

    # every flag: (item, scope, sentence row or None, category index, level)
    flag_rows: list[tuple[int, str, int | None, int, int]] = []
    for i in range(n):
        for c in range(NCAT):
            if decisions.response_levels[i, c] > 0:
                flag_rows.append((i, "response", None, c, int(decisions.response_levels[i, c])))
        for row in range(analysis.offsets[i], analysis.offsets[i + 1]):
            for c in range(NCAT):
                if decisions.sentence_levels[row, c] > 0:
                    level = int(decisions.sentence_levels[row, c])
                    flag_rows.append((i, "sentence", row, c, level))
    responses = as_texts(items["response"])
    sentence_texts = [sp.text for group in analysis.spans for sp in group]
    cues: list[list[str]] = [[] for _ in flag_rows]
    if explain and flag_rows:
        texts = [
            responses[i] if scope == "response" else sentence_texts[row]
            for i, scope, row, _, _ in flag_rows
        ]
        cues = scorer.explain(texts, [CATEGORIES[c] for *_, c, _ in flag_rows])
    flags_of: list[list[Flag]] = [[] for _ in range(n)]
    for (i, scope, row, c, level), words in zip(flag_rows, cues, strict=True):
        if scope == "response":
            sev, prob, conf, sentence = int(sev_r[i, c]), probs_r[i, c], conf_r[i, c], None
        else:
            sev, prob, conf = int(sev_s[row, c]), probs_s[row, c], conf_s[row, c]
            sentence = int(row - analysis.offsets[i])
        flags_of[i].append(
            Flag(
                id=f"f{len(flags_of[i]) + 1}",
                scope=scope,
                sentence=sentence,
                category=CATEGORIES[c],
                severity=sev,
                level=LEVELS[level - 1],
                prob=round(float(prob), 4),
                confidence=round(float(conf), 4),
                reason=_reason(thr, policy.basis, scope, c, level, sev, float(prob), list(words)),
                cues=list(words),
            )
        )

    pref = PolicyRef(name=policy.name, version=policy.version, policy_version=policy.policy_version)
    gref = GraderRef(name=analysis.scorer_name, version=analysis.judgments_version)
    traces = []
    rows = items[[*RECORD_COLUMNS, "response_source"]].to_dict("records")
    for i in range(n):
        rec = rows[i]
        spans = analysis.spans[i]
        lo = int(analysis.offsets[i])
        flags = flags_of[i]
        level = int(decisions.item_level[i])
        action = str(outcomes.action[i])
        scores = {
            cat: CategoryScore(
                prob=_rounded(probs_r[i, c]),
                severity=int(sev_r[i, c]),
                confidence=_rounded(conf_r[i, c]),
                level=_level_name(int(decisions.response_levels[i, c])),
            )
            for c, cat in enumerate(CATEGORIES)
        }
        top = int(np.lexsort((-probs_r[i], -sev_r[i]))[0])
        overall_sev = int(sev_r[i].max())
        overall = Overall(
            severity=overall_sev,
            category=CATEGORIES[top] if overall_sev > 0 else None,
            level=_level_name(int(decisions.response_levels[i].max())),
        )
        sentences = [
            Sentence(
                index=k,
                start=sp.start,
                end=sp.end,
                text=sp.text,
                level=_level_name(int(decisions.sentence_levels[lo + k].max())),
            )
            for k, sp in enumerate(spans)
        ]
        cats = [c for c in CATEGORIES if any(f.category == c for f in flags)]
        analysis_summary = _analysis_summary(len(spans), flags, level)
        triggered = [f for f in flags if level > 0 and f.level == LEVELS[level - 1]]
        changed_sentences = [
            k for k in range(len(spans)) if decisions.changed[lo + k] and action in SENTENCE_ACTIONS
        ]
        final_text = outcomes.final[i]
        modified = bool(outcomes.rescored[i])
        if not modified:
            diff = ""
        elif action == "redact":
            repl = outcomes.replacements[i]
            diff = _diff(_lines(spans), [repl.get(k, ln) for k, ln in enumerate(_lines(spans))])
        else:
            diff = _diff(_lines(spans), [ln for ln in final_text.splitlines() if ln.strip()])
        justification = _justification(
            policy,
            rules.get(level, ""),
            level,
            action,
            str(decisions.rule_action[i]),
            triggered,
            changed_sentences,
            bool(decisions.unlocalized[i]),
            bool(outcomes.llm_blocked[i]),
        )
        sev_after = {c: int(outcomes.severity_after[i, k]) for k, c in enumerate(CATEGORIES)}
        ra = outcomes.relevance_after[i]
        trace = Trace(
            request_id=rids[i],
            record_id=str(rec["record_id"]),
            dataset=str(rec["dataset"]),
            item_id=str(rec["item_id"]),
            policy=pref,
            grader=gref,
            categories=cats,
            transition=TransitionChange(before=before[i], after=after[i]),
            relevance=RelevanceChange(
                before=None if np.isnan(rel_before[i]) else int(rel_before[i]),
                after=None if np.isnan(ra) else int(ra),
            ),
            stages=Stages(
                raw=RawStage(
                    timestamp=stamps["raw"],
                    prompt=str(rec["prompt"]),
                    context=str(rec["context"]),
                    response=responses[i],
                    source_model=None
                    if pd.isna(rec["response_source"])
                    else str(rec["response_source"]),
                ),
                analysis=AnalysisStage(
                    timestamp=stamps["analysis"],
                    grader=analysis.scorer_name,
                    grader_version=analysis.scorer_version,
                    splitter=SPLITTER_VERSION,
                    scores=scores,
                    overall=overall,
                    sentences=sentences,
                    flags=flags,
                    summary=analysis_summary,
                ),
                intervention=InterventionStage(
                    timestamp=stamps["intervention"],
                    action=action,
                    kind=INTERVENTION_KIND[action],
                    level=_level_name(level),
                    rule=rules.get(level),
                    triggered_by=[f.id for f in triggered],
                    changed_sentences=changed_sentences,
                    justification=justification,
                    modified=modified,
                    diff=diff,
                    backend=outcomes.backend[i],
                ),
                final=FinalStage(
                    timestamp=stamps["final"],
                    output=final_text,
                    summary=_final_summary(
                        policy,
                        action,
                        level,
                        flags,
                        triggered,
                        len(spans),
                        changed_sentences,
                        outcomes.backend[i],
                        bool(outcomes.llm_blocked[i]),
                    ),
                    severity=sev_after,
                    overall_severity=max(sev_after.values()),
                    relevance=None if np.isnan(ra) else int(ra),
                    refusal=outcomes.refusal_after[i],
                    rescored=modified,
                ),
            ),
        )
        traces.append(trace)
    return traces


def _analysis_summary(n_sentences: int, flags: Sequence[Flag], level: int) -> str:
    if not flags:
        return f"{n_sentences} sentence(s); no category reached a policy level."
    cats = sorted({f.category for f in flags}, key=CATEGORIES.index)
    n_sent_flags = sum(f.scope == "sentence" for f in flags)
    return (
        f"{n_sentences} sentence(s); {len(flags)} flag(s) ({n_sent_flags} on sentences) for "
        f"{_cat_list(cats)}; highest level {LEVELS[level - 1]}."
    )


def _justification(
    policy: PolicySpec,
    rule: str,
    level: int,
    action: str,
    rule_action: str,
    triggered: Sequence[Flag],
    changed: Sequence[int],
    unlocalized: bool,
    llm_blocked: bool,
) -> str:
    if level == 0:
        return f"No flag reached a level of policy {policy.policy_version}; nothing to do."
    flags = ", ".join(_flag_label(f) for f in triggered)
    head = (
        f"Rule '{rule}' of policy {policy.policy_version} applies: "
        f"{flags} reached level {LEVELS[level - 1]}."
    )
    if unlocalized:
        tail = (
            f"The rule asks to {rule_action} flagged sentences, but no single sentence reached "
            f"that level (the whole response did), so the policy's fallback "
            f"'{policy.unlocalized}' applied."
        )
    elif llm_blocked:
        tail = (
            f"The {action} output was scored again and still reached a blocking level, so "
            "the policy's safe message was shown instead."
        )
    elif action == "pass":
        tail = "The policy does not intervene at this level; the response is shown unchanged."
    elif action == "annotate":
        tail = "The response is shown unchanged with the flags attached as annotations."
    elif action == "redact":
        shown = ", ".join(str(k + 1) for k in changed)
        tail = f"Sentence(s) {shown} were replaced by placeholders naming their category."
    elif action == "rewrite":
        shown = ", ".join(str(k + 1) for k in changed)
        tail = f"Sentence(s) {shown} were rewritten by the LLM backend under the constraints."
    elif action == "block":
        tail = "The response was replaced by the policy's safe message."
    else:
        tail = "A new response was generated by the LLM backend under the policy's constraints."
    return f"{head} {tail}"


def _final_summary(
    policy: PolicySpec,
    action: str,
    level: int,
    flags: Sequence[Flag],
    triggered: Sequence[Flag],
    n_sentences: int,
    changed: Sequence[int],
    backend: str | None,
    llm_blocked: bool,
) -> str:
    cats = _cat_list(sorted({f.category for f in triggered}, key=CATEGORIES.index))
    name = LEVELS[level - 1] if level else ""
    if level == 0:
        return "Shown unchanged: no category reached a policy level."
    if llm_blocked:
        return f"Blocked: the {action} output was still flagged ({cats}); a safe message was shown."
    if action == "pass":
        return (
            f"Shown unchanged: {len(flags)} flag(s) observed, highest {name} ({cats}); "
            f"policy {policy.name} does not intervene."
        )
    if action == "annotate":
        return f"Shown unchanged with {len(flags)} annotation(s); highest {name} ({cats})."
    if action == "redact":
        return (
            f"Modified: {len(changed)} of {n_sentences} sentence(s) removed for {cats} "
            f"({name}); the rest is shown as written."
        )
    if action == "rewrite":
        return f"Modified: {len(changed)} sentence(s) rewritten by {backend} for {cats} ({name})."
    if action == "block":
        return (
            f"Blocked: {cats} reached {name} under policy {policy.name}; a safe message was shown."
        )
    return f"Regenerated under constraints by {backend} after {cats} reached {name}."


# ------------------------------------------------------------------------- the flow
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
    check_backend(policy, llm)
    stamps = {"raw": stage_clock(clock)}
    analysis = analyse_responses(records, judgments, scorer, workers=workers)
    stamps["analysis"] = stage_clock(clock)
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
        "policy %s: %d record(s), %d with a response -> %d trace(s), %d without a response "
        "(no trace); actions %s",
        policy.policy_version,
        analysis.n_records,
        len(traces),
        len(traces),
        analysis.n_without_response,
        dict(sorted(actions.items())),
    )
    return traces
