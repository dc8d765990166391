"""Category asymmetry of prompt -> response transitions, with records as clusters.

For every sample (a dataset, or one side of a paired dataset) this module computes the
figures a study of risk transitions reports and the tests that back them:

* transition shares (de-escalate / preserve / escalate) overall and per category, over
  all records and over records whose prompt is non-zero;
* where escalations start: the share of escalations from a prompt at severity 0,
  counted over category *cells* (a record counts once per category it escalates in)
  and over *records* (a record escalates if any category does; it starts from 0 if its
  prompt is 0 in every category) -- the two differ when a record's prompt is 0 in one
  category but not in another;
* per category, among non-zero prompts: *persistence* (response severity equal to the
  prompt's), *failure to de-escalate* (response at or above the prompt) and, among
  zero prompts, *drift up* (response above 0);
* ratios of those rates between categories (e.g. Sexual / Hate: "k times harder to
  de-escalate") with cluster-bootstrap intervals: whole records are resampled, so a
  record that contributes to several categories moves as one unit;
* category x transition chi-square with Cramér's V (cluster-bootstrap interval; exact or
  Monte-Carlo p-value when expected counts are small);
* a logistic regression of de-escalation on category and prompt severity, and a
  proportional-odds regression of response severity on prompt severity and category,
  both with standard errors clustered by record (:mod:`harmtrace.stats.regression`).

Where a group is too small for a ratio or a test, the result carries a ``note`` and the
numbers say so in words instead of printing a p-value. The LaTeX tables are formatted in
:mod:`harmtrace.analysis.asymmetry_tables`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from harmtrace.analysis.transitions import (
    OVERALL,
    long_format,
    transition_shares,
    wilson_interval,
)
from harmtrace.report.macros import Number, ci, count, pct, pvalue, real, text
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

__all__ = [
    "MIN_N",
    "TOO_FEW",
    "SampleAsymmetry",
    "analyse_asymmetry",
    "asymmetry_numbers",
    "category_rates",
    "deescalation_logit",
    "escalation_origin_summary",
    "record_counts",
]

MIN_N = 5
"""Smallest group (records or category cells) for which a ratio or test is reported."""
TOO_FEW = "too few records"
"""What the numbers say instead of a value when a group is smaller than :data:`MIN_N`."""

METRICS = ("failure", "persistence", "drift_up")
"""Per-category rates: failure to de-escalate and persistence (prompt > 0), drift up (= 0)."""
POPULATIONS = {"all": False, "nonzero": True}
"""Share populations: every record, or records whose prompt is non-zero (in that category)."""


# --------------------------------------------------------------------------- counts per record


def record_counts(long: pd.DataFrame, categories: Sequence[str] = CATEGORIES) -> pd.DataFrame:
    """One row per record: for each category its ``{metric}_k`` and ``{metric}_n`` (0/1).

    ``long`` is the frame of :func:`long_format` for one sample. ``failure_n`` and
    ``persistence_n`` are 1 when the category's prompt is non-zero, ``drift_up_n`` when
    it is zero; the ``_k`` columns mark the event. Records are the clusters of every
    bootstrap here, and rows absent from a category count 0 there.
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


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SampleAsymmetry:
    """Everything :func:`analyse_asymmetry` computes for one sample (tidy frames)."""

    sample: str
    n_records: int
    n_failed: int
    """Records whose judgment failed (status ``failed``): counted, not analysed."""
    shares: pd.DataFrame = field(repr=False)
    """``category, population, transition, count, n, share, ci_lo, ci_hi``."""
    origin: pd.DataFrame = field(repr=False)
    """``unit`` (cells, records, or a category), ``k`` escalations from 0 of ``n``."""
    rates: pd.DataFrame = field(repr=False)
    """``category`` (or "pooled"), ``metric``, ``k, n, share, ci_lo, ci_hi``."""
    ratios: pd.DataFrame = field(repr=False)
    """``metric, numerator, denominator, ratio, ci_lo, ci_hi, n_num, n_den, note``."""
    chi2: pd.DataFrame = field(repr=False)
    """Per population: category x transition chi-square, p method, V with cluster CI."""
    logit: ClusteredLogit | None = None
    ordinal: OrdinalFit | None = None


def _shares(long: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Transition shares for every category and population; empty groups get n = 0."""
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


def _chi2_rows(
    long: pd.DataFrame, categories: Sequence[str], alpha: float, n_resamples: int, seed: int
) -> pd.DataFrame:
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


def analyse_sample(
    df: pd.DataFrame,
    sample: str,
    categories: Sequence[str] = CATEGORIES,
    alpha: float = 0.05,
    n_resamples: int = 2000,
    seed: int = 0,
    models: bool = True,
) -> SampleAsymmetry:
    """Every asymmetry analysis for one sample of a judged frame (see module docstring)."""
    sub = df.loc[df["sample"] == sample]
    long = long_format(sub, keep=["record_id"])
    counts = record_counts(long, categories)
    shares = _shares(long, alpha)
    origin = escalation_origin_summary(long, counts, categories, alpha, n_resamples, seed)
    rates = category_rates(counts, categories, alpha, n_resamples, seed)
    ratios = (
        category_ratios(counts, alpha=alpha, n_resamples=n_resamples, seed=seed)
        if ("sexual" in categories)
        else pd.DataFrame()
    )
    chi2 = _chi2_rows(long, categories, alpha, n_resamples, seed)
    logit = ordinal = None
    if models:
        cells = _cells(long, categories)
        logit = deescalation_logit(long, categories, alpha)
        present = [c for c in categories if (cells["category"] == c).any()]
        ordinal = ordinal_regression(
            cells,
            "response_sev",
            "category",
            ["prompt_sev"],
            levels=present or list(categories),
            alpha=alpha,
        )
    failed = int((sub["status"] == "failed").sum()) if "status" in sub.columns else 0
    return SampleAsymmetry(
        sample, len(counts), failed, shares, origin, rates, ratios, chi2, logit, ordinal
    )


def analyse_asymmetry(
    df: pd.DataFrame,
    categories: Sequence[str] = CATEGORIES,
    alpha: float = 0.05,
    n_resamples: int = 2000,
    seed: int = 0,
    models: bool = True,
) -> dict[str, SampleAsymmetry]:
    """:func:`analyse_sample` for every sample of ``df``, in sorted order."""
    return {
        s: analyse_sample(df, s, categories, alpha, n_resamples, seed, models)
        for s in sorted(df["sample"].unique())
    }


# --------------------------------------------------------------------------- numbers


def _share_numbers(key: str, k: int, n: int, share: float, lo: float, hi: float) -> dict:
    """A share with its interval and counts; words where there is nothing to share out."""
    if n == 0:
        return {
            key: text("no records"),
            f"{key} ci": text("n/a"),
            f"{key} k": count(0),
            f"{key} n": count(0),
        }
    return {key: pct(share), f"{key} ci": ci(lo, hi), f"{key} k": count(k), f"{key} n": count(n)}


def _p_or_words(p: float, note: str) -> Number:
    return pvalue(p) if np.isfinite(p) else text(note or TOO_FEW)


def asymmetry_numbers(
    results: Mapping[str, SampleAsymmetry], alpha: float, n_boot: int | None = None
) -> dict[str, Number]:
    """Numbers under stable keys ``<sample> <what>`` (macro names derive from them)."""
    nums: dict[str, Number] = {"ci level": pct(1 - alpha, 0), "min n": count(MIN_N)}
    if n_boot is not None:
        nums["bootstrap iterations"] = count(n_boot)
    for sample, res in results.items():
        tag = sample
        nums[f"{tag} records"] = count(res.n_records)
        nums[f"{tag} failed judgments"] = count(res.n_failed)
        for r in res.shares.itertuples():
            key = f"{tag} {r.population} {r.category} {r.transition}"
            nums.update(_share_numbers(key, int(r.count), int(r.n), r.share, r.ci_lo, r.ci_hi))
        for r in res.origin.itertuples():
            unit = r.unit if r.unit in ("cells", "records") else f"{r.unit} cells"
            key = f"{tag} escalations from zero {unit}"
            nums.update(_share_numbers(key, int(r.k), int(r.n), r.share, r.ci_lo, r.ci_hi))
        for r in res.rates.itertuples():
            key = f"{tag} {r.category} {r.metric.replace('_', ' ')}"
            nums.update(_share_numbers(key, int(r.k), int(r.n), r.share, r.ci_lo, r.ci_hi))
        for r in res.ratios.itertuples():
            key = f"{tag} {r.metric} ratio {r.numerator} {r.denominator}"
            if r.note:
                nums[key] = text(r.note)
                nums[f"{key} ci"] = text("n/a")
            else:
                nums[key] = real(r.ratio)
                nums[f"{key} ci"] = ci(r.ci_lo, r.ci_hi, pct=False, digits=2)
        for r in res.chi2.itertuples():
            key = f"{tag} chi {r.population}"
            nums[f"{key} p"] = _p_or_words(r.pvalue, r.note)
            nums[f"{key} p method"] = text(r.p_method)
            if np.isfinite(r.statistic):
                nums[key] = real(r.statistic, 1)
                nums[f"{key} dof"] = count(int(r.dof))
                nums[f"{key} v"] = real(r.cramers_v)
                nums[f"{key} v ci"] = ci(r.v_lo, r.v_hi, pct=False, digits=2)
            else:  # every key the paper may cite exists, in words when there is no value
                for suffix in ("", " dof", " v", " v ci"):
                    nums[f"{key}{suffix}"] = text("n/a")
        nums.update(_model_numbers(tag, res))
    return nums


def _model_numbers(tag: str, res: SampleAsymmetry) -> dict[str, Number]:
    """Model numbers under a fixed set of keys: words where a model gives no value."""
    nums: dict[str, Number] = {}
    lg = res.logit
    if lg is not None:
        key = f"{tag} logit"
        why = text(lg.note or "not estimable")
        nums[f"{key} n"] = count(lg.n_obs)
        nums[f"{key} records"] = count(lg.n_clusters)
        for suffix in (
            "category p",
            "category wald",
            "category df",
            "prompt severity or",
            "prompt severity or ci",
        ):
            nums[f"{key} {suffix}"] = why
        for a, b in combinations(CATEGORIES, 2):
            for suffix in ("or", "or ci", "p holm"):
                nums[f"{key} {a} vs {b} {suffix}"] = why
        if lg.estimable:
            nums[f"{key} category p"] = pvalue(lg.factor_p)
            nums[f"{key} category wald"] = real(lg.factor_wald, 1)
            nums[f"{key} category df"] = count(lg.factor_df)
            coef = lg.coefficients.set_index("term")
            if "prompt_sev" in coef.index:
                r = coef.loc["prompt_sev"]
                nums[f"{key} prompt severity or"] = real(r["odds_ratio"])
                nums[f"{key} prompt severity or ci"] = ci(
                    r["or_lo"], r["or_hi"], pct=False, digits=2
                )
            for r in lg.contrasts.itertuples():
                ck = f"{key} {r.level_a} vs {r.level_b}"
                nums[f"{ck} or"] = real(r.odds_ratio)
                nums[f"{ck} or ci"] = ci(r.or_lo, r.or_hi, pct=False, digits=2)
                nums[f"{ck} p holm"] = pvalue(r.p_holm)
    od = res.ordinal
    if od is not None:
        key = f"{tag} ordinal"
        why = text(od.note or "not estimable")
        nums[f"{key} n"] = count(od.n_obs)
        for name in ("prompt severity", *CATEGORIES):
            for suffix in ("or", "or ci", "p"):
                nums[f"{key} {name} {suffix}"] = why
        for suffix in ("brant p", "brant note", "brant chi", "brant df"):
            nums[f"{key} {suffix}"] = why
        nums[f"{key} reference"] = text(od.reference or "n/a")
        if od.estimable:
            coef = od.coefficients.set_index("term")
            for term, r in coef.iterrows():
                name = (
                    "prompt severity"
                    if term == "prompt_sev"
                    else str(term).split("[")[-1].rstrip("]")
                )
                nums[f"{key} {name} or"] = real(r["odds_ratio"])
                nums[f"{key} {name} or ci"] = ci(r["or_lo"], r["or_hi"], pct=False, digits=2)
                nums[f"{key} {name} p"] = pvalue(r["pvalue"])
            br = od.brant
            note = text(br.note if br is not None and br.note else "all cut-points")
            nums[f"{key} brant note"] = note
            if br is not None and not br.table.empty:
                omni = br.table.set_index("term").loc["omnibus"]
                nums[f"{key} brant p"] = pvalue(omni["pvalue"])
                nums[f"{key} brant chi"] = real(omni["chi2"], 1)
                nums[f"{key} brant df"] = count(int(omni["df"]))
            else:
                for suffix in ("brant p", "brant chi", "brant df"):
                    nums[f"{key} {suffix}"] = note
    return nums
