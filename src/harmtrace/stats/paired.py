"""Paired comparisons: two responses to the same prompt, or two judgments of one text.

What libraries lack is kept here. Newcombe's score interval for a difference of
*paired* proportions (Newcombe 1998, Stat Med 17:2635, method 10) is in neither
statsmodels nor scipy (both have the independent-samples version only). The
matched-pairs rank-biserial correlation (Kerby 2014) is computed from the counts of
each distinct difference, so its bootstrap costs O(distinct values) per replicate.
:func:`paired_ordinal_tests` bundles scipy's Wilcoxon signed-rank test under both zero
conventions with the exact sign test, so a report can show how much the conclusion
depends on the handling of ties (ordinal severities produce many zero differences).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from .bootstrap import percentile_interval, resample_counts

__all__ = [
    "PairedOrdinalTests",
    "newcombe_paired_diff_ci",
    "paired_ordinal_tests",
    "rank_biserial_paired",
    "rank_biserial_paired_ci",
]


def _diffs(d: ArrayLike) -> np.ndarray:
    arr = np.asarray(d, dtype=float).ravel()
    return arr[~np.isnan(arr)]


@dataclass(frozen=True)
class PairedOrdinalTests:
    """Tests of "no shift" on paired differences, under three treatments of zeros.

    ``wilcoxon_p``: signed-rank test with zero differences discarded (Wilcoxon's
    convention); ``pratt_p``: zeros kept in the ranking, then their ranks dropped
    (Pratt 1959), which is more conservative when many pairs tie; ``sign_p``: exact
    two-sided binomial test of positive vs negative signs (zeros discarded).
    ``n_untied`` is the number of non-zero differences that all three rest on.
    """

    n_pairs: int
    n_untied: int
    n_pos: int
    n_neg: int
    wilcoxon_p: float
    pratt_p: float
    sign_p: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def paired_ordinal_tests(d: ArrayLike) -> PairedOrdinalTests:
    """Wilcoxon (zeros dropped), Wilcoxon-Pratt and sign test on differences ``d``.

    scipy's ``wilcoxon`` with ``method="auto"`` (exact null without ties, normal
    approximation with tie-corrected variance otherwise; no continuity correction)
    and ``binomtest``. NaN p-values when there are no pairs, 1.0 when every pair ties.
    """
    x = _diffs(d)
    n_pos, n_neg = int(np.sum(x > 0)), int(np.sum(x < 0))
    untied = n_pos + n_neg
    if x.size == 0 or untied == 0:
        p = np.nan if x.size == 0 else 1.0
        return PairedOrdinalTests(int(x.size), untied, n_pos, n_neg, p, p, p)
    wil = stats.wilcoxon(x[x != 0], zero_method="wilcox", correction=False, method="auto")
    # Pratt needs the zeros; scipy refuses the exact null with zeros, so use "approx"
    # whenever any pair ties (as scipy's "auto" would).
    pratt_method = "approx" if untied < x.size else "auto"
    pratt = stats.wilcoxon(x, zero_method="pratt", correction=False, method=pratt_method)
    sign = stats.binomtest(n_pos, untied)
    return PairedOrdinalTests(
        n_pairs=int(x.size),
        n_untied=untied,
        n_pos=n_pos,
        n_neg=n_neg,
        wilcoxon_p=float(wil.pvalue),
        pratt_p=float(pratt.pvalue),
        sign_p=float(sign.pvalue),
    )


def _rbc_from_value_counts(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Matched-pairs rank-biserial for a stack of count vectors over fixed ``values``.

    ``counts`` has shape ``(B, len(values))``. Midranks of |d| are computed
    from the counts of each absolute value, so this equals ranking the
    expanded data but costs O(distinct values) per row.
    """
    values = np.asarray(values, dtype=float)
    counts = np.atleast_2d(np.asarray(counts, dtype=float))
    keep = values != 0
    values, counts = values[keep], counts[:, keep]
    absv = np.abs(values)
    levels = np.unique(absv)
    # counts per absolute level, per replicate
    level_counts = np.stack([counts[:, absv == lv].sum(axis=1) for lv in levels], axis=1)
    below = np.cumsum(level_counts, axis=1) - level_counts
    midrank = below + (level_counts + 1.0) / 2.0  # (B, L)
    rank_of_value = midrank[:, np.searchsorted(levels, absv)]  # (B, V)
    signed = np.where(values > 0, 1.0, -1.0)
    total = (counts * rank_of_value).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (counts * rank_of_value * signed).sum(axis=1) / total


def rank_biserial_paired(d: ArrayLike) -> float:
    """Matched-pairs rank-biserial correlation (Kerby 2014) of differences ``d``.

    ``(R+ - R-) / (R+ + R-)`` with midranks of |d| over non-zero differences:
    +1 when every non-zero difference is positive, -1 when all are negative.
    Equals pingouin's ``wilcoxon(x, y)["RBC"]`` for ``d = x - y``. NaN when no
    difference is non-zero.
    """
    x = _diffs(d)
    x = x[x != 0]
    if x.size == 0:
        return np.nan
    vals, cnt = np.unique(x, return_counts=True)
    return float(_rbc_from_value_counts(vals, cnt[None, :])[0])


def rank_biserial_paired_ci(
    d: ArrayLike, alpha: float = 0.05, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Rank-biserial with a seeded percentile bootstrap interval over pairs.

    All pairs (including zero differences) are resampled with replacement, so
    the interval reflects the uncertainty in the share of ties too; as the
    differences are ordinal with few distinct values, resampling is done as a
    multinomial draw on the counts of each distinct difference (identical in
    distribution to resampling pairs, and fast for large n). Replicates with
    no non-zero difference are dropped. Returns ``(rbc, lo, hi)``.
    """
    x = _diffs(d)
    est = rank_biserial_paired(x)
    if np.isnan(est):
        return (np.nan, np.nan, np.nan)
    vals, cnt = np.unique(x, return_counts=True)
    draws = resample_counts(cnt, n_resamples, seed)
    reps = _rbc_from_value_counts(vals, draws)
    return (est, *percentile_interval(reps, alpha))


def newcombe_paired_diff_ci(a: int, b: int, c: int, d: int, alpha: float = 0.05):
    """Newcombe (1998) score interval for a difference of *paired* proportions.

    The paired 2x2 table is ``[[a, b], [c, d]]`` (rows: first condition
    yes/no, columns: second condition yes/no); the difference is
    ``(a + b)/N - (a + c)/N``. Method 10 of Newcombe, Stat Med 17:2635: the
    square-and-add of the marginal Wilson limits, corrected for the
    within-pair correlation ``phi`` (with its continuity adjustment). Use it
    instead of the independent-samples interval (statsmodels
    ``confint_proportions_2indep(method="newcomb")``) when both proportions are
    measured on the same units. Returns ``(diff, lo, hi)``; NaN if ``N == 0``.
    """
    a, b, c, d = (float(x) for x in (a, b, c, d))
    if min(a, b, c, d) < 0:
        raise ValueError("cell counts must be non-negative")
    n = a + b + c + d
    if n == 0:
        return (np.nan, np.nan, np.nan)
    (l1, u1) = (float(x) for x in proportion_confint(a + b, n, alpha=alpha, method="wilson"))
    (l2, u2) = (float(x) for x in proportion_confint(a + c, n, alpha=alpha, method="wilson"))
    p1, p2 = (a + b) / n, (a + c) / n
    diff = p1 - p2
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    cross = a * d - b * c
    if margins == 0:
        phi = 0.0
    else:
        if cross > n / 2:
            num = cross - n / 2
        elif cross < 0:
            num = cross
        else:
            num = 0.0
        phi = num / np.sqrt(margins)
    dl = np.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    du = np.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    return (float(diff), float(max(diff - dl, -1.0)), float(min(diff + du, 1.0)))
