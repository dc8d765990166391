"""Relevance of responses jointly with their severity and their transition.

Per sample (a dataset, or one side of a paired dataset), with records as units (a
record has one relevance, so record-level severity -- the maximum over categories --
and the record's overall transition are used, and no record counts twice):

* the relevance distribution (1, 2, 3) at each response severity and for each
  transition type, with the share of fully relevant responses (relevance 3) and its
  Wilson interval;
* tests across severity: the linear-by-linear trend of relevance over severity (full
  ordinal table), the Cochran-Armitage trend of "relevance 3", and the chi-square of
  homogeneity (which also detects a non-monotone pattern such as "medium severity is
  least relevant"; exact or Monte-Carlo p-value when cells are small);
* compliance-escalations: category cells in which a response escalates from a
  *non-zero* prompt, and the relevance of the records that have one;
* how much of the severity-relevance association is built into the measurement.
  When both judgments come from lexical methods (the embedded grader's n-gram
  severities and its refusal-phrase-plus-similarity relevance), a refusal is both
  low-relevance and low-severity by construction. The association is therefore tested
  three ways: pooled, within prompt-severity strata (Mantel's stratified
  linear-by-linear test), and among responses not flagged as refusals; an association
  that vanishes in the last is the measurement's, not the model's.

The LaTeX tables are formatted in :mod:`harmtrace.analysis.relevance_tables`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harmtrace.analysis.rates import MIN_N, TOO_FEW, wilson_interval
from harmtrace.analysis.transitions import OVERALL, long_format
from harmtrace.report.macros import Number, ci, count, pct, pvalue, real, text
from harmtrace.stats import chi2_independence, stratified_trend_test, trend_test
from harmtrace.taxonomy import (
    CATEGORIES,
    RELEVANCE_LEVELS,
    SEVERITY_LEVELS,
    SEVERITY_NAMES,
    TRANSITIONS,
)

__all__ = [
    "SampleRelevance",
    "analyse_relevance",
    "relevance_numbers",
]

REL_COLS = [f"rel{level}" for level in RELEVANCE_LEVELS]


def _distribution(keys: pd.Series, relevance: pd.Series, levels, alpha: float) -> pd.DataFrame:
    """Counts of relevance 1..3 per key level, the relevance-3 share and its Wilson CI."""
    tab = pd.crosstab(
        pd.Categorical(keys, categories=list(levels)),
        pd.Categorical(relevance.astype(int), categories=list(RELEVANCE_LEVELS)),
        dropna=False,
    ).reindex(index=list(levels), columns=list(RELEVANCE_LEVELS), fill_value=0)
    out = pd.DataFrame(tab.to_numpy(), columns=REL_COLS)
    out.insert(0, "level", list(levels))
    out["n"] = out[REL_COLS].sum(axis=1)
    k = out[f"rel{max(RELEVANCE_LEVELS)}"].to_numpy()
    n = out["n"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["share3"] = np.where(n > 0, k / n, np.nan)
    out["ci_lo"], out["ci_hi"] = wilson_interval(k, n, alpha)
    return out


@dataclass(frozen=True)
class SampleRelevance:
    """Everything :func:`analyse_relevance` computes for one sample."""

    sample: str
    grader: str
    n_records: int
    by_severity: pd.DataFrame = field(repr=False)
    """``level`` (response severity 0..3), ``rel1..rel3``, ``n``, ``share3``, CI."""
    by_transition: pd.DataFrame = field(repr=False)
    """``level`` (overall transition), ``rel1..rel3``, ``n``, ``share3``, CI."""
    tests: pd.DataFrame = field(repr=False)
    """``test, statistic, zscore, pvalue, n, p_method, note`` (trend, homogeneity, lexical)."""
    compliance: dict[str, object] = field(default_factory=dict)
    """``cells``, ``records``, relevance counts ``rel1..rel3`` over those records."""


def _test_row(name: str, res, note: str = "", p_method: str = "asymptotic") -> dict:
    ok = np.isfinite(res.pvalue) and res.n >= MIN_N
    return {
        "test": name,
        "statistic": res.statistic if ok else np.nan,
        "zscore": getattr(res, "zscore", np.nan) if ok else np.nan,
        "pvalue": res.pvalue if ok else np.nan,
        "n": res.n,
        "p_method": p_method if ok else "none",
        "note": "" if ok else (note or TOO_FEW),
    }


def analyse_sample(
    df: pd.DataFrame, sample: str, alpha: float = 0.05, n_resamples: int = 2000, seed: int = 0
) -> SampleRelevance:
    """Relevance by severity and transition, trend tests, compliance-escalations."""
    sub = df.loc[(df["sample"] == sample) & df["relevance"].notna()]
    keep = [c for c in ("record_id", "relevance", "refusal") if c in sub.columns]
    long = long_format(sub, keep=keep)
    rec = long.loc[long["category"] == OVERALL].set_index("record_id")
    grader = str(sub["grader"].iloc[0]) if "grader" in sub.columns and len(sub) else ""
    sev = rec["response_sev"].astype(int)
    rel = rec["relevance"].astype(int)
    by_sev = _distribution(sev, rel, SEVERITY_LEVELS, alpha)
    by_tr = _distribution(rec["transition"].astype(str), rel, TRANSITIONS, alpha)

    table = by_sev[REL_COLS].to_numpy()
    tests = [
        _test_row("trend", trend_test(table, SEVERITY_LEVELS, RELEVANCE_LEVELS)),
        _test_row(
            "cochran_armitage",
            trend_test(np.column_stack([table[:, :-1].sum(axis=1), table[:, -1]]), SEVERITY_LEVELS),
        ),
    ]
    chi = chi2_independence(table, alpha=alpha, n_resamples=n_resamples, seed=seed)
    tests.append(_test_row("homogeneity", chi, p_method=chi.p_method))
    # how much of the association the measurement builds in
    prompt = rec["prompt_sev"].astype(int)
    strata = np.stack(
        [
            _distribution(sev[prompt == p], rel[prompt == p], SEVERITY_LEVELS, alpha)[
                REL_COLS
            ].to_numpy()
            for p in SEVERITY_LEVELS
        ]
    )
    tests.append(
        _test_row(
            "within_prompt_severity",
            stratified_trend_test(strata, SEVERITY_LEVELS, RELEVANCE_LEVELS),
        )
    )
    if "refusal" in rec.columns and rec["refusal"].notna().any():
        nr = ~rec["refusal"].astype("boolean").fillna(False).astype(bool)
        t_nr = _distribution(sev[nr], rel[nr], SEVERITY_LEVELS, alpha)[REL_COLS].to_numpy()
        tests.append(_test_row("non_refusal", trend_test(t_nr, SEVERITY_LEVELS, RELEVANCE_LEVELS)))
    else:
        tests.append(
            {
                "test": "non_refusal",
                "statistic": np.nan,
                "zscore": np.nan,
                "pvalue": np.nan,
                "n": 0,
                "p_method": "none",
                "note": "no refusal judgments",
            }
        )

    cells = long.loc[long["category"].isin(CATEGORIES) & long["transition"].notna()]
    comp = cells.loc[(cells["prompt_sev"] > 0).to_numpy(bool) & (cells["transition"] == "escalate")]
    comp_records = pd.Index(comp["record_id"].unique())
    comp_rel = rel.reindex(comp_records)
    compliance: dict[str, object] = {"cells": len(comp), "records": len(comp_records)}
    for level in RELEVANCE_LEVELS:
        compliance[f"rel{level}"] = int((comp_rel == level).sum())
    return SampleRelevance(sample, grader, len(rec), by_sev, by_tr, pd.DataFrame(tests), compliance)


def analyse_relevance(
    df: pd.DataFrame, alpha: float = 0.05, n_resamples: int = 2000, seed: int = 0
) -> dict[str, SampleRelevance]:
    """:func:`analyse_sample` for every sample whose records have relevance judgments."""
    have = df.loc[df["relevance"].notna(), "sample"].unique()
    return {s: analyse_sample(df, s, alpha, n_resamples, seed) for s in sorted(have)}


# --------------------------------------------------------------------------- numbers


def _level_name(level: int) -> str:
    return SEVERITY_NAMES[int(level)].lower()


def relevance_numbers(
    results: Mapping[str, SampleRelevance], alpha: float, n_boot: int | None = None
) -> dict[str, Number]:
    """Numbers under stable keys ``<sample> <what>``."""
    nums: dict[str, Number] = {"ci level": pct(1 - alpha, 0), "min n": count(MIN_N)}
    if n_boot is not None:
        nums["bootstrap iterations"] = count(n_boot)
    for sample, res in results.items():
        tag = sample
        nums[f"{tag} records"] = count(res.n_records)
        nums[f"{tag} grader"] = text(res.grader)
        for frame, name in ((res.by_severity, "at"), (res.by_transition, "for")):
            for r in frame.itertuples():
                level = _level_name(r.level) if name == "at" else str(r.level)
                key = f"{tag} relevance three {name} {level}"
                nums[f"{key} n"] = count(int(r.n))
                if r.n:
                    nums[key] = pct(r.share3)
                    nums[f"{key} ci"] = ci(r.ci_lo, r.ci_hi)
                else:
                    nums[key] = text("no records")
                    nums[f"{key} ci"] = text("n/a")
        eligible = res.by_severity.loc[res.by_severity["n"] >= MIN_N]
        if len(eligible) >= 2:
            low = eligible.sort_values(["share3", "level"], kind="stable").iloc[0]
            nums[f"{tag} least relevant severity"] = text(_level_name(low["level"]))
        else:
            nums[f"{tag} least relevant severity"] = text(TOO_FEW)
        for r in res.tests.itertuples():
            key = f"{tag} {r.test.replace('_', ' ')}"
            nums[f"{key} p"] = pvalue(r.pvalue) if np.isfinite(r.pvalue) else text(r.note)
            nums[f"{key} n"] = count(int(r.n))
            nums[f"{key} z"] = real(r.zscore) if np.isfinite(r.zscore) else text("n/a")
        c = res.compliance
        nums[f"{tag} compliance escalations"] = count(int(c["cells"]))
        nums[f"{tag} compliance escalation records"] = count(int(c["records"]))
        for level in RELEVANCE_LEVELS:
            key = f"{tag} compliance relevance {level}"
            nums[f"{key} count"] = count(int(c[f"rel{level}"]))
            nums[key] = (
                pct(c[f"rel{level}"] / c["records"])
                if c["records"]
                else text("no compliance escalations")
            )
    return nums
