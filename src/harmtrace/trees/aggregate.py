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
seeded generator) and keeps the best optimum (:mod:`harmtrace.trees.fitting`).
Cross-fitting and bootstrap intervals are in :mod:`harmtrace.trees.resampling`,
explanations below, steering profiles in :mod:`harmtrace.trees.steering`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from harmtrace.errors import HarmtraceError
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
