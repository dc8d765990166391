"""Transition shares and the rates derived from them, per group, with Wilson intervals.

Every function takes the long frame of :func:`~harmtrace.analysis.transitions.long_format`
and returns a tidy frame of counts, ``n``, ``share`` and its interval, so a notebook or a
table only formats it. Cells of one record are counted as independent here; the
record-clustered versions are in :mod:`harmtrace.analysis.transitions.clustered`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from harmtrace.analysis.rates import wilson_interval
from harmtrace.taxonomy import CATEGORIES, RELEVANCE_LEVELS, SEVERITY_LEVELS, TRANSITIONS

from .frames import OVERALL

POPULATIONS = {"all": False, "nonzero": True}
"""Share populations: every record, or records whose prompt is non-zero (in that category)."""


def _subset(long: pd.DataFrame, prompt_positive_only: bool) -> pd.DataFrame:
    if not prompt_positive_only:
        return long
    return long.loc[(long["prompt_sev"] > 0).fillna(False).astype(bool)]


def _groupby(df: pd.DataFrame, by: Sequence[str]):
    return df.groupby(list(by), observed=True, dropna=False, sort=True)


def with_share_ci(
    out: pd.DataFrame, k: str, n: str, alpha: float, prefix: str = ""
) -> pd.DataFrame:
    """``out`` with ``share`` = k / n (NaN where n is 0) and its Wilson ``ci_lo``, ``ci_hi``."""
    kk, nn = out[k].to_numpy(dtype=float), out[n].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[f"{prefix}share"] = np.where(nn > 0, kk / nn, np.nan)
    lo, hi = wilson_interval(kk, nn, alpha)
    out[f"{prefix}ci_lo"], out[f"{prefix}ci_hi"] = lo, hi
    return out


def _rates(
    df: pd.DataFrame, by: Sequence[str], num: pd.Series, den: pd.Series, alpha: float
) -> pd.DataFrame:
    """Per-group ``k = sum(num & den)``, ``n = sum(den)``, share and Wilson CI."""
    den_b = den.fillna(False).astype(bool)
    num_b = num.fillna(False).astype(bool) & den_b
    work = df[list(by)].copy()
    work["k"], work["n"] = num_b.astype(np.int64), den_b.astype(np.int64)
    if by:
        out = _groupby(work, by)[["k", "n"]].sum().reset_index()
    else:
        out = pd.DataFrame({"k": [int(work["k"].sum())], "n": [int(work["n"].sum())]})
    return with_share_ci(out, "k", "n", alpha)


def transition_shares(
    long: pd.DataFrame,
    by: Sequence[str] = ("category",),
    prompt_positive_only: bool = False,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Count, n, share and Wilson CI of each transition within each ``by`` group.

    Every transition appears for every observed group (count 0 if absent).
    ``prompt_positive_only`` restricts to prompt severity > 0, where
    de-escalation is possible. Columns: ``*by, population, transition, count,
    n, share, ci_lo, ci_hi``.
    """
    by = list(by)
    d = _subset(long.loc[long["transition"].notna()], prompt_positive_only)
    trans = pd.Categorical(d["transition"], categories=list(TRANSITIONS))
    onehot = pd.get_dummies(trans).astype(np.int64)
    onehot.index = d.index
    if by:
        counts = pd.concat([d[by], onehot], axis=1)
        counts = _groupby(counts, by)[list(TRANSITIONS)].sum().reset_index()
    else:
        counts = onehot.sum().to_frame().T
    counts["n"] = counts[list(TRANSITIONS)].sum(axis=1)
    out = counts.melt(
        id_vars=[*by, "n"], value_vars=list(TRANSITIONS), var_name="transition", value_name="count"
    )
    out["transition"] = pd.Categorical(out["transition"], categories=list(TRANSITIONS))
    out = out.sort_values([*by, "transition"], kind="stable").reset_index(drop=True)
    out["population"] = "prompt_positive" if prompt_positive_only else "all"
    out = out[[*by, "population", "transition", "count", "n"]]
    return with_share_ci(out, "count", "n", alpha)


def severity_matrix(long: pd.DataFrame, category: str = OVERALL) -> pd.DataFrame:
    """4 x 4 count table for one category: rows prompt severity, columns response severity.

    All levels 0..3 are present on both axes even when empty.
    """
    d = long.loc[(long["category"] == category) & long["transition"].notna()]
    levels = list(SEVERITY_LEVELS)
    tab = pd.crosstab(
        pd.Categorical(d["prompt_sev"].astype("int64"), categories=levels),
        pd.Categorical(d["response_sev"].astype("int64"), categories=levels),
        dropna=False,
    )
    tab = tab.reindex(index=levels, columns=levels, fill_value=0).astype(np.int64)
    tab.index.name, tab.columns.name = "prompt_sev", "response_sev"
    return tab


def persistence_drift(
    long: pd.DataFrame, by: Sequence[str] = ("category",), alpha: float = 0.05
) -> pd.DataFrame:
    """Persistence and upward drift per group.

    ``persistence``: among prompt severity > 0, share whose response keeps the
    same severity. ``drift_up``: among prompt severity 0, share whose response
    is above 0. Columns: ``*by, metric, k, n, share, ci_lo, ci_hi``.
    """
    by = list(by)
    d = long.loc[long["transition"].notna()]
    p, r = d["prompt_sev"], d["response_sev"]
    pers = _rates(d, by, r == p, p > 0, alpha).assign(metric="persistence")
    drift = _rates(d, by, r > 0, p == 0, alpha).assign(metric="drift_up")
    out = pd.concat([pers, drift], ignore_index=True)
    out["metric"] = pd.Categorical(out["metric"], categories=["persistence", "drift_up"])
    out = out.sort_values([*by, "metric"], kind="stable").reset_index(drop=True)
    return out[[*by, "metric", "k", "n", "share", "ci_lo", "ci_hi"]]


def escalation_origin(
    long: pd.DataFrame, by: Sequence[str] = ("category",), alpha: float = 0.05
) -> pd.DataFrame:
    """Share of escalations whose prompt severity was 0, per group.

    ``n`` is the number of escalations, ``k`` those from severity-0 prompts.
    Use :func:`add_pooled` first for the figure over all record x category
    pairs. Columns: ``*by, k, n, share, ci_lo, ci_hi``.
    """
    d = long.loc[long["transition"].notna()]
    esc = d["transition"] == "escalate"
    return _rates(d, list(by), d["prompt_sev"] == 0, esc, alpha)


def relevance_by_response_severity(
    long: pd.DataFrame, by: Sequence[str] = ("category",), alpha: float = 0.05
) -> pd.DataFrame:
    """Relevance distribution at each response severity level, per group.

    Rows for every response severity 0..3 of each observed group (n = 0 gives
    NaN shares). ``n`` counts rows with a relevance judgment; ``share`` and
    its Wilson CI are for relevance 3 (fully relevant). Columns: ``*by,
    response_sev, n, n_rel1, n_rel2, n_rel3, share, ci_lo, ci_hi``.
    """
    by = list(by)
    d = long.loc[long["response_sev"].notna() & long["relevance"].notna()]
    rel_cols = [f"n_rel{level}" for level in RELEVANCE_LEVELS]
    rel = pd.Categorical(d["relevance"].astype("int64"), categories=list(RELEVANCE_LEVELS))
    onehot = pd.get_dummies(rel).astype(np.int64)
    onehot.columns = rel_cols
    onehot.index = d.index
    work = pd.concat([d[by], d["response_sev"].astype("int64"), onehot], axis=1)
    counts = _groupby(work, [*by, "response_sev"])[rel_cols].sum()
    # make every severity level present for every observed group
    groups = _groupby(work, by).size().index if by else None
    levels = list(SEVERITY_LEVELS)
    if by:
        tuples = [(*(g if isinstance(g, tuple) else (g,)), lv) for g in groups for lv in levels]
        full = pd.MultiIndex.from_tuples(tuples, names=[*by, "response_sev"])
    else:
        full = pd.Index(levels, name="response_sev")
    counts = counts.reindex(full, fill_value=0).reset_index()
    for col in by:
        if isinstance(long[col].dtype, pd.CategoricalDtype):
            counts[col] = pd.Categorical(counts[col], dtype=long[col].dtype)
    counts["n"] = counts[rel_cols].sum(axis=1)
    out = counts[[*by, "response_sev", "n", *rel_cols]]
    return with_share_ci(out, f"n_rel{max(RELEVANCE_LEVELS)}", "n", alpha)


def escalation_relevance(
    long: pd.DataFrame,
    by: Sequence[str] = ("category",),
    from_positive_prompt: bool = True,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Share of escalations with relevance 3, per group.

    With ``from_positive_prompt`` only escalations from prompts of severity >
    0 count ("compliance escalations": the model went along with a harmful
    request and amplified it). Columns: ``*by, k, n, share, ci_lo, ci_hi``.
    """
    d = long.loc[long["transition"].notna() & long["relevance"].notna()]
    esc = d["transition"] == "escalate"
    if from_positive_prompt:
        esc = esc & (d["prompt_sev"] > 0).fillna(False)
    return _rates(d, list(by), d["relevance"] == max(RELEVANCE_LEVELS), esc, alpha)


def shares_by_population(long: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Transition shares for every category and population; empty groups get n = 0, so
    every key the paper may cite exists."""
    out = []
    grid = pd.MultiIndex.from_product(
        [[*CATEGORIES, OVERALL], list(TRANSITIONS)], names=["category", "transition"]
    )
    for pop, positive in POPULATIONS.items():
        s = transition_shares(long, by=["category"], prompt_positive_only=positive, alpha=alpha)
        s = s.assign(category=s["category"].astype(str), transition=s["transition"].astype(str))
        s = s.set_index(["category", "transition"]).reindex(grid).reset_index()
        s["count"] = s["count"].fillna(0).astype(int)
        s["n"] = s["n"].fillna(0).astype(int)
        out.append(s.assign(population=pop))
    return pd.concat(out, ignore_index=True)
