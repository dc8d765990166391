"""Agreement between two ordinal ratings of the same units (two graders, or a grader and
human labels).

Point estimates come from the libraries: quadratic-weighted Cohen's kappa from
scikit-learn (``cohen_kappa_score(weights="quadratic")``) and Krippendorff's alpha with
the ordinal metric from the ``krippendorff`` package. Their bootstrap intervals are what
the libraries lack: with two raters and no missing values both statistics are functions
of the k x k table of rating pairs, so units are resampled as a multinomial draw on
that table and both statistics are evaluated on all replicate tables at once
(:func:`kappa_quadratic_from_tables`, :func:`alpha_ordinal_from_tables`; the tests check
them against the libraries).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import krippendorff
import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import cohen_kappa_score

from .bootstrap import percentile_interval, resample_counts

__all__ = [
    "OrdinalAgreement",
    "alpha_ordinal_from_tables",
    "kappa_quadratic_from_tables",
    "ordinal_agreement",
    "pair_table",
]


def pair_table(a: ArrayLike, b: ArrayLike, levels: Sequence[int]) -> np.ndarray:
    """k x k counts of (a, b) rating pairs over ``levels`` (rows: a, columns: b)."""
    lv = list(levels)
    ia = np.searchsorted(lv, np.asarray(a))
    ib = np.searchsorted(lv, np.asarray(b))
    t = np.zeros((len(lv), len(lv)), dtype=np.int64)
    np.add.at(t, (ia, ib), 1)
    return t


def kappa_quadratic_from_tables(tables: ArrayLike) -> np.ndarray:
    """Quadratic-weighted kappa of each k x k table in a ``(B, k, k)`` stack."""
    t = np.asarray(tables, dtype=float)
    t = t[None] if t.ndim == 2 else t
    k = t.shape[-1]
    i = np.arange(k)
    w = (i[:, None] - i[None, :]) ** 2 / max(k - 1, 1) ** 2
    n = t.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = t.sum(axis=2)[:, :, None] * t.sum(axis=1)[:, None, :] / n[:, None, None]
        return 1.0 - (w * t).sum(axis=(1, 2)) / (w * expected).sum(axis=(1, 2))


def alpha_ordinal_from_tables(tables: ArrayLike) -> np.ndarray:
    """Krippendorff's ordinal alpha of two raters from each k x k pair table.

    With two values per unit the coincidence matrix is ``T + T'``; the ordinal
    distance between values c < k is ``(sum_{g=c..k} n_g - (n_c + n_k) / 2)^2``
    with ``n_g`` the coincidence margins (Krippendorff 2011).
    """
    t = np.asarray(tables, dtype=float)
    t = t[None] if t.ndim == 2 else t
    o = t + np.swapaxes(t, 1, 2)
    ng = o.sum(axis=2)  # (B, k)
    n = ng.sum(axis=1)
    cum = np.cumsum(ng, axis=1)
    k = ng.shape[1]
    ci, ki = np.triu_indices(k, 1)
    # sum of n_g for g in [c, k] = cum[k] - cum[c] + n_c
    between = cum[:, ki] - cum[:, ci] + ng[:, ci]
    d2_upper = (between - (ng[:, ci] + ng[:, ki]) / 2.0) ** 2  # (B, pairs)
    d2 = np.zeros((t.shape[0], k, k))
    d2[:, ci, ki] = d2_upper
    d2[:, ki, ci] = d2_upper
    observed = (o * d2).sum(axis=(1, 2))
    expected = (ng[:, :, None] * ng[:, None, :] * d2).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - (n - 1.0) * observed / expected


@dataclass(frozen=True)
class OrdinalAgreement:
    """Agreement of two ordinal ratings of ``n`` units, with percentile bootstrap CIs."""

    n: int
    exact: float
    kappa_quadratic: float
    kappa_lo: float
    kappa_hi: float
    alpha_ordinal: float
    alpha_lo: float
    alpha_hi: float
    note: str = ""

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)


def ordinal_agreement(
    a: ArrayLike,
    b: ArrayLike,
    levels: Sequence[int],
    alpha: float = 0.05,
    n_resamples: int = 2000,
    seed: int = 0,
) -> OrdinalAgreement:
    """Exact agreement, quadratic-weighted kappa and ordinal Krippendorff's alpha.

    ``a`` and ``b`` rate the same units (pairs with a missing rating are dropped).
    When fewer than two units remain or every rating is the same value the
    chance-corrected statistics are undefined: NaN with a ``note``.
    """
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError("a and b must rate the same units (equal length)")
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok].astype(int), y[ok].astype(int)
    n = int(x.size)
    lv = [int(v) for v in levels]
    bad = sorted(set(np.unique(np.concatenate([x, y])).tolist()) - set(lv))
    if bad:
        raise ValueError(f"ratings {bad} are not among the levels {lv}")
    nan = np.nan
    if n < 2:
        return OrdinalAgreement(n, nan, nan, nan, nan, nan, nan, nan, "too few units")
    exact = float(np.mean(x == y))
    if np.unique(np.concatenate([x, y])).size < 2:
        return OrdinalAgreement(n, exact, nan, nan, nan, nan, nan, nan, "no variation")
    kappa = float(cohen_kappa_score(x, y, weights="quadratic", labels=lv))
    kalpha = float(
        krippendorff.alpha(
            reliability_data=np.vstack([x, y]).astype(float),
            level_of_measurement="ordinal",
            value_domain=lv,
        )
    )
    table = pair_table(x, y, lv)
    draws = resample_counts(table.ravel(), n_resamples, seed).reshape(-1, len(lv), len(lv))
    k_lo, k_hi = percentile_interval(kappa_quadratic_from_tables(draws), alpha)
    a_lo, a_hi = percentile_interval(alpha_ordinal_from_tables(draws), alpha)
    return OrdinalAgreement(n, exact, kappa, k_lo, k_hi, kalpha, a_lo, a_hi)
