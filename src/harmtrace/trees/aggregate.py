"""Aggregation: a harm-benefit tree to a harmfulness score, probability and label.

For a tree with effects e,

    score = sum_e  sign_e * a[action_e] * c[category_e] * x[extent_e] * l[likelihood_e]
                   * (1 if immediate_e else d)
    p     = 1 / (1 + exp(-(b0 + score)))          label = p >= threshold

where ``sign`` is +1 for harms and -1 for benefits, ``a`` is the weight of the action
type (one per AIR level-2 category for harmful actions, one for beneficial actions),
``c`` the weight of the effect category (per side), ``x`` and ``l`` the extent and
likelihood weights, ``d`` in [0, 1] the discount of non-immediate effects and ``b0`` an
intercept. Extent and likelihood weights are monotone by construction: the most serious
level has weight 1 and each lower level is the next level times a factor in [0, 1], so
``x_minor <= x_significant <= x_substantial <= x_major = 1`` (likewise for likelihood).

Fitting maximises the Bernoulli log-likelihood of binary labels with a ridge penalty
``lam/2 * sum((w - 1)^2)`` on the action and category weights (shrinking toward the
neutral weight 1 fixes the scale shared by ``a`` and ``c`` and keeps weights of unseen
action types at 1; ``lam=0`` is plain maximum likelihood). L-BFGS-B with the analytic
gradient runs from several starts (the first at neutral weights, the others drawn from a
seeded generator) and keeps the best optimum. Cross-fitting, bootstrap intervals and
explanations are below; steering profiles are in :mod:`harmtrace.trees.steering`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from harmtrace.errors import HarmtraceError
from harmtrace.stats.bootstrap import percentile_interval
from harmtrace.trees.effects import EXTENTS, LIKELIHOODS, effect_taxonomy
from harmtrace.trees.schema import TreeRecord

BENEFIT_ACTION = "benefit"


class AggregationError(HarmtraceError):
    """Weights or labels that the aggregation model cannot use."""


def action_names(level2: Sequence[str]) -> tuple[str, ...]:
    """Action-weight names: ``harm:<AIR level-2>`` for each category, then ``benefit``."""
    return (*(f"harm:{n}" for n in level2), BENEFIT_ACTION)


def category_names() -> tuple[str, ...]:
    return tuple(
        f"{side}:{c}" for side in ("harm", "benefit") for c in effect_taxonomy(side).categories
    )


@dataclass(frozen=True)
class Design:
    """The effects of many trees as flat integer arrays (one entry per effect)."""

    n_trees: int
    tree: np.ndarray
    sign: np.ndarray
    action: np.ndarray
    category: np.ndarray
    extent: np.ndarray
    likelihood: np.ndarray
    immediate: np.ndarray
    has_tree: np.ndarray
    """per tree: False for failed generations (score and probability are then NaN)"""
    actions: tuple[str, ...]
    categories: tuple[str, ...]
    effects: pd.DataFrame = field(repr=False)
    """one row per effect: tree, stakeholder, side, action text, AIR names, levels"""

    def subset(self, rows: np.ndarray) -> Design:
        """The design of trees ``rows`` (in that order, repeats allowed: bootstrap)."""
        rows = np.asarray(rows, dtype=np.int64)
        # effects of repeated trees are repeated, renumbered to their new positions
        order = np.argsort(self.tree, kind="stable")
        starts = np.searchsorted(self.tree[order], np.arange(self.n_trees))
        ends = np.searchsorted(self.tree[order], np.arange(self.n_trees), side="right")
        take, new_tree = [], []
        for new, old in enumerate(rows):
            idx = order[starts[old] : ends[old]]
            take.append(idx)
            new_tree.append(np.full(idx.size, new, dtype=np.int64))
        sel = np.concatenate(take) if take else np.zeros(0, dtype=np.int64)
        return Design(
            n_trees=len(rows),
            tree=np.concatenate(new_tree) if new_tree else np.zeros(0, dtype=np.int64),
            sign=self.sign[sel],
            action=self.action[sel],
            category=self.category[sel],
            extent=self.extent[sel],
            likelihood=self.likelihood[sel],
            immediate=self.immediate[sel],
            has_tree=self.has_tree[rows],
            actions=self.actions,
            categories=self.categories,
            effects=self.effects.iloc[sel].reset_index(drop=True),
        )


def design_from_trees(records: Sequence[TreeRecord], level2: Sequence[str]) -> Design:
    """Flatten tree records (failed ones included, with no effects) into a :class:`Design`."""
    actions = action_names(level2)
    categories = category_names()
    a_index = {n: i for i, n in enumerate(actions)}
    c_index = {n: i for i, n in enumerate(categories)}
    rows: list[dict[str, Any]] = []
    for t, rec in enumerate(records):
        if rec.tree is None:
            continue
        for e in rec.tree.effects():
            key = f"harm:{e['air_l2']}" if e["side"] == "harm" else BENEFIT_ACTION
            if key not in a_index:
                raise AggregationError(
                    f"{rec.dataset}/{rec.record_id}: AIR level-2 {e['air_l2']!r} is not in "
                    "the taxonomy the weights were made for"
                )
            rows.append({"tree": t, **e, "action_key": key})
    eff = pd.DataFrame(
        rows,
        columns=[
            "tree",
            "stakeholder",
            "side",
            "action",
            "air_l2",
            "air_l3",
            "category",
            "immediacy",
            "extent",
            "likelihood",
            "action_key",
        ],
    )
    ext = {n: i for i, n in enumerate(EXTENTS)}
    lik = {n: i for i, n in enumerate(LIKELIHOODS)}
    return Design(
        n_trees=len(records),
        tree=eff["tree"].to_numpy(dtype=np.int64),
        sign=np.where(eff["side"].to_numpy() == "harm", 1.0, -1.0),
        action=eff["action_key"].map(a_index).to_numpy(dtype=np.int64),
        category=(eff["side"] + ":" + eff["category"]).map(c_index).to_numpy(dtype=np.int64),
        extent=eff["extent"].map(ext).to_numpy(dtype=np.int64),
        likelihood=eff["likelihood"].map(lik).to_numpy(dtype=np.int64),
        immediate=eff["immediacy"].to_numpy(dtype=bool),
        has_tree=np.array([r.tree is not None for r in records], dtype=bool),
        actions=actions,
        categories=categories,
        effects=eff,
    )


@dataclass(frozen=True)
class Weights:
    """Named weights of the aggregation model (see the module docstring)."""

    action: dict[str, float]
    category: dict[str, float]
    extent: dict[str, float]
    likelihood: dict[str, float]
    discount: float
    intercept: float
    threshold: float = 0.5

    @classmethod
    def neutral(cls, actions: Sequence[str], categories: Sequence[str]) -> Weights:
        return cls(
            action=dict.fromkeys(actions, 1.0),
            category=dict.fromkeys(categories, 1.0),
            extent={n: (i + 1) / len(EXTENTS) for i, n in enumerate(EXTENTS)},
            likelihood={n: (i + 1) / len(LIKELIHOODS) for i, n in enumerate(LIKELIHOODS)},
            discount=0.5,
            intercept=0.0,
        )

    def check(self) -> Weights:
        """Raise unless weights are finite, non-negative and monotone, ``d`` in [0, 1]."""
        flat = self.flat()
        bad = [k for k, v in flat.items() if not np.isfinite(v)]
        if bad:
            raise AggregationError(f"weights {bad} are not finite")
        neg = [k for k, v in flat.items() if v < 0 and not k.startswith(("intercept", "threshold"))]
        if neg:
            raise AggregationError(f"weights {neg} are negative; weights must be >= 0")
        for name, levels, values in (
            ("extent", EXTENTS, self.extent),
            ("likelihood", LIKELIHOODS, self.likelihood),
        ):
            seq = [values[k] for k in levels]
            if any(b < a - 1e-12 for a, b in pairwise(seq)):
                raise AggregationError(
                    f"{name} weights must not decrease from {levels[0]} to {levels[-1]}: "
                    + ", ".join(f"{k}={values[k]:.3g}" for k in levels)
                )
        if not 0.0 <= self.discount <= 1.0:
            raise AggregationError(f"discount must be in [0, 1], got {self.discount}")
        if not 0.0 < self.threshold < 1.0:
            raise AggregationError(f"threshold must be in (0, 1), got {self.threshold}")
        return self

    def flat(self) -> dict[str, float]:
        """Dotted names -> values, e.g. ``action.harm:Privacy``, ``extent.minor``."""
        out = {f"action.{k}": v for k, v in self.action.items()}
        out |= {f"category.{k}": v for k, v in self.category.items()}
        out |= {f"extent.{k}": v for k, v in self.extent.items()}
        out |= {f"likelihood.{k}": v for k, v in self.likelihood.items()}
        out |= {"discount": self.discount, "intercept": self.intercept}
        out["threshold"] = self.threshold
        return out

    @classmethod
    def from_flat(cls, flat: dict[str, float]) -> Weights:
        groups: dict[str, dict[str, float]] = {
            "action": {},
            "category": {},
            "extent": {},
            "likelihood": {},
        }
        for k, v in flat.items():
            head, _, rest = k.partition(".")
            if head in groups and rest:
                groups[head][rest] = float(v)
        try:
            return cls(
                **groups,
                discount=float(flat["discount"]),
                intercept=float(flat["intercept"]),
                threshold=float(flat.get("threshold", 0.5)),
            )
        except KeyError as exc:
            raise AggregationError(f"weights lack {exc}") from exc

    def to_json(self) -> str:
        return json.dumps(self.flat(), indent=1, sort_keys=True)

    def arrays(self, design: Design) -> tuple[np.ndarray, ...]:
        try:
            a = np.array([self.action[k] for k in design.actions])
            c = np.array([self.category[k] for k in design.categories])
        except KeyError as exc:
            raise AggregationError(f"weights lack {exc}, which these trees use") from exc
        x = np.array([self.extent[k] for k in EXTENTS])
        lk = np.array([self.likelihood[k] for k in LIKELIHOODS])
        return a, c, x, lk


# --------------------------------------------------------------------------- scoring
def contributions(design: Design, w: Weights) -> np.ndarray:
    """Signed contribution of every effect to its tree's score."""
    a, c, x, lk = w.arrays(design)
    d = np.where(design.immediate, 1.0, w.discount)
    return (
        design.sign
        * a[design.action]
        * c[design.category]
        * x[design.extent]
        * lk[design.likelihood]
        * d
    )


@dataclass(frozen=True)
class Scored:
    score: np.ndarray
    probability: np.ndarray
    label: np.ndarray
    """boolean; False where there is no tree (never silently treated as harmless:
    ``has_tree`` says where that happened)"""
    has_tree: np.ndarray


def score_trees(design: Design, w: Weights) -> Scored:
    """Score, probability and label per tree; NaN score and probability without a tree."""
    contrib = contributions(design, w)
    s = np.bincount(design.tree, weights=contrib, minlength=design.n_trees)
    s = np.where(design.has_tree, s, np.nan)
    p = expit(w.intercept + s)
    return Scored(s, p, np.nan_to_num(p, nan=0.0) >= w.threshold, design.has_tree)


def explain(design: Design, w: Weights, top: int = 3) -> list[list[dict[str, Any]]]:
    """Per tree, the ``top`` effects with the largest absolute contribution."""
    contrib = contributions(design, w)
    eff = design.effects.assign(contribution=contrib, magnitude=np.abs(contrib))
    eff = eff.sort_values(["tree", "magnitude"], ascending=[True, False], kind="stable")
    out: list[list[dict[str, Any]]] = [[] for _ in range(design.n_trees)]
    for t, g in eff.groupby("tree", sort=False):
        for r in g.head(top).itertuples():
            out[int(t)].append(
                {
                    "side": r.side,
                    "stakeholder": r.stakeholder,
                    "action": r.action,
                    "air_l2": r.air_l2,
                    "category": r.category,
                    "extent": r.extent,
                    "likelihood": r.likelihood,
                    "immediate": bool(r.immediacy),
                    "contribution": round(float(r.contribution), 6),
                }
            )
    return out


def format_effect(e: dict[str, Any]) -> str:
    """One line, e.g. ``+0.83 harm Violence & Extremism -> physical (major, high,
    immediate)`` or ``-0.40 benefit -> liberty (minor, high, immediate)``."""
    what = f"harm {e['air_l2']}" if e["side"] == "harm" else "benefit"
    when = "immediate" if e["immediate"] else "downstream"
    return (
        f"{e['contribution']:+.2f} {what} -> {e['category']} "
        f"({e['extent']}, {e['likelihood']}, {when})"
    )


# --------------------------------------------------------------------------- fitting
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


# ------------------------------------------------------------------ cross-fitting
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
