"""The moderation-policy strand (notebook 06) in paper form: booktabs tables of policy
effects and of the least intrusive policy each category needs.

:mod:`harmtrace.moderate.simulation` and :mod:`harmtrace.moderate.simulation_report`
compute; this module only formats. Every cell and header is written raw, so text from
data (sample labels, policy names) is escaped here, once, with
:func:`harmtrace.report.latex.escape`; numbers are formatted LaTeX (percentages with
escaped ``%``, intervals, thousands separators).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from harmtrace.analysis.transitions import OVERALL
from harmtrace.moderate.simulation import SimulationResults
from harmtrace.report.latex import escape, stack, to_booktabs, wrap
from harmtrace.report.macros import fmt_ci, fmt_int, fmt_pct
from harmtrace.taxonomy import CATEGORY_TITLES


def _label(sample: str, labels: Mapping[str, str]) -> str:
    return escape(labels.get(sample, sample))


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
                "Policy": escape(str(r.policy)),
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
            row[escape(p)] = fmt_pct(v) if np.isfinite(v) else "n/a"
        needed = r["needed_policy"]
        row["Needed"] = escape(needed) if isinstance(needed, str) else "none"
        rows.append(row)
    return pd.DataFrame(rows)


NAME_WIDTH = 16
"""Characters per line of a policy name in a cell or header; a longer name breaks after
an underscore (``redact\\_medium\\_`` over ``block\\_high``)."""

EFFECTS_HEADERS = {
    "Removed [95\\% CI]": stack("Removed", "[95\\% CI]"),
    "To Medium+": stack("To", "Medium+"),
    "Removed (Medium+) [95\\% CI]": stack("Removed", "(Medium+)", "[95\\% CI]"),
    "Benign changed [95\\% CI]": stack("Benign", "changed", "[95\\% CI]"),
    "Benign blocked": stack("Benign", "blocked"),
    "Relevance lost [95\\% CI]": stack("Relevance", "lost", "[95\\% CI]"),
}
"""The effects table's headers on two or three lines: the same words, narrower columns."""


def effects_tex(frame: pd.DataFrame) -> str:
    """The effects table laid out to fit the text width at ``\\small``: one block per
    sample (its label written once, above its rows), stacked headers, each interval under
    its share, long policy names broken after an underscore, narrower column gaps."""
    return to_booktabs(
        frame,
        align="lrlrllrl",
        raw_columns=tuple(frame.columns),
        headers=EFFECTS_HEADERS,
        group_by="Sample",
        ci_columns=tuple(c for c in frame.columns if c.endswith("[95\\% CI]")),
        wrap_columns={"Policy": NAME_WIDTH},
        tabcolsep="4pt",
    )


def needs_tex(frame: pd.DataFrame, policies: Sequence[str]) -> str:
    """The needs table laid out to fit at ``\\small``: one block per sample, the policy
    headers and ``To Medium+`` on two lines."""
    heads = {escape(p): wrap(escape(p), NAME_WIDTH, align="c", top=False) for p in policies}
    heads["To Medium+"] = stack("To", "Medium+")
    return to_booktabs(
        frame,
        align="lr" + "r" * len(policies) + "l",
        raw_columns=tuple(frame.columns),
        headers=heads,
        group_by="Sample",
    )


def write_moderation_tables(
    res: SimulationResults,
    policies: Sequence[str],
    labels: Mapping[str, str],
    tables_dir: Path,
    producer: str,
) -> list[Path]:
    """``<producer>--effects.tex`` and ``<producer>--needs.tex`` (booktabs)."""
    texts = {
        "effects": effects_tex(effects_table(res.effects, labels)),
        "needs": needs_tex(needs_table(res.needs, policies, labels), policies),
    }
    paths = []
    Path(tables_dir).mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        path = Path(tables_dir) / f"{producer}--{name}.tex"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
