"""Stage 3 of the moderation flow: the final outputs, measured after moderation.

Blocks get the policy's safe message, redactions a placeholder per changed sentence, and
rewrite/regenerate the LLM backend's text. Every output that changed is scored again, so
that severity, relevance and the prompt -> response transition *after* moderation are
measured, not assumed. An LLM output that still reaches a blocking level is replaced by
the safe message (and scored again).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harmtrace.graders.base import as_texts
from harmtrace.moderate.backends import (
    FlaggedSentence,
    LLMBackend,
    RegenerateRequest,
    RewriteRequest,
    Scorer,
)
from harmtrace.moderate.decisions import NCAT, Decisions, levels_of, threshold_matrix
from harmtrace.moderate.policies import ACTION_RANK, LEVELS, LLM_ACTIONS, PolicySpec, check_backend
from harmtrace.moderate.response_analysis import ResponseAnalysis
from harmtrace.moderate.sentences import Span
from harmtrace.taxonomy import CATEGORIES


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


@dataclass
class _Texts:
    """Per item: the response, prompt and context, as the backends take them."""

    responses: list[str]
    prompts: list[str]
    contexts: list[str]


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
    texts = _Texts(
        as_texts(items["response"]), as_texts(items["prompt"]), as_texts(items["context"])
    )
    ids = list(request_ids) if request_ids is not None else [str(r) for r in items["record_id"]]
    final = list(texts.responses)
    action = decisions.action.copy()
    backend: list[str | None] = [None] * analysis.n_items
    replacements, rewrite_idx, regen_idx = _local_actions(analysis, decisions, action, final)
    if rewrite_idx or regen_idx:
        assert llm is not None  # check_backend above
        if rewrite_idx:
            reqs = _rewrite_requests(analysis, decisions, rewrite_idx, ids, texts)
            for i, text in zip(rewrite_idx, llm.rewrite(reqs), strict=True):
                final[i], backend[i] = text, llm.version
        if regen_idx:
            reqs2 = _regenerate_requests(decisions, regen_idx, ids, texts)
            for i, text in zip(regen_idx, llm.regenerate(reqs2), strict=True):
                final[i], backend[i] = text, llm.version
    return _measured(analysis, policy, scorer, texts, final, action, backend, replacements)


def _local_actions(
    analysis: ResponseAnalysis, decisions: Decisions, action: np.ndarray, final: list[str]
) -> tuple[list[dict[int, str]], list[int], list[int]]:
    """Write blocks and redactions into ``final``; return the redactions' placeholders and
    the items the LLM backend must rewrite or regenerate."""
    policy = decisions.policy
    sprobs = analysis.sentence_values("prob")
    floor = policy.first_sentence_level
    rewrite_idx, regen_idx = [], []
    replacements: list[dict[int, str]] = [{} for _ in range(analysis.n_items)]
    for i in range(analysis.n_items):
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
    return replacements, rewrite_idx, regen_idx


def _rewrite_requests(
    analysis: ResponseAnalysis,
    decisions: Decisions,
    idx: Sequence[int],
    ids: Sequence[str],
    texts: _Texts,
) -> list[RewriteRequest]:
    """One request per item, naming each sentence to rewrite with its top category and level."""
    reqs = []
    for i in idx:
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
                ids[i],
                texts.prompts[i],
                texts.contexts[i],
                texts.responses[i],
                flagged,
                decisions.policy.constraints,
            )
        )
    return reqs


def _regenerate_requests(
    decisions: Decisions, idx: Sequence[int], ids: Sequence[str], texts: _Texts
) -> list[RegenerateRequest]:
    """One request per item; its reasons are the categories at the item's level."""
    return [
        RegenerateRequest(
            ids[i],
            texts.prompts[i],
            texts.contexts[i],
            decisions.policy.constraints,
            tuple(
                CATEGORIES[c]
                for c in range(NCAT)
                if decisions.response_levels[i, c] >= decisions.item_level[i]
            ),
        )
        for i in idx
    ]


def _measured(
    analysis: ResponseAnalysis,
    policy: PolicySpec,
    scorer: Scorer,
    texts: _Texts,
    final: list[str],
    action: np.ndarray,
    backend: list[str | None],
    replacements: list[dict[int, str]],
) -> Outcomes:
    """Score every changed output again (severity, relevance, refusal); unchanged outputs
    keep the judgments' values."""
    n = analysis.n_items
    items = analysis.items
    changed = np.array([final[i] != texts.responses[i] for i in range(n)], dtype=bool)
    sev_after = analysis.response_values("severity").astype(float)
    rel_after = items["relevance"].to_numpy(dtype=float, na_value=np.nan).copy()
    ref_after: list[bool | None] = [None if pd.isna(x) else bool(x) for x in items["refusal"]]
    llm_blocked = np.zeros(n, dtype=bool)
    idx = np.flatnonzero(changed)
    if len(idx):
        outputs = [final[i] for i in idx]
        scored, rows = _score_once(scorer, outputs)
        sev = _values(scored, rows, "severity")
        prob = _values(scored, rows, "prob")
        kind_vals = sev if policy.basis == "severity" else prob
        _block_still_harmful(policy, idx, action, kind_vals, final, outputs, llm_blocked)
        if llm_blocked.any():
            scored, rows = _score_once(scorer, outputs)
            sev = _values(scored, rows, "severity")
        sev_after[idx] = sev
        rel = scorer.relevance(
            [texts.prompts[i] for i in idx], outputs, [texts.contexts[i] for i in idx]
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


def _score_once(scorer: Scorer, texts: list[str]) -> tuple[pd.DataFrame, list[int]]:
    """Scores of every distinct text (scored once, in sorted order) and each text's row."""
    unique = sorted(set(texts))
    scored = scorer.score(unique).reset_index(drop=True)
    pos = {t: k for k, t in enumerate(unique)}
    return scored, [pos[t] for t in texts]


def _values(scored: pd.DataFrame, rows: list[int], kind: str) -> np.ndarray:
    return scored[[f"{kind}_{c}" for c in CATEGORIES]].to_numpy(dtype=float)[rows]


def _block_still_harmful(
    policy: PolicySpec,
    idx: np.ndarray,
    action: np.ndarray,
    values: np.ndarray,
    final: list[str],
    outputs: list[str],
    llm_blocked: np.ndarray,
) -> None:
    """An LLM output that still reaches a blocking level is not shown: the safe message
    replaces it in ``final`` and ``outputs``, and ``llm_blocked`` marks it."""
    lv = levels_of(values, threshold_matrix(policy)).max(axis=1)
    for k, i in enumerate(idx):
        if action[i] in LLM_ACTIONS and ACTION_RANK[policy.action_at(int(lv[k]))] >= 3:
            llm_blocked[i] = True
            final[i] = policy.safe_message
            outputs[k] = policy.safe_message
