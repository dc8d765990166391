"""Chosen vs rejected responses to the same prompt, compared within pairs (HH-RLHF).

A pair is two answers to one dialogue, so the comparison is paired: per category the
response-severity difference (Wilcoxon signed-rank, with Pratt's zero handling and the
sign test as sensitivity, rank-biserial effect size) and the de-escalation difference
(Newcombe's paired interval, exact McNemar test). Pairs whose earlier turns differ are
not two answers to one prompt and are left out (:func:`paired_sample`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.stats.contingency_tables import mcnemar

from harmtrace.analysis.rates import rate_difference
from harmtrace.stats import (
    adjust_pvalues,
    newcombe_paired_diff_ci,
    paired_ordinal_tests,
    rank_biserial_paired_ci,
)
from harmtrace.taxonomy import CATEGORIES

from .frames import OVERALL, as_float, long_format
from .shares import transition_shares

HH_SIDES = ("chosen", "rejected")


@dataclass(frozen=True)
class PairedSideComparison:
    """Result of :func:`paired_side_comparison` (tidy frames)."""

    severity: pd.DataFrame
    """Per category: paired response-severity differences (chosen - rejected)."""
    deescalation: pd.DataFrame
    """Per category and population: de-escalation share by side, paired difference."""
    shares: pd.DataFrame
    """Transition shares per category and side (unpaired view, all records)."""
    sample: dict[str, int]
    """How the paired sample was formed: ``pairs_total``, ``context_differs`` (pairs whose
    earlier turns differ, excluded), ``context_differs_prompt_differs`` (of those, pairs
    whose prompt severity differs between the sides in some category), ``pairs_used``."""


def _pair_table(df: pd.DataFrame, categories: Sequence[str]) -> pd.DataFrame:
    for col in ("hh_side", "hh_pair_id"):
        if col not in df.columns:
            raise KeyError(f"paired comparison needs column {col!r}")
    sub = df.loc[df["hh_side"].isin(HH_SIDES) & df["hh_pair_id"].notna()]
    dup = sub.duplicated(["hh_pair_id", "hh_side"])
    if dup.any():
        ids = sub.loc[dup, "hh_pair_id"].unique()[:5].tolist()
        raise ValueError(f"more than one record per (hh_pair_id, hh_side), e.g. {ids}")
    long = long_format(sub, keep=["hh_pair_id", "hh_side"], dropna=False)
    long = long.loc[long["category"].isin([OVERALL, *categories])]
    cols = ["prompt_sev", "response_sev", "transition"]
    sides = [
        long.loc[long["hh_side"] == s]
        .set_index(["hh_pair_id", "category"])[cols]
        .add_suffix(f"_{s}")
        for s in HH_SIDES
    ]
    return sides[0].join(sides[1], how="inner").reset_index()


def paired_sample(df: pd.DataFrame, categories: Sequence[str] = CATEGORIES):
    """The pairs that share their dialogue up to the final response, and how many do not.

    A pair whose sides differ before the final response (``hh_context_differs``) is not
    two answers to one prompt, so it is left out of every paired comparison. Returns
    ``(pairs, sample)``: the pair table of the kept pairs and the counts of
    :attr:`PairedSideComparison.sample`.
    """
    pairs = _pair_table(df, categories)
    ids = pairs["hh_pair_id"].unique()
    differs: set = set()
    if "hh_context_differs" in df.columns:
        flag = df["hh_context_differs"].astype("boolean").fillna(False).astype(bool)
        differs = set(df.loc[flag, "hh_pair_id"]) & set(ids)
    real = pairs.loc[pairs["category"].isin(categories)]
    sev_differs = real.loc[
        as_float(real["prompt_sev_chosen"]) != as_float(real["prompt_sev_rejected"]),
        "hh_pair_id",
    ]
    sample = {
        "pairs_total": len(ids),
        "context_differs": len(differs),
        "context_differs_prompt_differs": len(differs & set(sev_differs)),
        "pairs_used": len(ids) - len(differs),
    }
    return pairs.loc[~pairs["hh_pair_id"].isin(differs)].reset_index(drop=True), sample


def _severity_row(
    cat: str, pc: pd.DataFrame, alpha: float, n_resamples: int, seed: int
) -> dict[str, object]:
    """Paired response-severity differences (chosen - rejected) of one category's pairs."""
    ch = as_float(pc["response_sev_chosen"])
    rj = as_float(pc["response_sev_rejected"])
    ok = ~(np.isnan(ch) | np.isnan(rj))
    diff = ch[ok] - rj[ok]
    m = int(diff.size)
    lower, equal, higher = int((diff < 0).sum()), int((diff == 0).sum()), int((diff > 0).sum())
    rbc, rbc_lo, rbc_hi = rank_biserial_paired_ci(diff, alpha, n_resamples, seed)
    tests = paired_ordinal_tests(diff)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "category": cat,
            "n_pairs": m,
            "n_chosen_lower": lower,
            "n_equal": equal,
            "n_chosen_higher": higher,
            "n_untied": tests.n_untied,
            "share_chosen_lower": lower / m if m else np.nan,
            "share_equal": equal / m if m else np.nan,
            "share_chosen_higher": higher / m if m else np.nan,
            "mean_diff": float(diff.mean()) if m else np.nan,
            "wilcoxon_p": tests.wilcoxon_p,
            "pratt_p": tests.pratt_p,
            "sign_p": tests.sign_p,
            "rbc": rbc,
            "rbc_lo": rbc_lo,
            "rbc_hi": rbc_hi,
        }


def _deescalation_rows(cat: str, pc: pd.DataFrame, alpha: float) -> list[dict[str, object]]:
    """De-escalation of chosen vs rejected in one category's pairs, per population."""
    tc, tr = pc["transition_chosen"], pc["transition_rejected"]
    both = (tc.notna() & tr.notna()).to_numpy()
    pos = both & (as_float(pc["prompt_sev_chosen"]) > 0) & (as_float(pc["prompt_sev_rejected"]) > 0)
    dc = (tc == "de-escalate").to_numpy()
    dr = (tr == "de-escalate").to_numpy()
    rows = []
    for population, mask in (("all", both), ("prompt_positive", pos)):
        a = int((dc & dr & mask).sum())
        b = int((dc & ~dr & mask).sum())
        c = int((~dc & dr & mask).sum())
        dd = int((~dc & ~dr & mask).sum())
        npairs = a + b + c + dd
        delta, lo, hi = newcombe_paired_diff_ci(a, b, c, dd, alpha)
        _, ilo, ihi = rate_difference(a + b, npairs, a + c, npairs, alpha)
        rows.append(
            {
                "category": cat,
                "population": population,
                "n_pairs": npairs,
                "k_chosen": a + b,
                "k_rejected": a + c,
                "share_chosen": (a + b) / npairs if npairs else np.nan,
                "share_rejected": (a + c) / npairs if npairs else np.nan,
                "diff": delta,
                "diff_lo": lo,
                "diff_hi": hi,
                "diff_lo_indep": ilo,
                "diff_hi_indep": ihi,
                "n_only_chosen": b,
                "n_only_rejected": c,
                "mcnemar_p": (
                    float(mcnemar(np.array([[a, b], [c, dd]]), exact=True).pvalue)
                    if npairs
                    else np.nan
                ),
            }
        )
    return rows


def _holm_over_categories(severity: pd.DataFrame) -> pd.DataFrame:
    """Holm-adjusted p-values over the real categories; ``overall`` gets NaN."""
    real = severity["category"] != OVERALL
    for col in ("wilcoxon_p", "pratt_p", "sign_p"):
        adj = np.full(len(severity), np.nan)
        adj[real.to_numpy()] = adjust_pvalues(severity.loc[real, col].to_numpy(dtype=float))
        severity[f"{col}_holm"] = adj
    return severity


def _side_shares(df: pd.DataFrame, cats: Sequence[str], alpha: float) -> pd.DataFrame:
    """Transition shares per category and side over all records (the unpaired view)."""
    sub = df.loc[df["hh_side"].isin(HH_SIDES)] if "hh_side" in df.columns else df.iloc[:0]
    long = long_format(sub, keep=["hh_side"])
    long = long.loc[long["category"].isin(cats)]
    return transition_shares(long, by=["category", "hh_side"], alpha=alpha)


def paired_side_comparison(
    df: pd.DataFrame,
    categories: Sequence[str] = CATEGORIES,
    alpha: float = 0.05,
    n_resamples: int = 2000,
    seed: int = 0,
) -> PairedSideComparison:
    """Chosen vs rejected hh-rlhf responses to the same prompt, compared within pairs.

    ``df`` is a judgments frame merged with ``hh_side`` and ``hh_pair_id`` (and
    ``hh_context_differs``, see :func:`paired_sample`); rows of other datasets (no
    side) are ignored; a pair counts for a category when both responses have a
    severity. ``severity`` rows ("overall" first, then ``categories``): ``n_pairs``,
    counts and shares of pairs where chosen is lower / equal / higher, ``mean_diff``
    (chosen - rejected), ``n_untied`` (pairs with a non-zero difference), the Wilcoxon
    signed-rank p with zeros dropped (primary), with Pratt's zero handling and the
    exact sign test (sensitivity), matched-pairs rank-biserial (negative = chosen
    safer) with seeded bootstrap CI, and Holm-adjusted p-values over the real
    categories (``overall`` is a separate primary test and gets NaN there).
    ``deescalation`` rows, for population "all" and "prompt_positive" (both sides'
    prompts > 0): de-escalation share of each side, their difference with Newcombe's
    paired score CI (primary) and, for reference, the independent-samples Newcombe CI,
    and the exact McNemar p-value (statsmodels).
    """
    cats = [OVERALL, *categories]
    pairs, sample = paired_sample(df, categories)
    sev_rows, de_rows = [], []
    for cat in cats:
        pc = pairs.loc[pairs["category"] == cat]
        sev_rows.append(_severity_row(cat, pc, alpha, n_resamples, seed))
        de_rows.extend(_deescalation_rows(cat, pc, alpha))
    severity = _holm_over_categories(pd.DataFrame(sev_rows))
    return PairedSideComparison(
        severity=severity,
        deescalation=pd.DataFrame(de_rows),
        shares=_side_shares(df, cats, alpha),
        sample=sample,
    )
