"""Transition rates, ratios and tests with whole records as the unit.

A record contributes one cell per category, so cells of one record are not independent.
Here every interval and test treats the record as the cluster:

* per category, among non-zero prompts: *persistence* (response severity equal to the
  prompt's), *failure to de-escalate* (response at or above the prompt) and, among
  zero prompts, *drift up* (response above 0), pooled over categories with a
  cluster-bootstrap interval (whole records are resampled);
* where escalations start, counted over category *cells* and over *records*;
* ratios of those rates between categories (e.g. Sexual / Hate: "k times harder to
  de-escalate") with cluster-bootstrap intervals, so a record that contributes to
  several categories moves as one unit;
* category x transition chi-square with Cramér's V (cluster-bootstrap interval; exact or
  Monte-Carlo p-value when expected counts are small);
* a logistic regression of de-escalation on category and prompt severity, and a
  proportional-odds regression of response severity on prompt severity and category,
  both with standard errors clustered by record (:mod:`harmtrace.stats.regression`).

Where a group is smaller than :data:`~harmtrace.analysis.rates.MIN_N`, the result carries
a ``note`` instead of a ratio or a p-value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from harmtrace.analysis.rates import MIN_N, TOO_FEW, wilson_interval
from harmtrace.stats import (
    ClusteredLogit,
    OrdinalFit,
    chi2_independence,
    cluster_bootstrap,
    clustered_logit,
    cramers_v_cluster_ci,
    ordinal_regression,
    percentile_interval,
)
from harmtrace.taxonomy import CATEGORIES, TRANSITIONS

from .frames import OVERALL
from .shares import POPULATIONS

METRICS = ("failure", "persistence", "drift_up")
"""Per-category rates: failure to de-escalate and persistence (prompt > 0), drift up (= 0)."""


def record_counts(long: pd.DataFrame, categories: Sequence[str] = CATEGORIES) -> pd.DataFrame:
    """One row per record: for each category its ``{metric}_k`` and ``{metric}_n`` (0/1).

    ``long`` is the frame of :func:`~harmtrace.analysis.transitions.long_format` for one
    sample. ``failure_n`` and ``persistence_n`` are 1 when the category's prompt is
    non-zero, ``drift_up_n`` when it is zero; the ``_k`` columns mark the event. Records
    are the clusters of every bootstrap here, and rows absent from a category count 0
    there.
    """
    d = long.loc[long["category"].isin(categories) & long["transition"].notna()]
    p = d["prompt_sev"].astype(int).to_numpy()
    r = d["response_sev"].astype(int).to_numpy()
    parts = {
        "failure_n": p > 0,
        "failure_k": (p > 0) & (r >= p),
        "persistence_n": p > 0,
        "persistence_k": (p > 0) & (r == p),
        "drift_up_n": p == 0,
        "drift_up_k": (p == 0) & (r > 0),
        "escalate_n": r > p,
        "escalate_k": (r > p) & (p == 0),
    }
    work = pd.DataFrame({k: v.astype(np.int64) for k, v in parts.items()}, index=d.index)
    work["record_id"] = d["record_id"].to_numpy()
    work["category"] = d["category"].astype(str).to_numpy()
    wide = work.pivot_table(
        index="record_id", columns="category", values=list(parts), aggfunc="sum", fill_value=0
    )
    wide.columns = [f"{cat}:{metric}" for metric, cat in wide.columns]
    cols = [f"{c}:{m}" for c in categories for m in parts]
    records = pd.Index(sorted(long["record_id"].unique()), name="record_id")
    return wide.reindex(index=records, columns=cols, fill_value=0).astype(np.int64)


def escalation_origin_summary(
    long: pd.DataFrame,
    counts: pd.DataFrame,
    categories: Sequence[str] = CATEGORIES,
    alpha: float = 0.05,
    n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Share of escalations that start from a prompt at severity 0, three ways.

    ``cells``: every category in which a record escalates counts once (interval from
    the cluster bootstrap over records). ``records``: a record escalates if its overall
    severity (the highest over the categories) does -- the definition of every
    transition table and figure -- and starts from 0 if its prompt is 0 in every
    category (Wilson interval; records are independent). Each category: its own cells
    (Wilson).
    """
    rows = []
    k_cols = [f"{c}:escalate_k" for c in categories]
    n_cols = [f"{c}:escalate_n" for c in categories]
    x = counts[k_cols + n_cols].to_numpy()
    k_cells, n_cells = int(x[:, : len(k_cols)].sum()), int(x[:, len(k_cols) :].sum())
    draws = cluster_bootstrap(x, n_resamples, seed).replicates
    with np.errstate(invalid="ignore", divide="ignore"):
        reps = draws[:, : len(k_cols)].sum(axis=1) / draws[:, len(k_cols) :].sum(axis=1)
    lo, hi = percentile_interval(reps, alpha) if n_cells else (np.nan, np.nan)
    rows.append({"unit": "cells", "k": k_cells, "n": n_cells, "ci_lo": lo, "ci_hi": hi})
    overall = long.loc[(long["category"] == OVERALL) & long["transition"].notna()]
    overall = overall.set_index("record_id")
    esc_ids = overall.index[(overall["transition"] == "escalate").to_numpy()]
    k_rec = int(overall.loc[esc_ids, "prompt_sev"].astype(int).eq(0).sum())
    (lo,), (hi,) = wilson_interval(k_rec, len(esc_ids), alpha)
    rows.append({"unit": "records", "k": k_rec, "n": len(esc_ids), "ci_lo": lo, "ci_hi": hi})
    for c in categories:
        k, n = int(counts[f"{c}:escalate_k"].sum()), int(counts[f"{c}:escalate_n"].sum())
        (lo,), (hi,) = wilson_interval(k, n, alpha)
        rows.append({"unit": c, "k": k, "n": n, "ci_lo": lo, "ci_hi": hi})
    out = pd.DataFrame(rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        out.insert(3, "share", np.where(out["n"] > 0, out["k"] / out["n"], np.nan))
    return out


def category_rates(
    counts: pd.DataFrame,
    categories: Sequence[str] = CATEGORIES,
    alpha: float = 0.05,
    n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Failure, persistence and drift-up per category (Wilson) and pooled (cluster CI)."""
    rows = []
    for metric in METRICS:
        for c in categories:
            k, n = int(counts[f"{c}:{metric}_k"].sum()), int(counts[f"{c}:{metric}_n"].sum())
            (lo,), (hi,) = wilson_interval(k, n, alpha)
            rows.append({"category": c, "metric": metric, "k": k, "n": n, "ci_lo": lo, "ci_hi": hi})
        x = counts[
            [f"{c}:{metric}_k" for c in categories] + [f"{c}:{metric}_n" for c in categories]
        ]
        x = x.to_numpy()
        m = len(categories)
        draws = cluster_bootstrap(x, n_resamples, seed).replicates
        k, n = int(x[:, :m].sum()), int(x[:, m:].sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            reps = draws[:, :m].sum(axis=1) / draws[:, m:].sum(axis=1)
        lo, hi = percentile_interval(reps, alpha) if n else (np.nan, np.nan)
        rows.append(
            {"category": "pooled", "metric": metric, "k": k, "n": n, "ci_lo": lo, "ci_hi": hi}
        )
    out = pd.DataFrame(rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        out.insert(4, "share", np.where(out["n"] > 0, out["k"] / out["n"], np.nan))
    return out


def _ratio_quantiles(reps: np.ndarray, alpha: float) -> tuple[float, float]:
    """Percentile interval that keeps infinite ratios (a replicate without events below)."""
    reps = reps[~np.isnan(reps)]
    if reps.size == 0:
        return (np.nan, np.nan)
    lo, hi = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


def category_ratios(
    counts: pd.DataFrame,
    numerator: str = "sexual",
    denominators: Sequence[str] = ("hate", "violence"),
    metrics: Sequence[str] = ("failure", "persistence"),
    alpha: float = 0.05,
    n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Ratio of a rate between two categories with a cluster-bootstrap percentile CI.

    Both rates are recomputed on each replicate of resampled records, so the interval
    accounts for records that contribute to both categories. Not reported (``note``)
    when either category has fewer than :data:`MIN_N` cells or the denominator rate is 0.
    """
    rows = []
    for metric in metrics:
        for den in denominators:
            cols = [f"{c}:{metric}_{s}" for c in (numerator, den) for s in ("k", "n")]
            x = counts[cols].to_numpy()
            ka, na, kb, nb = (int(v) for v in x.sum(axis=0))
            row = {
                "metric": metric,
                "numerator": numerator,
                "denominator": den,
                "k_num": ka,
                "n_num": na,
                "k_den": kb,
                "n_den": nb,
            }
            note = ""
            if min(na, nb) < MIN_N:
                note = TOO_FEW
            elif kb == 0:
                note = f"no {metric} in {den}"
            if note:
                rows.append(
                    {**row, "ratio": np.nan, "ci_lo": np.nan, "ci_hi": np.nan, "note": note}
                )
                continue
            d = cluster_bootstrap(x, n_resamples, seed).replicates.astype(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                reps = (d[:, 0] / d[:, 1]) / (d[:, 2] / d[:, 3])
            lo, hi = _ratio_quantiles(reps, alpha)
            rows.append(
                {**row, "ratio": (ka / na) / (kb / nb), "ci_lo": lo, "ci_hi": hi, "note": ""}
            )
    return pd.DataFrame(rows)


def clustered_chi2(
    long: pd.DataFrame, categories: Sequence[str], alpha: float, n_resamples: int, seed: int
) -> pd.DataFrame:
    """Per population: the category x transition chi-square, with Cramér's V and its
    cluster-bootstrap interval (records resampled); a note when too few records."""
    rows = []
    d = long.loc[long["category"].isin(categories) & long["transition"].notna()]
    records = pd.Index(sorted(long["record_id"].unique()))
    for pop, positive in POPULATIONS.items():
        sub = d.loc[(d["prompt_sev"] > 0).to_numpy(dtype=bool)] if positive else d
        cell = sub["category"].astype(str) + "|" + sub["transition"].astype(str)
        names = [f"{c}|{t}" for c in categories for t in TRANSITIONS]
        per = pd.crosstab(sub["record_id"], cell).reindex(
            index=records, columns=names, fill_value=0
        )
        table = per.to_numpy().sum(axis=0).reshape(len(categories), len(TRANSITIONS))
        row: dict[str, object] = {"population": pop, "n": int(table.sum())}
        if table.sum() < MIN_N or sub["record_id"].nunique() < MIN_N:
            row.update(
                statistic=np.nan,
                dof=0,
                pvalue=np.nan,
                p_method="none",
                min_expected=np.nan,
                cramers_v=np.nan,
                v_lo=np.nan,
                v_hi=np.nan,
                note=TOO_FEW,
            )
            rows.append(row)
            continue
        res = chi2_independence(table, alpha=alpha, n_resamples=n_resamples, seed=seed)
        v, lo, hi = cramers_v_cluster_ci(
            per.to_numpy(), table.shape, alpha=alpha, n_resamples=n_resamples, seed=seed
        )
        row.update(
            statistic=res.statistic,
            dof=res.dof,
            pvalue=res.pvalue,
            p_method=res.p_method,
            min_expected=res.min_expected,
            cramers_v=v,
            v_lo=lo,
            v_hi=hi,
            note="" if res.p_method != "none" else "fewer than two categories or outcomes",
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _cells(long: pd.DataFrame, categories: Sequence[str]) -> pd.DataFrame:
    """One row per record and category with a transition, typed for the models."""
    cells = long.loc[long["category"].isin(categories) & long["transition"].notna()].copy()
    cells["category"] = cells["category"].astype(str)
    cells["prompt_sev"] = cells["prompt_sev"].astype(int)
    cells["response_sev"] = cells["response_sev"].astype(int)
    return cells


def deescalation_logit(
    long: pd.DataFrame, categories: Sequence[str] = CATEGORIES, alpha: float = 0.05
) -> ClusteredLogit:
    """De-escalation among non-zero prompts on category and prompt severity, standard
    errors clustered by record: the category Wald test is the asymmetry test whose unit
    is the record, not the cell (a record adds one cell per category it concerns)."""
    pos = _cells(long, categories)
    pos = pos.loc[pos["prompt_sev"] > 0].copy()
    pos["deescalated"] = (pos["transition"] == "de-escalate").astype(int)
    present = [c for c in categories if (pos["category"] == c).any()]
    return clustered_logit(
        pos,
        "deescalated",
        "category",
        ["prompt_sev"],
        levels=present or list(categories),
        alpha=alpha,
    )


def severity_ordinal(
    long: pd.DataFrame, categories: Sequence[str] = CATEGORIES, alpha: float = 0.05
) -> OrdinalFit:
    """Response severity on prompt severity and category (proportional odds), standard
    errors clustered by record; categories without a cell are left out of the levels."""
    cells = _cells(long, categories)
    present = [c for c in categories if (cells["category"] == c).any()]
    return ordinal_regression(
        cells,
        "response_sev",
        "category",
        ["prompt_sev"],
        levels=present or list(categories),
        alpha=alpha,
    )
