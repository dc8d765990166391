"""A share with its Wilson interval, comparisons of two shares, and their numbers for the
paper: one definition for every analysis (transitions, validity, relevance, a model
study), so a rate reads the same everywhere and a group too small to report is refused by
one rule (:data:`MIN_N`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from statsmodels.stats.proportion import confint_proportions_2indep

from harmtrace.proportions import wilson_interval
from harmtrace.report.macros import Number, ci, count, pct, text

__all__ = [
    "MIN_N",
    "TOO_FEW",
    "rate_difference",
    "rate_numbers",
    "rate_ratio",
    "wilson_interval",
    "wilson_rate",
]

MIN_N = 5
"""Smallest group (records or category cells) for which a ratio or test is reported."""
TOO_FEW = "too few records"
"""What the numbers say instead of a value when a group is smaller than :data:`MIN_N`."""


def rate_difference(k1: int, n1: int, k2: int, n2: int, alpha: float) -> tuple[float, float, float]:
    """Difference of independent proportions with statsmodels' Newcombe interval."""
    if n1 <= 0 or n2 <= 0:
        return (np.nan, np.nan, np.nan)
    lo, hi = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", alpha=alpha)
    return (k1 / n1 - k2 / n2, float(lo), float(hi))


def rate_ratio(k1: int, n1: int, k2: int, n2: int, alpha: float) -> tuple[float, float, float]:
    """Risk ratio with statsmodels' adjusted-log interval (Katz on counts + 0.5).

    The adjustment keeps the interval finite when a group has no events. (statsmodels'
    Koopman score interval is not used: it returns intervals that exclude the estimate
    when a proportion is 0 or 1.)
    """
    if n1 <= 0 or n2 <= 0 or k1 + k2 == 0:
        return (np.nan, np.nan, np.nan)
    lo, hi = confint_proportions_2indep(
        k1, n1, k2, n2, compare="ratio", method="log-adjusted", alpha=alpha
    )
    rr = (k1 / n1) / (k2 / n2) if k2 else np.inf
    return (float(rr), float(lo), float(hi))


def wilson_rate(k: int, n: int, alpha: float) -> dict[str, float]:
    """``k`` of ``n`` with its Wilson interval: keys k, n, share, ci_lo, ci_hi (share NaN
    when n is 0)."""
    (lo,), (hi,) = wilson_interval(k, n, alpha)
    share = k / n if n else np.nan
    return {"k": int(k), "n": int(n), "share": share, "ci_lo": float(lo), "ci_hi": float(hi)}


def rate_numbers(key: str, r: Mapping[str, float]) -> dict[str, Number]:
    """``key`` (the share), ``key ci``, ``key k`` and ``key n``; words when n is 0."""
    if not r["n"]:
        return {
            key: text("no records"),
            f"{key} ci": text("n/a"),
            f"{key} k": count(0),
            f"{key} n": count(0),
        }
    return {
        key: pct(r["share"]),
        f"{key} ci": ci(r["ci_lo"], r["ci_hi"]),
        f"{key} k": count(r["k"]),
        f"{key} n": count(r["n"]),
    }
