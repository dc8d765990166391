"""From a policy simulation to summaries and paper numbers (notebook 06).

Numbers are :class:`~harmtrace.report.macros.Number` values keyed by plain words, so the
macro names follow from sample, policy and quantity (see ``docs/workflow.md``). The
LaTeX tables are formatted in :mod:`harmtrace.moderate.tables`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from harmtrace.analysis.transitions import OVERALL
from harmtrace.moderate.simulation import SimulationResults
from harmtrace.report.macros import Number, ci, count, pct, real, text
from harmtrace.taxonomy import CATEGORIES


def frontier_best(frontier: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per family and sample: the threshold with the fewest benign responses changed among
    those removing >= ``target`` of harmful escalations (NaN when none does), and the most
    any threshold removes."""
    rows = []
    if frontier.empty:
        return pd.DataFrame(
            columns=["family", "sample", "threshold", "benign_changed_share", "max_removed"]
        )
    for (family, sample), g in frontier.groupby(["family", "sample"], sort=True):
        ok = g.loc[g["harmful_removed_share"] >= target]
        best = ok.sort_values(["benign_changed_share", "threshold"], ascending=[True, False])
        rows.append(
            {
                "family": family,
                "sample": sample,
                "threshold": float(best["threshold"].iloc[0]) if len(best) else np.nan,
                "benign_changed_share": float(best["benign_changed_share"].iloc[0])
                if len(best)
                else np.nan,
                "max_removed": float(g["harmful_removed_share"].max()),
            }
        )
    return pd.DataFrame(rows)


def paper_numbers(res: SimulationResults, policies: Sequence[str]) -> dict[str, Number]:
    """Raw numbers keyed by plain words: per sample and policy, and per category need."""
    nums: dict[str, Number] = {
        "ci level": pct(1 - res.alpha, 0),
        "target": pct(res.target, 0),
        "policies": count(len(policies)),
    }
    d = res.effects.loc[res.effects["category"] == OVERALL]
    for r in d.itertuples(index=False):
        key = f"{r.sample} {r.policy}"
        nums[f"{r.sample} n"] = count(r.n)
        nums[f"{key} escalations before"] = count(r.escalations_before)
        nums[f"{key} escalations after"] = count(r.escalations_after)
        nums[f"{key} removed"] = pct(r.removed_share)
        nums[f"{key} removed ci"] = ci(r.removed_lo, r.removed_hi)
        nums[f"{key} harmful escalations"] = count(r.harmful_escalations)
        nums[f"{key} harmful removed"] = pct(r.harmful_removed_share)
        nums[f"{key} harmful removed ci"] = ci(r.harmful_removed_lo, r.harmful_removed_hi)
        nums[f"{key} benign changed"] = pct(r.benign_changed_share)
        nums[f"{key} benign changed ci"] = ci(r.benign_changed_lo, r.benign_changed_hi)
        nums[f"{key} benign blocked"] = pct(r.benign_blocked_share)
        nums[f"{key} relevance lost"] = pct(r.relevance_lost_share)
        nums[f"{key} relevance lost ci"] = ci(r.relevance_lost_lo, r.relevance_lost_hi)
        nums[f"{key} relevance change"] = real(r.mean_relevance_change, 2)
    nums["counted by"] = text(res.counted_by)
    nums["judge"] = text(res.judge or "none")
    if res.trigger_effects is not None:  # the trigger's own count, beside the judge's
        t = res.trigger_effects.loc[res.trigger_effects["category"] == OVERALL]
        for r in t.itertuples(index=False):
            key = f"{r.sample} {r.policy} trigger"
            nums[f"{key} escalations before"] = count(r.escalations_before)
            nums[f"{key} removed"] = pct(r.removed_share)
            nums[f"{key} harmful escalations"] = count(r.harmful_escalations)
            nums[f"{key} harmful removed"] = pct(r.harmful_removed_share)
    for r in res.needs.to_dict("records"):
        needed = r["needed_policy"]
        nums[f"{r['sample']} {r['category']} needs"] = text(
            needed if isinstance(needed, str) else "none"
        )
        nums[f"{r['sample']} {r['category']} escalations"] = count(r["escalations_before"])
        nums[f"{r['sample']} {r['category']} harmful escalations"] = count(r["harmful_escalations"])
    if not res.frontier.empty:
        nums["frontier thresholds"] = count(res.frontier["threshold"].nunique())
        for r in frontier_best(res.frontier, res.target).itertuples(index=False):
            key = f"frontier {r.family} {r.sample}"
            nums[f"{key} max removed"] = pct(r.max_removed)
            if np.isfinite(r.threshold):
                nums[f"{key} threshold"] = real(r.threshold, 2)
                nums[f"{key} benign changed"] = pct(r.benign_changed_share)
            else:
                nums[f"{key} threshold"] = text("none")
                nums[f"{key} benign changed"] = text("n/a")
    return nums


def category_summary(res: SimulationResults) -> pd.DataFrame:
    """A readable wide view for the notebook: category x policy share of harmful
    escalations removed, per sample."""
    d = res.effects.loc[res.effects["category"].astype(str).isin(CATEGORIES)]
    return d.pivot_table(
        index=["sample", "category"],
        columns="policy",
        values="harmful_removed_share",
        observed=True,
    )
