"""Steering: named weight profiles that re-score trees without regenerating them.

A profile starts from a base (``fitted``, or another profile), multiplies named weights
(``scale``), sets others (``set``) and may move the decision threshold. Names are the
dotted weight names of :meth:`harmtrace.trees.aggregate.Weights.flat`, with shell-style
patterns: ``action.benefit``, ``category.harm:*``, ``extent.minor``, ``discount``. Every
pattern must match at least one weight, and the result must still be a valid model
(non-negative, monotone extent and likelihood weights, discount in [0, 1]); otherwise
the profile is refused with the reason.

Built-in profiles (a community can add its own under ``trees.profiles`` in the config):

* ``fitted``: the weights fitted to labels, threshold 0.5;
* ``strict``: benefits count half, downstream (non-immediate) harms count fully, and a
  prompt is flagged from probability 0.4;
* ``lenient``: benefits count double, downstream harms count half, flagged from 0.6.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from fnmatch import fnmatchcase

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harmtrace.errors import HarmtraceError
from harmtrace.trees.aggregate import AggregationError, Design, Weights, score_trees

FITTED = "fitted"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ProfileError(HarmtraceError):
    """A steering profile that cannot be applied."""


class ProfileSpec(BaseModel):
    """One entry of ``trees.profiles``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str = Field(default=FITTED, description="profile this one starts from")
    description: str = Field(default="", description="what the profile expresses")
    threshold: float | None = Field(
        default=None, gt=0, lt=1, description="flag when probability >= threshold"
    )
    scale: dict[str, float] = Field(
        default_factory=dict, description="weight-name pattern -> multiplier (>= 0)"
    )
    set: dict[str, float] = Field(default_factory=dict, description="weight-name pattern -> value")


BUILTIN_PROFILES: dict[str, ProfileSpec] = {
    FITTED: ProfileSpec(description="weights fitted to labels by maximum likelihood"),
    "strict": ProfileSpec(
        description="benefits count half, downstream harms count fully, flag from p >= 0.4",
        scale={"action.benefit": 0.5},
        set={"discount": 1.0},
        threshold=0.4,
    ),
    "lenient": ProfileSpec(
        description="benefits count double, downstream harms count half, flag from p >= 0.6",
        scale={"action.benefit": 2.0, "discount": 0.5},
        threshold=0.6,
    ),
}


def profile_specs(user: Mapping[str, object] | None = None) -> dict[str, ProfileSpec]:
    """Built-in profiles plus the user's (which may replace ``strict``/``lenient``)."""
    out = dict(BUILTIN_PROFILES)
    for name, raw in (user or {}).items():
        if not _NAME.match(name):
            raise ProfileError(
                f"profile name {name!r}: use lowercase letters, digits and '_' (it becomes "
                "a column name)"
            )
        if name == FITTED:
            raise ProfileError("the 'fitted' profile is the fit itself and cannot be redefined")
        try:
            out[name] = raw if isinstance(raw, ProfileSpec) else ProfileSpec.model_validate(raw)
        except ValidationError as exc:
            raise ProfileError(f"trees.profiles.{name}: {exc}") from exc
    return out


def _apply(name: str, spec: ProfileSpec, base: Weights) -> Weights:
    flat = base.flat()
    names = [k for k in flat if k != "threshold"]
    for op, table in (("scale", spec.scale), ("set", spec.set)):
        for pattern, value in table.items():
            hits = [k for k in names if fnmatchcase(k, pattern)]
            if not hits:
                raise ProfileError(
                    f"profile {name!r}: {op} pattern {pattern!r} matches no weight; names "
                    f"look like {names[0]!r}, 'category.harm:physical', 'extent.minor', "
                    "'discount'"
                )
            if op == "scale" and value < 0:
                raise ProfileError(f"profile {name!r}: scale {pattern!r} must be >= 0")
            for k in hits:
                flat[k] = flat[k] * value if op == "scale" else float(value)
    if spec.threshold is not None:
        flat["threshold"] = spec.threshold
    try:
        return Weights.from_flat(flat).check()
    except AggregationError as exc:
        raise ProfileError(f"profile {name!r} gives invalid weights: {exc}") from exc


def resolve_profiles(
    fitted: Weights, specs: Mapping[str, ProfileSpec] | None = None
) -> dict[str, Weights]:
    """Weights of every profile, bases resolved first (cycles and unknown bases refused)."""
    specs = dict(specs or BUILTIN_PROFILES)
    specs.setdefault(FITTED, BUILTIN_PROFILES[FITTED])
    done: dict[str, Weights] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> Weights:
        if name in done:
            return done[name]
        if name in chain:
            raise ProfileError(f"profiles form a cycle: {' -> '.join((*chain, name))}")
        if name not in specs:
            raise ProfileError(f"profile {chain[-1]!r} has unknown base {name!r}")
        spec = specs[name]
        if name == FITTED:
            w = fitted if spec.threshold is None else replace(fitted, threshold=spec.threshold)
        else:
            w = _apply(name, spec, resolve(spec.base, (*chain, name)))
        done[name] = w
        return w

    for name in specs:
        resolve(name, ())
    return {name: done[name] for name in sorted(specs, key=lambda n: (n != FITTED, n))}


def steer(design: Design, profiles: Mapping[str, Weights]) -> pd.DataFrame:
    """Score, probability and label of every tree under every profile (wide frame:
    ``score_<p>``, ``prob_<p>``, ``label_<p>``), without regenerating anything."""
    cols: dict[str, object] = {}
    for name, w in profiles.items():
        sc = score_trees(design, w)
        cols[f"score_{name}"] = pd.array(np.where(sc.has_tree, sc.score, np.nan), dtype="Float64")
        cols[f"prob_{name}"] = pd.array(
            np.where(sc.has_tree, sc.probability, np.nan), dtype="Float64"
        )
        lab = pd.array(sc.label, dtype="boolean")
        lab[~sc.has_tree] = pd.NA
        cols[f"label_{name}"] = lab
    return pd.DataFrame(cols)


def flag_rate_changes(
    table: pd.DataFrame, profiles: list[str], by: tuple[str, ...] = ("dataset",)
) -> pd.DataFrame:
    """Share flagged per group and profile, with the change against ``fitted``.

    ``table`` has the grouping columns and ``label_<profile>`` columns; trees that failed
    (null label) are counted in ``n_failed`` and left out of the rate, never as harmless.
    """
    rows = []
    for key, g in table.groupby(list(by), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        for p in profiles:
            lab = g[f"label_{p}"]
            n_ok = int(lab.notna().sum())
            flagged = int(lab.fillna(False).sum())
            rows.append(
                {
                    **dict(zip(by, key, strict=True)),
                    "profile": p,
                    "n": len(g),
                    "n_failed": len(g) - n_ok,
                    "flagged": flagged,
                    "rate": flagged / n_ok if n_ok else np.nan,
                }
            )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    base = out[out["profile"] == FITTED].set_index(list(by))["rate"]
    out["change"] = out["rate"] - base.reindex(pd.MultiIndex.from_frame(out[list(by)])).to_numpy()
    return out
