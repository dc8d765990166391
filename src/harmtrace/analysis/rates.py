"""A share with its Wilson interval, and its numbers for the paper: one definition for every
validity analysis (prompt side, response side), so a rate reads the same everywhere."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from harmtrace.analysis.transitions import wilson_interval
from harmtrace.report.macros import Number, ci, count, pct, text


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
