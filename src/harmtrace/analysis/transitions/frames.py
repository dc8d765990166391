"""Judged records as transitions: the per-pair transition, the record's overall severity
and the long record x category frame every statistic of the package starts from."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from harmtrace.taxonomy import CATEGORIES, SIDES, TRANSITIONS

OVERALL = "overall"
"""Pseudo-category: the record's maximum severity over all categories."""
POOLED = "pooled"
"""Pseudo-category from :func:`add_pooled`: every record x real category row."""
CATEGORY_LEVELS: tuple[str, ...] = (*CATEGORIES, OVERALL, POOLED)

_DROP_BY_DEFAULT = ("prompt", "response")  # raw texts: no need to copy them 5x


def _col(side: str, category: str) -> str:
    return f"{side}_severity_{category}"


def as_float(x) -> np.ndarray:
    """Nullable ints / objects -> float array with NaN for missing."""
    return pd.Series(x).astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def _index_of(*xs) -> pd.Index | None:
    for x in xs:
        if isinstance(x, pd.Series):
            return x.index
    return None


def transition(prompt_sev, response_sev) -> pd.Series:
    """Transition of each pair: de-escalate (response < prompt), preserve (=), escalate (>).

    Returns a Categorical Series with categories :data:`TRANSITIONS` (in that
    order); missing where either severity is missing. A (0, 0) pair is
    "preserve"; see the package docstring for the prompt-positive population.
    """
    p, r = as_float(prompt_sev), as_float(response_sev)
    if p.shape != r.shape:
        raise ValueError("prompt and response severities must have the same length")
    codes = np.sign(r - p) + 1  # -1 -> 0 (de-escalate), 0 -> 1, +1 -> 2
    codes = np.where(np.isnan(codes), -1, codes).astype(np.int8)
    cat = pd.Categorical.from_codes(codes, categories=list(TRANSITIONS))
    return pd.Series(cat, index=_index_of(prompt_sev, response_sev), name="transition")


def overall_severity(df: pd.DataFrame, side: str) -> pd.Series:
    """Record-level severity on ``side`` ("prompt" or "response"): max over categories.

    Missing category values are ignored; the result is missing only when every
    category is missing (e.g. no response). Returns a nullable Int8 Series.
    """
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    cols = [_col(side, c) for c in CATEGORIES]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KeyError(f"judgments frame lacks columns {missing}")
    values = np.column_stack([as_float(df[c]) for c in cols]) if len(df) else np.empty((0, 4))
    all_nan = np.isnan(values).all(axis=1)
    mx = np.max(np.where(np.isnan(values), -1.0, values), axis=1, initial=-1.0)
    out = pd.array(np.where(all_nan, 0, mx).astype(np.int64), dtype="Int8")
    out[all_nan] = pd.NA
    return pd.Series(out, index=df.index, name=f"{side}_severity_{OVERALL}")


def long_format(
    df: pd.DataFrame,
    keep: Sequence[str] | None = None,
    include_overall: bool = True,
    dropna: bool = True,
) -> pd.DataFrame:
    """One row per record x category (plus ``"overall"``), ready for the share functions.

    Columns: the ``keep`` columns (default: every non-severity column except
    the raw ``prompt``/``response`` texts), ``category`` (Categorical over
    :data:`CATEGORY_LEVELS`), ``prompt_sev``, ``response_sev`` (Int8),
    ``transition`` and ``prompt_positive`` (prompt_sev > 0). With ``dropna``
    (default) rows whose prompt or response severity is missing are dropped,
    since they have no transition.
    """
    sev_cols = {_col(s, c) for s in SIDES for c in CATEGORIES}
    if keep is None:
        keep = [c for c in df.columns if c not in sev_cols and c not in _DROP_BY_DEFAULT]
    keep = list(keep)
    parts = []
    cats: list[str] = [*CATEGORIES, OVERALL] if include_overall else list(CATEGORIES)
    for cat in cats:
        if cat == OVERALL:
            p, r = overall_severity(df, "prompt"), overall_severity(df, "response")
        else:
            p, r = df[_col("prompt", cat)], df[_col("response", cat)]
        part = df[keep].copy()
        part["category"] = cat
        part["prompt_sev"] = pd.array(as_float(p), dtype="Float64").astype("Int8")
        part["response_sev"] = pd.array(as_float(r), dtype="Float64").astype("Int8")
        parts.append(part)
    long = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    long["category"] = pd.Categorical(long["category"], categories=list(CATEGORY_LEVELS))
    if dropna:
        long = long.loc[long["prompt_sev"].notna() & long["response_sev"].notna()]
        long = long.reset_index(drop=True)
    long["transition"] = transition(long["prompt_sev"], long["response_sev"])
    long["prompt_positive"] = (long["prompt_sev"] > 0).astype("boolean")
    return long


def add_pooled(long: pd.DataFrame) -> pd.DataFrame:
    """Append the real categories' rows once more under category ``"pooled"``.

    Pooling answers questions asked over all record x category pairs (e.g.
    "what share of escalations start at severity 0?"). The pooled rows of one
    record are not independent, so their Wilson intervals are somewhat too
    narrow; report them as descriptive.
    """
    real = long.loc[long["category"].isin(CATEGORIES)].copy()
    real["category"] = pd.Categorical([POOLED] * len(real), categories=list(CATEGORY_LEVELS))
    return pd.concat([long, real], ignore_index=True)
