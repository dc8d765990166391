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
from harmtrace.report.latex import file_stem, points, stack, to_booktabs
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


PAIRED_HEADERS = {
    "Chosen lower": stack("Chosen", "lower"),
    "Chosen higher": stack("Chosen", "higher"),
    "Rank-biserial [95% CI]": stack("Rank-biserial", r"[95\% CI]"),
    "Wilcoxon p": stack("Wilcoxon", "p"),
    "Pratt p": stack("Pratt", "p"),
    "Sign p": stack("Sign", "p"),
    "Holm p": stack("Holm", "p"),
}
"""Two-line headers of the paired table: the same words, so eleven columns fit the page."""


def shares_tex(frame: pd.DataFrame) -> str:
    """The shares table, one block per sample (its label written once, above its rows), so
    the five columns of a row fit the text width at ``\\small``."""
    raw = ("n", *(t.capitalize() for t in TRANSITIONS))
    return to_booktabs(frame, align="lrlll", raw_columns=raw, group_by="Sample")


def paired_tex(frame: pd.DataFrame) -> str:
    """The paired severity table: two-line headers, the rank-biserial interval under its
    estimate and narrower column gaps, so its eleven columns fit at ``\\small``."""
    return to_booktabs(
        frame,
        align="lrrrrrlllll",
        raw_columns=tuple(frame.columns[1:]),
        headers=PAIRED_HEADERS,
        ci_columns=("Rank-biserial [95% CI]",),
        tabcolsep="4pt",
    )


def write_transition_tables(
    res: TransitionResults, labels: Mapping[str, str], tables_dir: Path, producer: str
) -> list[Path]:
    """Every transition table as booktabs LaTeX, laid out to fit the text width.

    Formatted numbers are LaTeX already (``raw``); labels that come from data or config
    (sample names, their display labels) are escaped by the writer, and a sample's name
    enters a file name only through :func:`harmtrace.report.latex.file_stem`.
    """
    texts = {
        "shares": shares_tex(shares_table(res.shares, labels)),
        "shares_prompt_positive": shares_tex(shares_table(res.shares_positive, labels)),
    }
    asym_raw = ("Failures (a)", "Failures (b)", "Risk ratio [95% CI]", "Holm p")
    for sample, asym in res.asymmetry.items():
        texts[f"asymmetry_{file_stem(sample)}"] = to_booktabs(
            asymmetry_table(asym), align="lrrll", raw_columns=asym_raw
        )
    if res.paired is not None:
        texts["paired_hh"] = paired_tex(paired_table(res.paired))
        dt = paired_deescalation_table(res.paired)
        texts["paired_hh_deescalation"] = to_booktabs(
            dt, align="lrrrll", raw_columns=tuple(dt.columns[1:])
        )
    paths = []
    tables_dir.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        path = tables_dir / f"{producer}--{name}.tex"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
