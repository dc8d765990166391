"""The flags of a trace: every category that reaches a policy level, and why.

A flag is raised for the whole response or for one sentence; it carries the scores, the
level reached, a reason naming the threshold, and the words that weighed most, which the
scorer is asked for in one batch for all flags of a run (or not at all, without
``explain``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harmtrace.moderate.backends import Scorer
from harmtrace.moderate.decisions import NCAT, Decisions, threshold_matrix
from harmtrace.moderate.policies import LEVELS
from harmtrace.moderate.response_analysis import ResponseAnalysis
from harmtrace.moderate.trace import Flag
from harmtrace.moderate.trace_wording import flag_reason
from harmtrace.taxonomy import CATEGORIES

FlagRow = tuple[int, str, int | None, int, int]
"""One flag: (item, scope, sentence row or None, category index, level)."""


@dataclass
class ScoreArrays:
    """Whole-response (``*_r``, items x categories) and sentence (``*_s``) scores."""

    probs_r: np.ndarray
    sev_r: np.ndarray
    conf_r: np.ndarray
    probs_s: np.ndarray
    sev_s: np.ndarray
    conf_s: np.ndarray


def score_arrays(analysis: ResponseAnalysis) -> ScoreArrays:
    """The scores every flag and every analysis stage read, as arrays."""
    items = analysis.items
    return ScoreArrays(
        probs_r=analysis.response_values("prob"),
        sev_r=analysis.response_values("severity").astype(np.int64),
        conf_r=items[[f"response_confidence_{c}" for c in CATEGORIES]].to_numpy(dtype=float),
        probs_s=analysis.sentence_values("prob"),
        sev_s=analysis.sentence_values("severity").astype(np.int64),
        conf_s=analysis.sentence_values("confidence"),
    )


def item_flags(
    analysis: ResponseAnalysis,
    decisions: Decisions,
    scores: ScoreArrays,
    responses: list[str],
    scorer: Scorer,
    explain: bool = True,
) -> list[list[Flag]]:
    """The flags of every item, numbered ``f1``, ``f2``, ... within the item."""
    flag_rows = _flag_rows(analysis, decisions)
    cues: list[list[str]] = [[] for _ in flag_rows]
    if explain and flag_rows:
        cues = _cues(analysis, responses, flag_rows, scorer)
    return _flags(analysis, decisions, scores, flag_rows, cues)


def _flag_rows(analysis: ResponseAnalysis, decisions: Decisions) -> list[FlagRow]:
    """Every category at a policy level: per item, the whole response, then its sentences."""
    flag_rows: list[FlagRow] = []
    for i in range(analysis.n_items):
        for c in range(NCAT):
            if decisions.response_levels[i, c] > 0:
                flag_rows.append((i, "response", None, c, int(decisions.response_levels[i, c])))
        for row in range(analysis.offsets[i], analysis.offsets[i + 1]):
            for c in range(NCAT):
                if decisions.sentence_levels[row, c] > 0:
                    level = int(decisions.sentence_levels[row, c])
                    flag_rows.append((i, "sentence", row, c, level))
    return flag_rows


def _cues(
    analysis: ResponseAnalysis, responses: list[str], flag_rows: list[FlagRow], scorer: Scorer
) -> list[list[str]]:
    """The words that weighed most for each flag, asked of the scorer in one batch."""
    sentence_texts = [sp.text for group in analysis.spans for sp in group]
    texts = [
        responses[i] if scope == "response" else sentence_texts[row]
        for i, scope, row, _, _ in flag_rows
    ]
    return scorer.explain(texts, [CATEGORIES[c] for *_, c, _ in flag_rows])


def _flags(
    analysis: ResponseAnalysis,
    decisions: Decisions,
    scores: ScoreArrays,
    flag_rows: list[FlagRow],
    cues: list[list[str]],
) -> list[list[Flag]]:
    """The flags of every item, numbered ``f1``, ``f2``, ... within the item."""
    policy = decisions.policy
    thr = threshold_matrix(policy)
    flags_of: list[list[Flag]] = [[] for _ in range(analysis.n_items)]
    for (i, scope, row, c, level), words in zip(flag_rows, cues, strict=True):
        if scope == "response":
            sev, prob = int(scores.sev_r[i, c]), scores.probs_r[i, c]
            conf, sentence = scores.conf_r[i, c], None
        else:
            sev, prob = int(scores.sev_s[row, c]), scores.probs_s[row, c]
            conf, sentence = scores.conf_s[row, c], int(row - analysis.offsets[i])
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
                reason=flag_reason(
                    thr, policy.basis, scope, c, level, sev, float(prob), list(words)
                ),
                cues=list(words),
            )
        )
    return flags_of
