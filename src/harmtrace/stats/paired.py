"""Paired comparisons of ordinal scores (e.g. two responses to the same prompt).

The hh-rlhf "chosen" and "rejected" responses share a prompt, so their
severities are compared within pairs: the sign test and the Wilcoxon
signed-rank test on the differences, the matched-pairs rank-biserial
correlation as effect size, and an exact McNemar test for binary outcomes.
Zero differences are discarded (Wilcoxon's convention), consistently in the
tests and the effect size.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from .bootstrap import percentile_interval, resample_counts

__all__ = [
    "mcnemar_exact",
    "rank_biserial_paired",
    "rank_biserial_paired_ci",
    "sign_test",
    "wilcoxon_signed_rank",
]


def _diffs(d: ArrayLike) -> np.ndarray:
    arr = np.asarray(d, dtype=float).ravel()
    return arr[~np.isnan(arr)]


def sign_test(d: ArrayLike) -> dict[str, float]:
    """Exact two-sided sign test on paired differences ``d`` (zeros dropped).

    Keys: ``n_pos``, ``n_neg``, ``n_zero``, ``pvalue`` (binomial, p = 1/2;
    1.0 when every difference is zero).
    """
    x = _diffs(d)
    n_pos, n_neg = int(np.sum(x > 0)), int(np.sum(x < 0))
    n_zero = int(x.size - n_pos - n_neg)
    p = 1.0 if n_pos + n_neg == 0 else float(stats.binomtest(n_pos, n_pos + n_neg).pvalue)
    return {"n_pos": n_pos, "n_neg": n_neg, "n_zero": n_zero, "pvalue": p}


def wilcoxon_signed_rank(d: ArrayLike) -> dict[str, float]:
    """Two-sided Wilcoxon signed-rank test on differences ``d``.

    Zeros dropped (``zero_method="wilcox"``), no continuity correction;
    scipy's ``method="auto"`` picks the exact null without ties, an exhaustive
    permutation null for small tied samples and the normal approximation
    (tie-corrected variance) otherwise, all deterministic. Keys:
    ``statistic`` (scipy's min(R+, R-)), ``pvalue``, ``n_nonzero``. NaN/1.0
    when no difference is non-zero.
    """
    x = _diffs(d)
    nz = x[x != 0]
    if nz.size == 0:
        return {"statistic": np.nan, "pvalue": 1.0 if x.size else np.nan, "n_nonzero": 0}
    res = stats.wilcoxon(nz, zero_method="wilcox", correction=False, method="auto")
    return {"statistic": float(res.statistic), "pvalue": float(res.pvalue), "n_nonzero": nz.size}


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


def mcnemar_exact(b: int, c: int) -> float:
    """Exact McNemar test p-value from the discordant counts ``b`` and ``c``.

    A binomial test of ``b`` successes in ``b + c`` trials at 1/2 (two-sided),
    as in ``statsmodels`` ``mcnemar(exact=True)``; 1.0 when there is no
    discordant pair.
    """
    if b < 0 or c < 0:
        raise ValueError("counts must be non-negative")
    if b + c == 0:
        return 1.0
    return float(stats.binomtest(int(b), int(b + c)).pvalue)
