"""Resampling the aggregation model: cross-fitting folds, out-of-fold predictions and
bootstrap intervals of the fitted weights.

Folds are either leave-one-harmful-source-out (benign trees spread at random over the
same folds) or stratified k-fold; each fold is scored by weights fitted on the others,
with the fit seeded by ``seed + fold``. Bootstrap intervals are percentile intervals over
stratified case-resampling refits, each warm-started at the full-data fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harmtrace.stats.bootstrap import percentile_interval
from harmtrace.trees.aggregate import AggregationError, Design, Weights, score_trees
from harmtrace.trees.fitting import Fit, fit_weights


def leave_one_source_out(source: Sequence[str], y: np.ndarray, seed: int = 0) -> np.ndarray:
    """Fold per tree: each harmful source is its own fold; benign trees are spread at
    random over the same folds, so every fold model has seen neither the harmful
    benchmark nor the benign texts it predicts."""
    src = np.asarray(source, dtype=object)
    y = np.asarray(y)
    harmful = sorted(set(src[y == 1]))
    if len(harmful) < 2:
        raise AggregationError("leave-one-source-out needs at least two harmful sources")
    fold = np.full(src.size, -1, dtype=np.int64)
    for k, s in enumerate(harmful):
        fold[(src == s) & (y == 1)] = k
    neg = np.flatnonzero(y == 0)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(neg)
    fold[perm] = np.arange(perm.size) % len(harmful)
    return fold


def stratified_folds(strata: Sequence[str], k: int = 5, seed: int = 0) -> np.ndarray:
    """K folds balanced within each stratum (e.g. source x label)."""
    s = np.asarray(strata, dtype=object)
    fold = np.empty(s.size, dtype=np.int64)
    rng = np.random.default_rng(seed)
    offset = 0
    for value in sorted(set(s)):
        idx = rng.permutation(np.flatnonzero(s == value))
        fold[idx] = (np.arange(idx.size) + offset) % k
        offset += idx.size
    return fold


@dataclass(frozen=True)
class CrossFit:
    probability: np.ndarray
    """out-of-fold probability per tree (NaN without a tree)"""
    score: np.ndarray
    fold: np.ndarray
    fold_weights: list[Weights]


def cross_fit(
    design: Design,
    y: np.ndarray,
    fold: np.ndarray,
    *,
    lam: float = 1.0,
    n_starts: int = 4,
    seed: int = 0,
    threshold: float = 0.5,
    balanced: bool = True,
) -> CrossFit:
    """Out-of-fold predictions: each fold scored by weights fitted on the other folds."""
    prob = np.full(design.n_trees, np.nan)
    score = np.full(design.n_trees, np.nan)
    ws = []
    for k in np.unique(fold):
        test = np.flatnonzero(fold == k)
        train = np.flatnonzero(fold != k)
        f = fit_weights(
            design.subset(train),
            y[train],
            lam=lam,
            n_starts=n_starts,
            seed=seed + int(k),
            threshold=threshold,
            balanced=balanced,
        )
        sc = score_trees(design.subset(test), f.weights)
        prob[test] = sc.probability
        score[test] = sc.score
        ws.append(f.weights)
    return CrossFit(prob, score, np.asarray(fold), ws)


def bootstrap_weights(
    design: Design,
    y: np.ndarray,
    strata: Sequence[str],
    fitted: Fit,
    *,
    n_boot: int = 100,
    seed: int = 0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Percentile intervals of every weight over stratified case-resampling refits
    (warm-started at the full-data fit). Columns: weight, estimate, lo, hi, n_effects."""
    s = np.asarray(strata, dtype=object)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(s == v) for v in sorted(set(s))]
    reps: list[dict[str, float]] = []
    for _ in range(n_boot):
        rows = np.concatenate([rng.choice(g, size=g.size, replace=True) for g in groups])
        f = fit_weights(
            design.subset(rows),
            np.asarray(y)[rows],
            lam=fitted.lam,
            n_starts=1,
            init=fitted.weights,
            threshold=fitted.weights.threshold,
            balanced=fitted.balanced,
        )
        reps.append(f.weights.flat())
    rep = pd.DataFrame(reps)
    est = fitted.weights.flat()
    out = []
    for k, v in est.items():
        if k == "threshold":
            continue
        lo, hi = percentile_interval(rep[k].to_numpy(), alpha) if n_boot else (np.nan, np.nan)
        out.append(
            {
                "weight": k,
                "estimate": v,
                "lo": lo,
                "hi": hi,
                "n_effects": fitted.effect_counts.get(k),
            }
        )
    frame = pd.DataFrame(out)
    return frame.astype(
        {"weight": "string", "estimate": "Float64", "lo": "Float64", "hi": "Float64"}
    ).assign(n_effects=frame["n_effects"].astype("Int64"))
