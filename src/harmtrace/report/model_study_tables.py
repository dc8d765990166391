"""LaTeX tables of the model-study section (notebook 07): transitions per category and
condition, refusal by prompt kind, and the paired comparison of the two conditions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harmtrace.report.latex import points, write_tables
from harmtrace.report.macros import fmt_ci, fmt_int, fmt_num, fmt_p, fmt_pct

CATEGORY_NAMES = {
    "hate": "Hate",
    "sexual": "Sexual",
    "violence": "Violence",
    "self_harm": "Self-harm",
    "overall": "Overall",
}


def transitions_table(transitions: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    """One row per condition x prompt kind x category: n and the three shares."""
    rows = []
    t = transitions.set_index(["target", "kind", "category", "transition"])
    for target in conditions:
        for kind in ("harmful", "benign"):
            for cat, label in CATEGORY_NAMES.items():
                if (target, kind, cat, "escalate") not in t.index:
                    continue
                g = t.loc[(target, kind, cat)]
                rows.append(
                    {
                        "Condition": target,
                        "Prompts": kind,
                        "Category": label,
                        "n": fmt_int(int(g["n"].iloc[0])),
                        "De-esc.": fmt_pct(g.loc["de-escalate", "share"]),
                        "Preserve": fmt_pct(g.loc["preserve", "share"]),
                        "Escalate": fmt_pct(g.loc["escalate", "share"]),
                        "Escalate CI": fmt_ci(
                            g.loc["escalate", "ci_lo"], g.loc["escalate", "ci_hi"]
                        ),
                    }
                )
    return pd.DataFrame(rows)


def refusal_table(refusal: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Condition": refusal["target"],
            "Prompts": refusal["kind"],
            "n": [fmt_int(n) for n in refusal["n"]],
            "Refused": [fmt_pct(s) for s in refusal["share"]],
            "CI": [
                fmt_ci(lo, hi) for lo, hi in zip(refusal["ci_lo"], refusal["ci_hi"], strict=True)
            ],
        }
    )


def paired_table(paired: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Outcome": paired["meaning"],
            "Pairs": [fmt_int(n) for n in paired["n"]],
            "Base only": [fmt_int(b) for b in paired["b"]],
            "Treat. only": [fmt_int(c) for c in paired["c"]],
            "Diff. (pp)": [points(d) for d in paired["diff"]],
            "CI (pp)": [
                f"[{points(lo)}, {points(hi)}]"
                for lo, hi in zip(paired["diff_lo"], paired["diff_hi"], strict=True)
            ],
            "OR": [fmt_num(o) for o in paired["odds_ratio"]],
            "Holm p": [fmt_p(p) for p in paired["p_holm"]],
        }
    )


def write_study_tables(study, tables_dir: Path, producer: str) -> list[Path]:
    """Booktabs tables, one file each, named for their producer."""
    frames = {
        "transitions": (
            transitions_table(study.transitions, list(study.conditions)),
            ("n", "De-esc.", "Preserve", "Escalate", "Escalate CI"),
            "lllrrrrl",
        ),
        "refusal": (refusal_table(study.refusal), ("n", "Refused", "CI"), "llrrl"),
        "paired": (
            paired_table(study.paired),
            ("Pairs", "Base only", "Treat. only", "Diff. (pp)", "CI (pp)", "OR", "Holm p"),
            "p{5.2cm}rrrrlrr",
        ),
    }
    return write_tables(frames, tables_dir, producer)
