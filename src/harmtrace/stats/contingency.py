"""Tests and effect sizes for independent groups in contingency tables.

Used to ask whether transition outcomes differ between harm categories: an
omnibus chi-square with Cramér's V, then pairwise 2x2 comparisons (Fisher
exact, two-proportion z) whose p-values are adjusted with :func:`adjust_pvalues`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats
from statsmodels.stats.multitest import multipletests

from .bootstrap import percentile_interval, resample_counts

__all__ = [
    "Chi2Result",
    "adjust_pvalues",
    "chi2_independence",
    "cramers_v",
    "cramers_v_ci",
    "fisher_exact_2x2",
    "two_proportion_ztest",
]


def _table(table: ArrayLike) -> np.ndarray:
    t = np.asarray(table, dtype=float)
    if t.ndim != 2:
        raise ValueError("expected a 2-D contingency table")
    if np.any(t < 0) or np.any(np.isnan(t)):
        raise ValueError("table entries must be non-negative counts")
    return t


def _drop_empty(t: np.ndarray) -> np.ndarray:
    """Remove all-zero rows/columns: they carry no information and break expected counts."""
    return t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]


def cramers_v(table: ArrayLike, bias_correction: bool = True) -> float:
    """Cramér's V of an r x c table (empty rows/columns ignored).

    With ``bias_correction`` the Bergsma (2013) estimator is used: plain V is
    biased upwards in small or sparse tables (it is positive even under
    independence), the corrected phi^2 and table dimensions remove most of
    that bias. NaN when fewer than two non-empty rows or columns remain.
    """
    t = _drop_empty(_table(table))
    return float(_v_from_tables(t[None, :, :], bias_correction)[0])


def _v_from_tables(tables: np.ndarray, bias_correction: bool) -> np.ndarray:
    """Vectorised V over a stack of equally shaped tables ``(B, r, c)``."""
    r, c = tables.shape[1:]
    n = tables.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = (
            tables.sum(axis=2)[:, :, None] * tables.sum(axis=1)[:, None, :] / n[:, None, None]
        )
        terms = np.where(expected > 0, (tables - expected) ** 2 / expected, 0.0)
        chi2 = terms.sum(axis=(1, 2))
        phi2 = chi2 / n
        if not bias_correction:
            v = np.sqrt(phi2 / (min(r, c) - 1))
        else:
            phi2c = np.maximum(0.0, phi2 - (r - 1) * (c - 1) / (n - 1))
            rc = r - (r - 1) ** 2 / (n - 1)
            cc = c - (c - 1) ** 2 / (n - 1)
            v = np.sqrt(phi2c / (np.minimum(rc, cc) - 1))
    # A resampled table can lose a row/column entirely: V is then undefined.
    degenerate = (tables.sum(axis=2) == 0).any(axis=1) | (tables.sum(axis=1) == 0).any(axis=1)
    v = np.where(degenerate | (min(r, c) < 2), np.nan, v)
    return v


def cramers_v_ci(
    table: ArrayLike,
    alpha: float = 0.05,
    bias_correction: bool = True,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Cramér's V with a seeded percentile bootstrap interval.

    Replicates resample the ``N`` classified units with replacement (a
    multinomial draw on the observed cell shares); replicates that lose a
    whole row or column are dropped. V is bounded below by 0, so near
    independence the lower limit sits at or near 0 and the interval should be
    read with the chi-square p-value. Returns ``(v, lo, hi)``.
    """
    t = _drop_empty(_table(table))
    v = float(_v_from_tables(t[None], bias_correction)[0])
    if np.isnan(v):
        return (np.nan, np.nan, np.nan)
    draws = resample_counts(t, n_resamples, seed).reshape(n_resamples, *t.shape)
    reps = _v_from_tables(draws.astype(float), bias_correction)
    return (v, *percentile_interval(reps, alpha))


@dataclass(frozen=True)
class Chi2Result:
    """Pearson chi-square test of independence with its effect size."""

    statistic: float
    dof: int
    pvalue: float
    n: int
    min_expected: float
    cramers_v: float
    cramers_v_lo: float
    cramers_v_hi: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def chi2_independence(
    table: ArrayLike,
    alpha: float = 0.05,
    bias_correction: bool = True,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Chi2Result:
    """Pearson chi-square test of independence (no Yates correction) plus Cramér's V.

    All-zero rows/columns are dropped first. ``min_expected`` is reported so a
    reader can judge the asymptotic approximation (rule of thumb: >= 5; for a
    2x2 table prefer :func:`fisher_exact_2x2`). Returns NaNs when fewer than
    two non-empty rows or columns remain.
    """
    t = _drop_empty(_table(table))
    n = round(t.sum())
    if t.ndim != 2 or min(t.shape) < 2:
        return Chi2Result(np.nan, 0, np.nan, n, np.nan, np.nan, np.nan, np.nan)
    res = stats.chi2_contingency(t, correction=False)
    v, lo, hi = cramers_v_ci(t, alpha, bias_correction, n_resamples, seed)
    return Chi2Result(
        statistic=float(res.statistic),
        dof=int(res.dof),
        pvalue=float(res.pvalue),
        n=n,
        min_expected=float(np.min(res.expected_freq)),
        cramers_v=v,
        cramers_v_lo=lo,
        cramers_v_hi=hi,
    )


def fisher_exact_2x2(
    table: ArrayLike, alpha: float = 0.05, exact_ci_max_n: int = 1000
) -> dict[str, float]:
    """Two-sided Fisher exact test on a 2x2 table, with an odds ratio and CI.

    Up to ``exact_ci_max_n`` units the conditional MLE odds ratio and its exact
    conditional interval are reported (``scipy.stats.contingency.odds_ratio``),
    consistent with the test. Beyond that the exact interval's root search
    becomes slow (seconds to minutes) while adding nothing, so the sample odds
    ratio with the Woolf (logit) interval is used; ``or_method`` says which.
    Keys: ``odds_ratio``, ``or_lo``, ``or_hi``, ``or_method``, ``pvalue``.
    Degenerate tables (an empty row or column) give ``pvalue == 1`` and NaN
    odds ratio.
    """
    t = _table(table)
    if t.shape != (2, 2):
        raise ValueError("fisher_exact_2x2 needs a 2x2 table")
    ti = np.rint(t).astype(np.int64)
    p = float(stats.fisher_exact(ti).pvalue)
    kind = "conditional" if ti.sum() <= exact_ci_max_n else "sample"
    out = {"odds_ratio": np.nan, "or_lo": np.nan, "or_hi": np.nan, "or_method": kind}
    if (ti.sum(axis=0) == 0).any() or (ti.sum(axis=1) == 0).any():
        return {**out, "pvalue": p}
    res = stats.contingency.odds_ratio(ti, kind=kind)
    with np.errstate(divide="ignore", invalid="ignore"):
        ci = res.confidence_interval(confidence_level=1.0 - alpha)
    out.update(odds_ratio=float(res.statistic), or_lo=float(ci.low), or_hi=float(ci.high))
    return {**out, "pvalue": p}


def two_proportion_ztest(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """Pooled two-sided z test of ``k1/n1 == k2/n2``; returns ``(z, pvalue)``.

    Equivalent to the uncorrected 2x2 chi-square (z^2 == chi2). NaN when a
    group is empty or the pooled proportion is 0 or 1 (no variance).
    """
    if n1 <= 0 or n2 <= 0:
        return (np.nan, np.nan)
    p_pool = (k1 + k2) / (n1 + n2)
    se = np.sqrt(p_pool * (1 - p_pool) * (1 / n1 + 1 / n2))
    if se == 0:
        return (np.nan, np.nan)
    z = (k1 / n1 - k2 / n2) / se
    return (float(z), float(2 * stats.norm.sf(abs(z))))


def adjust_pvalues(pvalues: ArrayLike, method: str = "holm") -> np.ndarray:
    """Multiplicity-adjusted p-values (statsmodels ``multipletests``).

    NaN entries (tests that could not be run) are left NaN and do not count
    towards the family size. ``method`` is any ``multipletests`` method, e.g.
    ``"holm"`` (default: controls FWER without independence assumptions) or
    ``"fdr_bh"``.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method=method)[1]
    return out
