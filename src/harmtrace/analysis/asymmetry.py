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
numbers say so in words instead of printing a p-value. The statistics themselves are
defined in :mod:`harmtrace.analysis.transitions` (the record-clustered ones in
:mod:`harmtrace.analysis.transitions.clustered`); this module runs them per sample and
names their numbers. The LaTeX tables are formatted in
:mod:`harmtrace.analysis.asymmetry_tables`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from harmtrace.analysis.rates import MIN_N, TOO_FEW, rate_numbers
from harmtrace.analysis.transitions import (
    category_rates,
    category_ratios,
    clustered_chi2,
    deescalation_logit,
    escalation_origin_summary,
    long_format,
    record_counts,
    severity_ordinal,
    shares_by_population,
)
from harmtrace.report.macros import Number, ci, count, pct, pvalue, real, text
from harmtrace.stats import ClusteredLogit, OrdinalFit
from harmtrace.taxonomy import CATEGORIES

__all__ = [
    "RATIO_DENOMINATORS",
    "RATIO_NUMERATOR",
    "SampleAsymmetry",
    "analyse_asymmetry",
    "asymmetry_numbers",
]

RATIO_NUMERATOR = "sexual"
RATIO_DENOMINATORS: tuple[str, ...] = ("hate", "violence")
"""The seed's category contrasts: sexual over each denominator that the run grades."""


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
    shares = shares_by_population(long, alpha)
    origin = escalation_origin_summary(long, counts, categories, alpha, n_resamples, seed)
    rates = category_rates(counts, categories, alpha, n_resamples, seed)
    # The seed's contrasts (sexual over hate and over violence), for the categories run.
    denominators = [c for c in RATIO_DENOMINATORS if c in categories]
    ratios = (
        category_ratios(
            counts,
            RATIO_NUMERATOR,
            denominators,
            alpha=alpha,
            n_resamples=n_resamples,
            seed=seed,
        )
        if RATIO_NUMERATOR in categories and denominators
        else pd.DataFrame()
    )
    chi2 = clustered_chi2(long, categories, alpha, n_resamples, seed)
    logit = ordinal = None
    if models:
        logit = deescalation_logit(long, categories, alpha)
        ordinal = severity_ordinal(long, categories, alpha)
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


def _share_numbers(key: str, k: int, r) -> dict[str, Number]:
    """A row's share with its interval and counts (words where ``n`` is 0)."""
    rate = {"k": k, "n": int(r.n), "share": r.share, "ci_lo": r.ci_lo, "ci_hi": r.ci_hi}
    return rate_numbers(key, rate)


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
            nums.update(_share_numbers(key, int(r.count), r))
        for r in res.origin.itertuples():
            unit = r.unit if r.unit in ("cells", "records") else f"{r.unit} cells"
            key = f"{tag} escalations from zero {unit}"
            nums.update(_share_numbers(key, int(r.k), r))
        for r in res.rates.itertuples():
            key = f"{tag} {r.category} {r.metric.replace('_', ' ')}"
            nums.update(_share_numbers(key, int(r.k), r))
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
