"""The threshold frontier: escalations removed against benign responses changed.

One probability threshold is swept for a family of one-level policies (``block`` or
``redact`` when any category reaches it), and each point is counted on the overall
category, per sample, by the judge when there is one.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from harmtrace.analysis.transitions import OVERALL
from harmtrace.moderate.backends import Scorer
from harmtrace.moderate.judge import Judge
from harmtrace.moderate.policies import PolicySpec, validate_policy
from harmtrace.moderate.response_analysis import ResponseAnalysis
from harmtrace.moderate.simulation_effects import policy_effects
from harmtrace.moderate.simulation_outcomes import apply_policy, long_outcomes


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
