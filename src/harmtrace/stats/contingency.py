"""Tests and effect sizes for contingency tables.

Used to ask whether transition outcomes differ between harm categories: an omnibus
Pearson chi-square with Cramér's V, whose p-value comes from the exact or Monte-Carlo
permutation null (scipy) when expected counts are small; pairwise 2x2 comparisons
(Fisher exact) adjusted with :func:`adjust_pvalues`; and a linear-by-linear trend test
for ordered tables (statsmodels). What the libraries lack is kept here: the
bias-corrected V (Bergsma 2013) and its count and cluster bootstraps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats
from statsmodels.stats.contingency_tables import Table
from statsmodels.stats.multitest import multipletests

from .bootstrap import cluster_bootstrap, percentile_interval, resample_counts

__all__ = [
    "Chi2Result",
    "TrendResult",
    "adjust_pvalues",
    "chi2_independence",
    "cramers_v",
    "cramers_v_ci",
    "cramers_v_cluster_ci",
    "fisher_exact_2x2",
    "stratified_trend_test",
    "trend_test",
]

MIN_EXPECTED = 5.0
"""Expected count below which the chi-square approximation is not trusted."""


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


def cramers_v_cluster_ci(
    per_cluster: ArrayLike,
    shape: tuple[int, int],
    alpha: float = 0.05,
    bias_correction: bool = True,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Cramér's V with a cluster-bootstrap interval.

    ``per_cluster`` has one row per cluster (e.g. a record) and ``r * c`` columns: the
    cluster's contribution to each cell of the ``shape`` table, row-major. Whole
    clusters are resampled, so rows of one record that fall in several categories
    stay together. Returns ``(v, lo, hi)``.
    """
    x = np.asarray(per_cluster)
    r, c = shape
    if x.ndim != 2 or x.shape[1] != r * c:
        raise ValueError(f"per_cluster needs {r * c} columns for a {r}x{c} table")
    draws = cluster_bootstrap(x, n_resamples, seed)
    observed = draws.observed.reshape(r, c).astype(float)
    keep_r, keep_c = observed.sum(axis=1) > 0, observed.sum(axis=0) > 0
    t = observed[keep_r][:, keep_c]
    v = float(_v_from_tables(t[None], bias_correction)[0])
    if np.isnan(v):
        return (np.nan, np.nan, np.nan)
    reps = draws.replicates.reshape(-1, r, c)[:, keep_r][:, :, keep_c].astype(float)
    return (v, *percentile_interval(_v_from_tables(reps, bias_correction), alpha))


@dataclass(frozen=True)
class Chi2Result:
    """Pearson chi-square test of independence with its effect size.

    ``p_method`` says where the p-value comes from: ``asymptotic`` (chi-square
    distribution), ``exact`` (Fisher, 2x2 tables with small expected counts),
    ``monte-carlo`` (permutation null of the Pearson statistic given the margins), or
    ``none`` when fewer than two non-empty rows or columns remain.
    """

    statistic: float
    dof: int
    pvalue: float
    p_method: str
    n: int
    min_expected: float
    cramers_v: float
    cramers_v_lo: float
    cramers_v_hi: float

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)


def chi2_independence(
    table: ArrayLike,
    alpha: float = 0.05,
    bias_correction: bool = True,
    n_resamples: int = 2000,
    seed: int = 0,
    method: str = "auto",
) -> Chi2Result:
    """Pearson chi-square test of independence (no Yates correction) plus Cramér's V.

    All-zero rows/columns are dropped first. With ``method="auto"`` the asymptotic
    p-value is used when every expected count is at least :data:`MIN_EXPECTED`;
    otherwise a 2x2 table gets Fisher's exact p and a larger table the Monte-Carlo
    p-value of the Pearson statistic under independence with fixed margins
    (``scipy.stats.chi2_contingency(method=MonteCarloMethod)``, seeded).
    ``method`` may also be ``asymptotic``, ``exact`` (2x2 only) or ``monte-carlo``.
    V carries a percentile bootstrap interval over units; when units are clustered
    use :func:`cramers_v_cluster_ci` instead.
    """
    if method not in ("auto", "asymptotic", "exact", "monte-carlo"):
        raise ValueError(f"unknown method {method!r}")
    t = _drop_empty(_table(table))
    n = round(t.sum())
    if t.ndim != 2 or min(t.shape) < 2:
        return Chi2Result(np.nan, 0, np.nan, "none", n, np.nan, np.nan, np.nan, np.nan)
    res = stats.chi2_contingency(t, correction=False)
    min_expected = float(np.min(res.expected_freq))
    if method == "auto":
        small = min_expected < MIN_EXPECTED
        method = ("exact" if t.shape == (2, 2) else "monte-carlo") if small else "asymptotic"
    p = float(res.pvalue)
    if method == "exact":
        if t.shape != (2, 2):
            raise ValueError("the exact test is implemented for 2x2 tables only")
        p = float(stats.fisher_exact(np.rint(t).astype(np.int64)).pvalue)
    elif method == "monte-carlo":
        mc = stats.MonteCarloMethod(n_resamples=n_resamples, rng=np.random.default_rng(seed))
        p = float(
            stats.chi2_contingency(np.rint(t).astype(np.int64), correction=False, method=mc).pvalue
        )
    v, lo, hi = cramers_v_ci(t, alpha, bias_correction, n_resamples, seed)
    return Chi2Result(
        statistic=float(res.statistic),
        dof=int(res.dof),
        pvalue=p,
        p_method=method,
        n=n,
        min_expected=min_expected,
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


@dataclass(frozen=True)
class TrendResult:
    """Linear-by-linear association of an ordered table (Agresti's M^2 = z^2)."""

    statistic: float
    zscore: float
    pvalue: float
    n: int


def trend_test(
    table: ArrayLike, row_scores: ArrayLike | None = None, col_scores: ArrayLike | None = None
) -> TrendResult:
    """Two-sided linear-by-linear (Mantel) trend test across ordered rows and columns.

    ``statsmodels`` ``Table.test_ordinal_association`` with the given scores (default
    0, 1, 2, ...); with two columns this is the Cochran-Armitage trend test using the
    permutation variance. ``statistic`` is ``z**2``, approximately chi-square with one
    degree of freedom. NaN when the table has fewer than two non-empty rows or columns.
    """
    t = _table(table)
    rs = np.arange(t.shape[0], dtype=float) if row_scores is None else np.asarray(row_scores)
    cs = np.arange(t.shape[1], dtype=float) if col_scores is None else np.asarray(col_scores)
    rows, cols = t.sum(axis=1) > 0, t.sum(axis=0) > 0
    n = round(t.sum())
    if rows.sum() < 2 or cols.sum() < 2:
        return TrendResult(np.nan, np.nan, np.nan, n)
    res = Table(t[rows][:, cols]).test_ordinal_association(
        row_scores=rs[rows].astype(float), col_scores=cs[cols].astype(float)
    )
    z = float(res.zscore)
    return TrendResult(statistic=z * z, zscore=z, pvalue=float(res.pvalue), n=n)


def stratified_trend_test(
    tables: ArrayLike, row_scores: ArrayLike | None = None, col_scores: ArrayLike | None = None
) -> TrendResult:
    """Linear-by-linear association within strata (the Mantel / generalised CMH
    correlation statistic), for a ``(strata, rows, cols)`` stack of ordered tables.

    ``Q = (sum_h (T_h - E_h))^2 / sum_h V_h`` with ``T_h`` the stratum's sum of score
    products, ``E_h`` and ``V_h`` its permutation mean and variance given the margins;
    one degree of freedom. It tests an association that holds *within* strata (e.g.
    within prompt-severity levels), which a pooled test would confound with the strata.
    statsmodels covers only 2 x 2 x K tables (``StratifiedTable``; this reduces to its
    uncorrected CMH test there) and single tables (``test_ordinal_association``).
    Strata with fewer than two units add nothing. ``zscore`` keeps the sign of the
    association.
    """
    t = np.asarray(tables, dtype=float)
    if t.ndim != 3:
        raise ValueError("expected a (strata, rows, cols) stack of tables")
    if np.any(t < 0) or np.any(np.isnan(t)):
        raise ValueError("table entries must be non-negative counts")
    x = np.arange(t.shape[1], dtype=float) if row_scores is None else np.asarray(row_scores, float)
    y = np.arange(t.shape[2], dtype=float) if col_scores is None else np.asarray(col_scores, float)
    n = t.sum(axis=(1, 2))
    keep = n >= 2
    t, n = t[keep], n[keep]
    total = round(float(t.sum()))
    if t.shape[0] == 0:
        return TrendResult(np.nan, np.nan, np.nan, total)
    r, c = t.sum(axis=2), t.sum(axis=1)
    obs = np.einsum("hij,i,j->h", t, x, y)
    sx, sy = r @ x, c @ y
    expected = sx * sy / n
    var = (r @ x**2 - sx**2 / n) * (c @ y**2 - sy**2 / n) / (n - 1)
    v = var.sum()
    if not v > 0:
        return TrendResult(np.nan, np.nan, np.nan, total)
    z = float((obs - expected).sum() / np.sqrt(v))
    return TrendResult(statistic=z * z, zscore=z, pvalue=float(2 * stats.norm.sf(abs(z))), n=total)


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
