"""The transition strand (notebook 01) in paper form: booktabs tables of shares, category
asymmetry and the paired HH-RLHF comparison.

:mod:`harmtrace.analysis.transition_report` computes; this module only formats, so every
rule about how a cell reads lives in one tested place. Cells are formatted LaTeX already
(written raw); labels from data or config are escaped once, by
:func:`harmtrace.report.latex.to_booktabs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from harmtrace.analysis.transition_report import TransitionResults
from harmtrace.analysis.transitions import CategoryAsymmetry, PairedSideComparison
from harmtrace.report.latex import file_stem, points, write_table_tex
from harmtrace.report.macros import fmt_ci, fmt_int, fmt_num, fmt_p, fmt_pct
from harmtrace.taxonomy import CATEGORY_TITLES, TRANSITIONS


def _cell(share: float, lo: float, hi: float) -> str:
    return f"{fmt_pct(share)} {fmt_ci(lo, hi)}"


def shares_table(shares: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Sample x category rows, one 'share [95% CI]' column per transition, plus n."""
    rows = []
    for (sample, category), g in shares.groupby(["sample", "category"], observed=True, sort=True):
        g = g.set_index("transition")
        row = {
            "Sample": labels.get(sample, sample),
            "Category": CATEGORY_TITLES.get(str(category), str(category).capitalize()),
            "n": fmt_int(int(g["n"].iloc[0])),
        }
        for t in TRANSITIONS:
            row[t.capitalize()] = _cell(g.at[t, "share"], g.at[t, "ci_lo"], g.at[t, "ci_hi"])
        rows.append(row)
    return pd.DataFrame(rows)


def asymmetry_table(asym: CategoryAsymmetry) -> pd.DataFrame:
    """Pairwise failure-to-de-escalate risk ratios with Holm-adjusted Fisher p-values."""
    p = asym.pairwise
    return pd.DataFrame(
        {
            "Comparison": [
                f"{CATEGORY_TITLES[a]} / {CATEGORY_TITLES[b]}"
                for a, b in zip(p["category_a"], p["category_b"], strict=True)
            ],
            "Failures (a)": [
                f"{fmt_int(k)}/{fmt_int(n)}" for k, n in zip(p["k_a"], p["n_a"], strict=True)
            ],
            "Failures (b)": [
                f"{fmt_int(k)}/{fmt_int(n)}" for k, n in zip(p["k_b"], p["n_b"], strict=True)
            ],
            "Risk ratio [95% CI]": [
                f"{fmt_num(r)} [{fmt_num(lo)}, {fmt_num(hi)}]"
                for r, lo, hi in zip(p["risk_ratio"], p["rr_lo"], p["rr_hi"], strict=True)
            ],
            "Holm p": [fmt_p(x) for x in p["p_holm"]],
        }
    )


def paired_table(paired: PairedSideComparison) -> pd.DataFrame:
    """Paired severity differences per category, under three treatments of tied pairs."""
    s = paired.severity
    return pd.DataFrame(
        {
            "Category": [CATEGORY_TITLES.get(c, c.capitalize()) for c in s["category"]],
            "Pairs": [fmt_int(n) for n in s["n_pairs"]],
            "Untied": [fmt_int(n) for n in s["n_untied"]],
            "Chosen lower": [fmt_pct(x) for x in s["share_chosen_lower"]],
            "Equal": [fmt_pct(x) for x in s["share_equal"]],
            "Chosen higher": [fmt_pct(x) for x in s["share_chosen_higher"]],
            "Rank-biserial [95% CI]": [
                f"{fmt_num(r)} [{fmt_num(lo)}, {fmt_num(hi)}]"
                for r, lo, hi in zip(s["rbc"], s["rbc_lo"], s["rbc_hi"], strict=True)
            ],
            "Wilcoxon p": [fmt_p(x) for x in s["wilcoxon_p"]],
            "Pratt p": [fmt_p(x) for x in s["pratt_p"]],
            "Sign p": [fmt_p(x) for x in s["sign_p"]],
            "Holm p": [fmt_p(x) if pd.notna(x) else "" for x in s["wilcoxon_p_holm"]],
        }
    )


def paired_deescalation_table(paired: PairedSideComparison) -> pd.DataFrame:
    """Per category: de-escalation of chosen vs rejected among pairs with non-zero prompts."""
    d = paired.deescalation
    d = d.loc[d["population"] == "prompt_positive"]
    return pd.DataFrame(
        {
            "Category": [CATEGORY_TITLES.get(c, c.capitalize()) for c in d["category"]],
            "Pairs": [fmt_int(n) for n in d["n_pairs"]],
            "Chosen": [fmt_pct(x) for x in d["share_chosen"]],
            "Rejected": [fmt_pct(x) for x in d["share_rejected"]],
            "Difference, pp [95% CI]": [
                f"{points(x)} [{points(lo)}, {points(hi)}]" if n else "n/a"
                for x, lo, hi, n in zip(
                    d["diff"], d["diff_lo"], d["diff_hi"], d["n_pairs"], strict=True
                )
            ],
            "McNemar p": [fmt_p(x) for x in d["mcnemar_p"]],
        }
    )


def write_transition_tables(
    res: TransitionResults, labels: Mapping[str, str], tables_dir: Path, producer: str
) -> list[Path]:
    """Every transition table as booktabs LaTeX.

    Formatted numbers are LaTeX already (``raw``); labels that come from data or config
    (sample names, their display labels) are escaped by the writer, and a sample's name
    enters a file name only through :func:`harmtrace.report.latex.file_stem`.
    """
    share_raw = ("n", *(t.capitalize() for t in TRANSITIONS))
    frames = {
        "shares": (shares_table(res.shares, labels), "llrlll", share_raw),
        "shares_prompt_positive": (shares_table(res.shares_positive, labels), "llrlll", share_raw),
    }
    asym_raw = ("Failures (a)", "Failures (b)", "Risk ratio [95% CI]", "Holm p")
    for sample, asym in res.asymmetry.items():
        frames[f"asymmetry_{file_stem(sample)}"] = (asymmetry_table(asym), "lrrll", asym_raw)
    if res.paired is not None:
        pt = paired_table(res.paired)
        frames["paired_hh"] = (pt, "lrrrrrlllll", tuple(pt.columns[1:]))
        dt = paired_deescalation_table(res.paired)
        frames["paired_hh_deescalation"] = (dt, "lrrrll", tuple(dt.columns[1:]))
    paths = []
    for name, (frame, align, raw) in frames.items():
        path = tables_dir / f"{producer}--{name}.tex"
        write_table_tex(frame, path, align=align, raw_columns=raw)
        paths.append(path)
    return paths
