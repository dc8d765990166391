"""Stage 2 of the moderation flow: policy levels and one action per response.

A response's level is the highest level any category reaches for the whole response or
for one of its sentences; the action is the policy's action for that level. Sentence
actions (redact, rewrite) change the sentences at or above the lowest level that maps to
a sentence action; when no sentence is that high (the harm is spread over the response)
the policy's ``unlocalized`` action applies instead. Everything is vectorised, so that
thresholds can be swept cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harmtrace.moderate.policies import LEVELS, SENTENCE_ACTIONS, PolicySpec
from harmtrace.moderate.response_analysis import ResponseAnalysis
from harmtrace.taxonomy import CATEGORIES

NCAT = len(CATEGORIES)


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
