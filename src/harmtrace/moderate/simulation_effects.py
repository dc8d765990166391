"""Counting what a policy changed: escalations removed, benign responses changed, relevance lost.

Shares come with Wilson intervals (statsmodels); the definitions are those of
:mod:`harmtrace.moderate.simulation`. Transition shares before and after each policy are
counted with the same code as the transitions analysis.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from harmtrace.analysis.transitions import transition_shares
from harmtrace.proportions import wilson_interval

STAGES: tuple[str, ...] = ("before", "after")


def _rate(k: np.ndarray, n: np.ndarray, alpha: float) -> tuple[np.ndarray, ...]:
    """Share with the project's Wilson interval; NaN where there is nothing to count."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    share = np.divide(k, n, out=np.full(len(k), np.nan), where=n > 0)
    lo, hi = wilson_interval(k, n, alpha)
    return share, lo, hi


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
