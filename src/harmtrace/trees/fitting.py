"""Fitting the aggregation weights (:mod:`harmtrace.trees.aggregate`) to binary labels.

Penalised maximum likelihood: the Bernoulli log-likelihood with a ridge penalty
``lam/2 * sum((w - 1)^2)`` on the action and category weights, optionally class-balanced.
Extent and likelihood weights are parametrised as chains of factors in [0, 1] (the most
serious level fixed at 1), so box bounds keep them monotone. L-BFGS-B with the analytic
gradient runs from several starts -- the first at neutral weights (or ``init``), the
others drawn from a generator seeded by ``seed`` -- and keeps the best optimum.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from harmtrace.trees.aggregate import AggregationError, Design, Weights
from harmtrace.trees.effects import EXTENTS, LIKELIHOODS

_N_EXT = len(EXTENTS) - 1
_N_LIK = len(LIKELIHOODS) - 1
WEIGHT_MAX = 50.0


def _chain(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Monotone levels from factors in [0, 1]: ``[u0*u1*..., ..., u_last, 1]`` and the
    Jacobian d level_k / d u_j."""
    m = u.size
    levels = np.ones(m + 1)
    for k in range(m - 1, -1, -1):
        levels[k] = levels[k + 1] * u[k]
    jac = np.zeros((m + 1, m))
    for k in range(m):
        for j in range(k, m):
            others = np.prod(np.delete(u[k:], j - k))
            jac[k, j] = others
    return levels, jac


def _unchain(levels: np.ndarray) -> np.ndarray:
    lv = np.asarray(levels, dtype=float) / levels[-1]
    return np.array([lv[k] / lv[k + 1] if lv[k + 1] > 0 else 0.0 for k in range(lv.size - 1)])


@dataclass(frozen=True)
class _Layout:
    n_a: int
    n_c: int

    @property
    def size(self) -> int:
        return self.n_a + self.n_c + _N_EXT + _N_LIK + 2

    def split(self, th: np.ndarray) -> tuple[np.ndarray, ...]:
        i = 0
        a = th[i : i + self.n_a]
        i += self.n_a
        c = th[i : i + self.n_c]
        i += self.n_c
        u = th[i : i + _N_EXT]
        i += _N_EXT
        v = th[i : i + _N_LIK]
        i += _N_LIK
        return a, c, u, v, th[i], th[i + 1]

    def bounds(self) -> list[tuple[float, float]]:
        return (
            [(0.0, WEIGHT_MAX)] * (self.n_a + self.n_c)
            + [(0.0, 1.0)] * (_N_EXT + _N_LIK + 1)
            + [(-30.0, 30.0)]
        )


def _theta_of(w: Weights, design: Design) -> np.ndarray:
    a, c, x, lk = w.arrays(design)
    return np.concatenate([a, c, _unchain(x), _unchain(lk), [w.discount, w.intercept]])


def _weights_of(th: np.ndarray, design: Design, layout: _Layout, threshold: float) -> Weights:
    a, c, u, v, d, b0 = layout.split(th)
    x, _ = _chain(u)
    lk, _ = _chain(v)
    return Weights(
        action=dict(zip(design.actions, map(float, a), strict=True)),
        category=dict(zip(design.categories, map(float, c), strict=True)),
        extent=dict(zip(EXTENTS, map(float, x), strict=True)),
        likelihood=dict(zip(LIKELIHOODS, map(float, lk), strict=True)),
        discount=float(d),
        intercept=float(b0),
        threshold=threshold,
    )


def penalised_nll(
    th: np.ndarray,
    design: Design,
    y: np.ndarray,
    layout: _Layout,
    lam: float,
    sw: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Negative penalised (weighted) log-likelihood and its gradient; trees without a
    tree do not count. ``sw``: per-tree case weights (default 1)."""
    a, c, u, v, d, b0 = layout.split(th)
    x, jx = _chain(u)
    lk, jl = _chain(v)
    imm = design.immediate
    fa = a[design.action]
    fc = c[design.category]
    fx = x[design.extent]
    fl = lk[design.likelihood]
    fd = np.where(imm, 1.0, d)
    base = design.sign * fa * fc * fx * fl * fd
    s = np.bincount(design.tree, weights=base, minlength=design.n_trees)
    z = b0 + s
    use = design.has_tree
    sw = np.ones(design.n_trees) if sw is None else sw
    ll = y * log_expit(z) + (1 - y) * log_expit(-z)
    nll = -float((sw * ll)[use].sum())
    r = np.where(use, sw * (expit(z) - y), 0.0)
    re = r[design.tree]
    g_a = np.bincount(design.action, weights=re * design.sign * fc * fx * fl * fd, minlength=a.size)
    g_c = np.bincount(
        design.category, weights=re * design.sign * fa * fx * fl * fd, minlength=c.size
    )
    g_x = np.bincount(design.extent, weights=re * design.sign * fa * fc * fl * fd, minlength=x.size)
    g_l = np.bincount(
        design.likelihood, weights=re * design.sign * fa * fc * fx * fd, minlength=lk.size
    )
    g_d = float(np.sum((re * design.sign * fa * fc * fx * fl)[~imm]))
    g_b = float(r.sum())
    pen = 0.5 * lam * (np.sum((a - 1) ** 2) + np.sum((c - 1) ** 2))
    grad = np.concatenate(
        [g_a + lam * (a - 1), g_c + lam * (c - 1), g_x @ jx, g_l @ jl, [g_d, g_b]]
    )
    return nll + pen, grad


@dataclass(frozen=True)
class Fit:
    weights: Weights
    nll: float
    n_trees: int
    n_positive: int
    converged: bool
    starts: int
    lam: float
    balanced: bool
    effect_counts: dict[str, int]
    """how many effects of the fitting trees each action and category weight multiplies"""


def fit_weights(
    design: Design,
    y: np.ndarray,
    *,
    lam: float = 1.0,
    n_starts: int = 4,
    seed: int = 0,
    threshold: float = 0.5,
    init: Weights | None = None,
    balanced: bool = True,
) -> Fit:
    """Penalised maximum likelihood fit of the weights to binary labels ``y`` (0/1).

    ``balanced`` weighs each class to half the total (as the embedded grader's
    class-balanced regressions do), so ``p = 0.5`` is the decision point of equal
    priors and the harmful/benign mix of the fitting sets does not move it.
    """
    y = np.asarray(y, dtype=float)
    if y.shape != (design.n_trees,) or not np.isin(y, (0.0, 1.0)).all():
        raise AggregationError("labels must be 0/1, one per tree")
    use = design.has_tree
    if len(np.unique(y[use])) < 2:
        raise AggregationError("fitting needs both harmful (1) and benign (0) trees")
    layout = _Layout(len(design.actions), len(design.categories))
    rng = np.random.default_rng(seed)
    base_rate = float(np.clip(y[use].mean(), 1e-3, 1 - 1e-3))
    sw = np.ones(design.n_trees)
    if balanced:
        n_pos, n_neg = float(y[use].sum()), float((1 - y[use]).sum())
        sw = np.where(y == 1, use.sum() / (2 * n_pos), use.sum() / (2 * n_neg))
        base_rate = 0.5
    neutral = Weights.neutral(design.actions, design.categories)
    first = init or replace(neutral, intercept=float(np.log(base_rate / (1 - base_rate))))
    starts = [_theta_of(first, design)]
    for _ in range(max(n_starts, 1) - 1):
        th = np.concatenate(
            [
                rng.uniform(0.0, 3.0, layout.n_a + layout.n_c),
                rng.uniform(0.2, 1.0, _N_EXT + _N_LIK),
                [rng.uniform(0.0, 1.0), rng.normal(starts[0][-1], 1.0)],
            ]
        )
        starts.append(th)
    best = None
    for th0 in starts:
        res = minimize(
            penalised_nll,
            th0,
            args=(design, y, layout, lam, sw),
            jac=True,
            method="L-BFGS-B",
            bounds=layout.bounds(),
            options={"maxiter": 1000, "ftol": 1e-10, "gtol": 1e-6},
        )
        if best is None or res.fun < best.fun - 1e-9:
            best = res
    assert best is not None
    w = _weights_of(best.x, design, layout, threshold)
    counts = {
        **{
            f"action.{n}": int(np.sum(design.action[use[design.tree]] == i))
            for i, n in enumerate(design.actions)
        },
        **{
            f"category.{n}": int(np.sum(design.category[use[design.tree]] == i))
            for i, n in enumerate(design.categories)
        },
    }
    return Fit(
        weights=w,
        nll=float(best.fun),
        n_trees=int(use.sum()),
        n_positive=int(y[use].sum()),
        converged=bool(best.success),
        starts=len(starts),
        lam=lam,
        balanced=balanced,
        effect_counts=counts,
    )
