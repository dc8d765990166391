"""From a policy simulation to LaTeX tables and paper numbers (notebook 06).

Table cells are formatted LaTeX (percentages with escaped ``%``, intervals, thousands
separators); text from data (sample labels, policy names) is escaped here, once.
Numbers are :class:`~harmtrace.report.macros.Number` values keyed by plain words, so the
macro names follow from sample, policy and quantity (see ``docs/workflow.md``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from harmtrace.analysis.transitions import OVERALL
from harmtrace.moderate.simulation import SimulationResults
from harmtrace.report.latex import write_table_tex
from harmtrace.report.macros import (
    Number,
    ci,
    count,
    escape_latex,
    fmt_ci,
    fmt_int,
    fmt_pct,
    pct,
    real,
    text,
)
from harmtrace.taxonomy import CATEGORIES, CATEGORY_TITLES


def _label(sample: str, labels: Mapping[str, str]) -> str:
    return escape_latex(labels.get(sample, sample))


def _share_ci(share: float, lo: float, hi: float) -> str:
    return f"{fmt_pct(share)} {fmt_ci(lo, hi)}" if np.isfinite(share) else "n/a"


def effects_table(effects: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Sample x policy rows (overall category): escalations before -> after, removed;
    escalations to Medium or High and the share removed; benign responses changed and
    blocked; relevance lost."""
    d = effects.loc[effects["category"] == OVERALL]
    rows = []
    for r in d.itertuples(index=False):
        rows.append(
            {
                "Sample": _label(r.sample, labels),
                "Policy": escape_latex(str(r.policy)),
                "Escalations": f"{fmt_int(r.escalations_before)} $\\to$ "
                f"{fmt_int(r.escalations_after)}",
                "Removed [95\\% CI]": _share_ci(r.removed_share, r.removed_lo, r.removed_hi),
                "To Medium+": fmt_int(r.harmful_escalations),
                "Removed (Medium+) [95\\% CI]": _share_ci(
                    r.harmful_removed_share, r.harmful_removed_lo, r.harmful_removed_hi
                ),
                "Benign changed [95\\% CI]": _share_ci(
                    r.benign_changed_share, r.benign_changed_lo, r.benign_changed_hi
                ),
                "Benign blocked": fmt_pct(r.benign_blocked_share),
                "Relevance lost [95\\% CI]": _share_ci(
                    r.relevance_lost_share, r.relevance_lost_lo, r.relevance_lost_hi
                ),
            }
        )
    return pd.DataFrame(rows)


def needs_table(
    needs: pd.DataFrame, policies: Sequence[str], labels: Mapping[str, str]
) -> pd.DataFrame:
    """Sample x category rows: escalations to Medium or High, the share of them each policy
    removes, and the least intrusive policy reaching the target."""
    rows = []
    for r in needs.to_dict("records"):
        row = {
            "Sample": _label(r["sample"], labels),
            "Category": CATEGORY_TITLES[str(r["category"])],
            "To Medium+": fmt_int(r["harmful_escalations"]),
        }
        for p in policies:
            v = r.get(f"removed_{p}", np.nan)
            row[escape_latex(p)] = fmt_pct(v) if np.isfinite(v) else "n/a"
        needed = r["needed_policy"]
        row["Needed"] = escape_latex(needed) if isinstance(needed, str) else "none"
        rows.append(row)
    return pd.DataFrame(rows)


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


def write_tables(
    res: SimulationResults,
    policies: Sequence[str],
    labels: Mapping[str, str],
    tables_dir: Path,
    producer: str,
) -> list[Path]:
    """``<producer>--effects.tex`` and ``<producer>--needs.tex`` (booktabs)."""
    frames = {
        "effects": (effects_table(res.effects, labels), "llrlrllrl"),
        "needs": (
            needs_table(res.needs, policies, labels),
            "llr" + "r" * len(policies) + "l",
        ),
    }
    paths = []
    for name, (frame, align) in frames.items():
        path = Path(tables_dir) / f"{producer}--{name}.tex"
        write_table_tex(
            frame, path, align=align, raw_columns=tuple(frame.columns), escape_header=False
        )
        paths.append(path)
    return paths


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
