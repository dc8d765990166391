"""Confidence intervals for proportions, their differences and ratios.

Score-based intervals (Wilson, and Newcombe's hybrids built on it) are used
throughout because transition shares are often near 0 or 1 and groups can be
small, where the Wald interval undercovers and can leave [0, 1].

Every function accepts scalars or array-likes (broadcast together) and returns
plain floats for scalar input, numpy arrays otherwise. A group with no trials
yields NaN rather than raising, so empty strata survive a table pipeline.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import norm

__all__ = [
    "newcombe_diff_ci",
    "newcombe_paired_diff_ci",
    "risk_ratio",
    "wilson_ci",
    "z_crit",
]


def z_crit(alpha: float) -> float:
    """Two-sided standard-normal critical value for level ``1 - alpha``."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return float(norm.isf(alpha / 2.0))


def _out(*arrays: np.ndarray, scalar: bool):
    if scalar:
        return tuple(float(a) for a in arrays)
    return tuple(arrays)


def _counts(k: ArrayLike, n: ArrayLike) -> tuple[np.ndarray, np.ndarray, bool]:
    k_arr = np.asarray(k, dtype=float)
    n_arr = np.asarray(n, dtype=float)
    scalar = k_arr.ndim == 0 and n_arr.ndim == 0
    k_arr, n_arr = np.broadcast_arrays(k_arr, n_arr)
    valid = ~(np.isnan(k_arr) | np.isnan(n_arr))
    if np.any((k_arr[valid] < 0) | (k_arr[valid] > n_arr[valid])):
        raise ValueError("counts must satisfy 0 <= k <= n")
    return k_arr, n_arr, scalar


def _wilson(k: np.ndarray, n: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2.0 * n)) / denom
        half = z * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
        lo = np.clip(centre - half, 0.0, 1.0)
        hi = np.clip(centre + half, 0.0, 1.0)
    # Exact bounds at the edges (avoid 1e-17 round-off away from 0 or 1).
    lo = np.where(k == 0, 0.0, lo)
    hi = np.where(k == n, 1.0, hi)
    empty = ~(n > 0)
    return np.where(empty, np.nan, lo), np.where(empty, np.nan, hi)


def wilson_ci(k: ArrayLike, n: ArrayLike, alpha: float = 0.05):
    """Wilson score interval for a binomial proportion ``k / n``.

    Returns ``(lo, hi)``; ``n == 0`` gives ``(nan, nan)``. Matches
    ``statsmodels.stats.proportion.proportion_confint(method="wilson")``.
    """
    k_arr, n_arr, scalar = _counts(k, n)
    lo, hi = _wilson(k_arr, n_arr, z_crit(alpha))
    return _out(lo, hi, scalar=scalar)


def newcombe_diff_ci(
    k1: ArrayLike, n1: ArrayLike, k2: ArrayLike, n2: ArrayLike, alpha: float = 0.05
):
    """Newcombe (1998) hybrid score interval for ``k1/n1 - k2/n2``, independent samples.

    Method 10 of Newcombe, Stat Med 17:873: each proportion's Wilson limits
    are combined by "square and add". Returns ``(diff, lo, hi)``; NaN if
    either sample is empty.
    """
    k1a, n1a, s1 = _counts(k1, n1)
    k2a, n2a, s2 = _counts(k2, n2)
    z = z_crit(alpha)
    l1, u1 = _wilson(k1a, n1a, z)
    l2, u2 = _wilson(k2a, n2a, z)
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = k1a / n1a, k2a / n2a
        d = p1 - p2
        lo = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
        hi = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return _out(d, lo, hi, scalar=s1 and s2)


def newcombe_paired_diff_ci(a: int, b: int, c: int, d: int, alpha: float = 0.05):
    """Newcombe (1998) score interval for a difference of *paired* proportions.

    The paired 2x2 table is ``[[a, b], [c, d]]`` (rows: first condition
    yes/no, columns: second condition yes/no); the difference is
    ``(a + b)/N - (a + c)/N``. Method 10 of Newcombe, Stat Med 17:2635: the
    square-and-add of the marginal Wilson limits, corrected for the
    within-pair correlation ``phi`` (with its continuity adjustment). Use it
    instead of :func:`newcombe_diff_ci` when both proportions are measured on
    the same units. Returns ``(diff, lo, hi)``; NaN if ``N == 0``.
    """
    a, b, c, d = (float(x) for x in (a, b, c, d))
    if min(a, b, c, d) < 0:
        raise ValueError("cell counts must be non-negative")
    n = a + b + c + d
    if n == 0:
        return (np.nan, np.nan, np.nan)
    z = z_crit(alpha)
    (l1, u1) = (float(x) for x in _wilson(np.array(a + b), np.array(n), z))
    (l2, u2) = (float(x) for x in _wilson(np.array(a + c), np.array(n), z))
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


def risk_ratio(
    k1: ArrayLike,
    n1: ArrayLike,
    k2: ArrayLike,
    n2: ArrayLike,
    alpha: float = 0.05,
    zero_correction: float = 0.5,
):
    """Risk ratio ``(k1/n1) / (k2/n2)`` with the Katz log interval.

    ``log RR +/- z * sqrt(1/k1 - 1/n1 + 1/k2 - 1/n2)``. When either event
    count is zero the log ratio and its variance are undefined, so
    ``zero_correction`` (Haldane-Anscombe 0.5 by default) is added to every
    cell of that 2x2 table, i.e. ``k -> k + c`` and ``n -> n + 2c`` for both
    rows; the point estimate is then also taken from the corrected table.
    Tables without a zero event count are left untouched. ``zero_correction=0``
    disables this (RR 0 or inf, CI NaN). Returns ``(rr, lo, hi, corrected)``
    where ``corrected`` flags the adjusted tables; NaN if a row is empty.
    """
    k1a, n1a, s1 = _counts(k1, n1)
    k2a, n2a, s2 = _counts(k2, n2)
    k1a, n1a, k2a, n2a = np.broadcast_arrays(k1a, n1a, k2a, n2a)
    corrected = ((k1a == 0) | (k2a == 0)) & (n1a > 0) & (n2a > 0) & (zero_correction > 0)
    c = np.where(corrected, zero_correction, 0.0)
    k1c, k2c = k1a + c, k2a + c
    n1c, n2c = n1a + 2 * c, n2a + 2 * c
    z = z_crit(alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        rr = (k1c / n1c) / (k2c / n2c)
        se = np.sqrt(1 / k1c - 1 / n1c + 1 / k2c - 1 / n2c)
        lo = np.exp(np.log(rr) - z * se)
        hi = np.exp(np.log(rr) + z * se)
    empty = ~((n1a > 0) & (n2a > 0))
    rr, lo, hi = (np.where(empty, np.nan, x) for x in (rr, lo, hi))
    undefined = ~np.isfinite(se)
    lo, hi = np.where(undefined, np.nan, lo), np.where(undefined, np.nan, hi)
    if s1 and s2:
        return float(rr), float(lo), float(hi), bool(corrected)
    return rr, lo, hi, corrected
