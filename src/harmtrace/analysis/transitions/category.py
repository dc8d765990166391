"""Does de-escalation differ between harm categories? Tests on category cells.

Cells of one record are counted as independent units here (chi-square, Fisher, risk
ratios); the same question with the record as the unit is answered in
:mod:`harmtrace.analysis.transitions.clustered`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from harmtrace.analysis.rates import rate_difference, rate_ratio
from harmtrace.stats import adjust_pvalues, chi2_independence, fisher_exact_2x2
from harmtrace.taxonomy import CATEGORIES

from .shares import with_share_ci


@dataclass(frozen=True)
class CategoryAsymmetry:
    """Result of :func:`category_asymmetry` (three tidy frames)."""

    rates: pd.DataFrame
    """Per category: ``category, k_fail, n, share, ci_lo, ci_hi`` (failure to de-escalate)."""
    omnibus: pd.DataFrame
    """One row: chi-square test of category x de-escalated, with Cramér's V and CI."""
    pairwise: pd.DataFrame
    """Per category pair: risk ratio, risk difference, odds ratio (CIs), Fisher and Holm p."""


_PAIRWISE_COLUMNS = [
    "category_a",
    "category_b",
    "k_a",
    "n_a",
    "k_b",
    "n_b",
    "risk_ratio",
    "rr_lo",
    "rr_hi",
    "risk_diff",
    "rd_lo",
    "rd_hi",
    "odds_ratio",
    "or_lo",
    "or_hi",
    "or_method",
    "pvalue",
    "p_holm",
]


def category_asymmetry(
    long: pd.DataFrame,
    categories: Sequence[str] = CATEGORIES,
    reference: str | None = None,
    alpha: float = 0.05,
    n_resamples: int = 2000,
    seed: int = 0,
) -> CategoryAsymmetry:
    """Does the difficulty of de-escalation differ between harm categories?

    Population: record x category rows with prompt severity > 0 (the only
    ones that can de-escalate). Outcome: *failure* to de-escalate (preserve or
    escalate). Omnibus: Pearson chi-square on the category x {failed,
    de-escalated} table with bias-corrected Cramér's V and a seeded bootstrap
    CI. Pairwise: for each pair (``category_a``, ``category_b``) - all pairs
    in ``categories`` order, or each category against ``reference`` - the
    risk ratio of failure a / b (adjusted-log CI, finite with zero cells), the
    Newcombe difference a - b, the odds ratio (see
    :func:`harmtrace.stats.fisher_exact_2x2` for exact vs Woolf CI) and a
    two-sided Fisher exact p-value, Holm-adjusted over the pairs (``p_holm``).
    """
    cats = list(categories)
    d = long.loc[long["category"].isin(cats) & long["transition"].notna()]
    d = d.loc[(d["prompt_sev"] > 0).fillna(False).astype(bool)]
    fail = d["transition"] != "de-escalate"
    k = {c: int(fail[d["category"] == c].sum()) for c in cats}
    n = {c: int((d["category"] == c).sum()) for c in cats}
    rates = pd.DataFrame(
        {"category": cats, "k_fail": [k[c] for c in cats], "n": [n[c] for c in cats]}
    )
    rates = with_share_ci(rates, "k_fail", "n", alpha)

    table = np.array([[k[c], n[c] - k[c]] for c in cats], dtype=float).reshape(-1, 2)
    chi = chi2_independence(table, alpha=alpha, n_resamples=n_resamples, seed=seed)
    omnibus = pd.DataFrame([{"categories": ",".join(cats), **chi.to_dict()}])

    if reference is None:
        pairs = list(combinations(cats, 2))
    else:
        if reference not in cats:
            raise ValueError(f"reference {reference!r} not among {cats}")
        pairs = [(c, reference) for c in cats if c != reference]
    rows = []
    for a, b in pairs:
        rr, rr_lo, rr_hi = rate_ratio(k[a], n[a], k[b], n[b], alpha)
        diff, d_lo, d_hi = rate_difference(k[a], n[a], k[b], n[b], alpha)
        if n[a] > 0 and n[b] > 0:
            fisher = fisher_exact_2x2([[k[a], n[a] - k[a]], [k[b], n[b] - k[b]]], alpha)
        else:
            fisher = {"odds_ratio": np.nan, "or_lo": np.nan, "or_hi": np.nan, "or_method": ""}
            fisher["pvalue"] = np.nan
        rows.append(
            {
                "category_a": a,
                "category_b": b,
                "k_a": k[a],
                "n_a": n[a],
                "k_b": k[b],
                "n_b": n[b],
                "risk_ratio": rr,
                "rr_lo": rr_lo,
                "rr_hi": rr_hi,
                "risk_diff": diff,
                "rd_lo": d_lo,
                "rd_hi": d_hi,
                **fisher,
            }
        )
    pairwise = pd.DataFrame(rows, columns=_PAIRWISE_COLUMNS[:-1])
    pairwise = pairwise.rename(columns={"pvalue": "p_fisher"})
    pairwise["p_holm"] = adjust_pvalues(pairwise["p_fisher"].to_numpy(dtype=float), "holm")
    return CategoryAsymmetry(rates=rates, omnibus=omnibus, pairwise=pairwise)
