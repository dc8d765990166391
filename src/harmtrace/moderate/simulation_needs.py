"""Which policy each category needs: the least intrusive one that reaches a target.

Policies are ranked by their cost (benign responses changed, then relevance lost, pooled
over samples), and per sample and category the cheapest policy removing at least the
target share of the category's harmful escalations is named.
"""

from __future__ import annotations

import pandas as pd

from harmtrace.analysis.transitions import OVERALL
from harmtrace.taxonomy import CATEGORIES


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
