"""Seeded count bootstraps: resampling units, or whole clusters of units, by their counts.

Libraries bootstrap arrays of units (``scipy.stats.bootstrap``); the statistics here
are functions of small count tables, so drawing ``N`` units with replacement is a
multinomial draw over the table's cells and costs O(cells) per replicate, not O(N).
A *cluster* bootstrap (records that contribute several category rows) is the same
draw over the distinct per-cluster count vectors ("patterns"): clusters with the same
pattern are exchangeable, so resampling ``R`` clusters with replacement equals a
multinomial draw of ``R`` over the patterns, weighted by how many clusters share each.

Every draw takes an explicit integer ``seed`` and a fresh ``numpy.random.Generator``,
so reruns reproduce each interval bit for bit; nothing touches global random state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["ClusterDraws", "cluster_bootstrap", "percentile_interval", "resample_counts"]


def percentile_interval(replicates: ArrayLike, alpha: float = 0.05) -> tuple[float, float]:
    """Equal-tailed percentile interval of bootstrap replicates (non-finite values dropped)."""
    reps = np.asarray(replicates, dtype=float)
    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return (np.nan, np.nan)
    lo, hi = np.quantile(reps, [alpha / 2.0, 1.0 - alpha / 2.0])
    return (float(lo), float(hi))


def resample_counts(
    counts: ArrayLike, n_resamples: int, seed: int, total: int | None = None
) -> np.ndarray:
    """Resampled category counts, shape ``(n_resamples, len(counts))``.

    Drawing ``sum(counts)`` units with replacement from data that take finitely many
    values is a multinomial draw over those values.
    """
    c = np.asarray(counts, dtype=float).ravel()
    n = round(c.sum()) if total is None else int(total)
    rng = np.random.default_rng(seed)
    if n == 0:
        return np.zeros((n_resamples, c.size), dtype=np.int64)
    return rng.multinomial(n, c / c.sum(), size=n_resamples)


@dataclass(frozen=True)
class ClusterDraws:
    """Totals of a count table: observed and under ``B`` cluster-bootstrap replicates."""

    observed: np.ndarray
    """Column totals over all clusters, shape ``(K,)``."""
    replicates: np.ndarray
    """Column totals of each replicate, shape ``(B, K)``."""
    n_clusters: int


def cluster_bootstrap(per_cluster: ArrayLike, n_resamples: int, seed: int) -> ClusterDraws:
    """Resample whole clusters (rows of ``per_cluster``, shape ``(R, K)``) with replacement.

    Row ``i`` holds cluster ``i``'s contribution to each of ``K`` totals (e.g. how many
    of a record's category rows fall in each category x outcome cell). Any statistic
    that is a function of the ``K`` totals can then be evaluated on each replicate
    row. Exact in distribution to drawing ``R`` row indices with replacement.
    """
    x = np.asarray(per_cluster, dtype=np.int64)
    if x.ndim != 2:
        raise ValueError("per_cluster must be a 2-D array (clusters x totals)")
    observed = x.sum(axis=0)
    if x.shape[0] == 0:
        return ClusterDraws(observed, np.zeros((n_resamples, x.shape[1]), dtype=np.int64), 0)
    patterns, multiplicity = np.unique(x, axis=0, return_counts=True)
    draws = resample_counts(multiplicity, n_resamples, seed)
    return ClusterDraws(observed, draws @ patterns, int(x.shape[0]))
