"""From judged records to the transition summaries and paper numbers.

The notebook calls these so that every table, figure and number it writes
comes from tested code, and so that the same summaries can be rebuilt from
a Python shell. The LaTeX tables are formatted in
:mod:`harmtrace.analysis.transition_tables`, the figures drawn in
:mod:`harmtrace.analysis.plots`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harmtrace.analysis.transitions import (
    OVERALL,
    CategoryAsymmetry,
    PairedSideComparison,
    add_pooled,
    category_asymmetry,
    deescalation_logit,
    escalation_origin,
    escalation_origin_summary,
    long_format,
    paired_side_comparison,
    persistence_drift,
    record_counts,
    relevance_by_response_severity,
    severity_matrix,
    transition_shares,
)
from harmtrace.report.macros import Number, ci, count, pct, pp, pvalue, real, text
from harmtrace.stats import ClusteredLogit, adjust_pvalues
from harmtrace.taxonomy import CATEGORIES, SEVERITY_NAMES, TRANSITIONS

KEEP = ["record_id", "dataset", "sample", "hh_side", "hh_pair_id", "relevance"]


def sample_label(dataset: str, side: object = None) -> str:
    """The unit of analysis: a dataset, split by response side where a dataset has two."""
    return dataset if side is None or pd.isna(side) else f"{dataset}:{side}"


def merge_judged(records: pd.DataFrame, judgments: pd.DataFrame) -> pd.DataFrame:
    """Records joined to their judgments; every record must have exactly one judgment."""
    missing = set(records["record_id"]) - set(judgments["record_id"])
    if missing:
        raise ValueError(f"{len(missing)} record(s) have no judgment, e.g. {sorted(missing)[:3]}")
    if judgments["record_id"].duplicated().any():
        raise ValueError("judgments hold duplicate record_id values")
    df = records.merge(judgments, on="record_id", how="left", validate="one_to_one")
    side = df["hh_side"] if "hh_side" in df else pd.Series(pd.NA, index=df.index)
    df["sample"] = [sample_label(d, s) for d, s in zip(df["dataset"], side, strict=True)]
    for col in ("hh_side", "hh_pair_id"):
        if col not in df:
            df[col] = pd.NA
    return df


@dataclass
class TransitionResults:
    """Everything the transitions notebook reports, as tidy frames."""

    long: pd.DataFrame
    shares: pd.DataFrame
    shares_positive: pd.DataFrame
    persistence: pd.DataFrame
    origin: pd.DataFrame
    relevance: pd.DataFrame
    asymmetry: dict[str, CategoryAsymmetry]
    paired: PairedSideComparison | None
    matrices: dict[tuple[str, str], pd.DataFrame]
    alpha: float
    origin_records: pd.DataFrame | None = None
    """Per sample: escalations from severity 0 counted per cell and per record."""
    prompts_zero: dict[str, tuple[int, int]] | None = None
    """Per sample: (records whose prompt is 0 in every category, records)."""
    clustered: dict[str, ClusteredLogit] | None = None
    """Per sample: the record-clustered test of category asymmetry (confirmatory)."""


def analyse(
    df: pd.DataFrame, *, alpha: float = 0.05, seed: int = 0, n_resamples: int = 2000
) -> TransitionResults:
    """Run every transition analysis per sample (dataset, or dataset and side)."""
    keep = [c for c in KEEP if c in df.columns]
    long = long_format(df, keep=keep)
    by = ["sample", "category"]
    shares = transition_shares(long, by=by, alpha=alpha)
    shares_positive = transition_shares(long, by=by, prompt_positive_only=True, alpha=alpha)
    pooled = add_pooled(long)
    persistence = persistence_drift(pooled, by=by, alpha=alpha)
    origin = escalation_origin(pooled, by=by, alpha=alpha)
    relevance = relevance_by_response_severity(long, by=by, alpha=alpha)
    asymmetry = {
        s: category_asymmetry(
            long.loc[long["sample"] == s], seed=seed, alpha=alpha, n_resamples=n_resamples
        )
        for s in sorted(long["sample"].unique())
    }
    hh = df.loc[df["hh_side"].notna()]
    paired = (
        paired_side_comparison(hh, seed=seed, alpha=alpha, n_resamples=n_resamples)
        if len(hh)
        else None
    )
    matrices = {
        (s, c): severity_matrix(long.loc[long["sample"] == s], c)
        for s in sorted(long["sample"].unique())
        for c in (*CATEGORIES, OVERALL)
    }
    origin_records, prompts_zero = [], {}
    for s in sorted(long["sample"].unique()):
        ls = long.loc[long["sample"] == s]
        o = escalation_origin_summary(
            ls, record_counts(ls), alpha=alpha, n_resamples=n_resamples, seed=seed
        )
        origin_records.append(o.loc[o["unit"].isin(["cells", "records"])].assign(sample=s))
        overall = ls.loc[ls["category"] == OVERALL]
        prompts_zero[s] = (int((overall["prompt_sev"] == 0).sum()), len(overall))
    return TransitionResults(
        long,
        shares,
        shares_positive,
        persistence,
        origin,
        relevance,
        asymmetry,
        paired,
        matrices,
        alpha,
        pd.concat(origin_records, ignore_index=True) if origin_records else None,
        prompts_zero,
        {
            s: deescalation_logit(long.loc[long["sample"] == s], alpha=alpha)
            for s in sorted(long["sample"].unique())
        },
    )


CONFIRMATORY = {
    "paired severity": "chosen vs rejected overall response severity (Wilcoxon, zeros dropped)",
    "paired deescalation": "chosen vs rejected de-escalation, non-zero prompts (exact McNemar)",
    "asymmetry": "de-escalation by category among non-zero prompts, per sample (logistic "
    "regression on category and prompt severity, record-clustered Wald test)",
}
"""The confirmatory tests, adjusted together (Holm); every other test is exploratory."""


def confirmatory_tests(res: TransitionResults) -> pd.DataFrame:
    """The confirmatory family with raw and Holm-adjusted p-values (NaN: not testable)."""
    rows = []
    if res.paired is not None:
        sev = res.paired.severity.set_index("category")
        rows.append({"test": "paired severity", "pvalue": sev.loc[OVERALL, "wilcoxon_p"]})
        d = res.paired.deescalation
        row = d.loc[(d["category"] == OVERALL) & (d["population"] == "prompt_positive")]
        rows.append(
            {
                "test": "paired deescalation",
                "pvalue": row["mcnemar_p"].iloc[0] if len(row) else np.nan,
            }
        )
    for sample, fit in (res.clustered or {}).items():
        p = fit.factor_p if fit.estimable else np.nan
        rows.append({"test": f"asymmetry {sample}", "pvalue": p})
    out = pd.DataFrame(rows, columns=["test", "pvalue"])
    out["p_holm"] = adjust_pvalues(out["pvalue"].to_numpy(dtype=float), "holm")
    return out


def _share_numbers(prefix: str, g: pd.DataFrame) -> dict[str, Number]:
    out = {}
    g = g.set_index("transition")
    for t in TRANSITIONS:
        key = f"{prefix} {t}"
        out[key] = pct(g.at[t, "share"])
        out[f"{key} ci"] = ci(g.at[t, "ci_lo"], g.at[t, "ci_hi"])
        out[f"{key} count"] = count(int(g.at[t, "count"]))
    out[f"{prefix} n"] = count(int(g["n"].iloc[0]))
    return out


def _origin_row(res: TransitionResults, sample: str, unit: str) -> pd.Series | None:
    org = res.origin_records
    if org is None:
        return None
    r = org.loc[(org["sample"] == sample) & (org["unit"] == unit)]
    return r.iloc[0] if len(r) else None


def _origin_numbers(res: TransitionResults, sample: str) -> dict[str, Number]:
    """Escalations from severity 0, pooled over the categories of one sample."""
    nums: dict[str, Number] = {}
    tag = sample
    org = res.origin.loc[(res.origin["sample"] == sample) & (res.origin["category"] == "pooled")]
    if len(org):
        r = org.iloc[0]
        nums[f"{tag} escalations from zero"] = pct(r["share"])
        nums[f"{tag} escalations from zero ci"] = ci(r["ci_lo"], r["ci_hi"])
        nums[f"{tag} escalations from zero k"] = count(int(r["k"]))
        nums[f"{tag} escalations n"] = count(int(r["n"]))
        # pooled over categories, a record adds a cell per category: its interval is the
        # cluster bootstrap over records, the same one notebook 02 reports for it
        cells = _origin_row(res, sample, "cells")
        if cells is not None and int(cells["n"]) == int(r["n"]):
            nums[f"{tag} escalations from zero ci"] = ci(cells["ci_lo"], cells["ci_hi"])
    return nums


def _sample_numbers(res: TransitionResults, sample: str) -> dict[str, Number]:
    """Shares, escalation origin, relevance and cell-level asymmetry of one sample."""
    nums: dict[str, Number] = {}
    tag = sample  # macro names spell the sample out, so they stay put when samples change
    for cat in (OVERALL, *CATEGORIES):
        for pop, frame in (("all", res.shares), ("pos", res.shares_positive)):
            g = frame.loc[(frame["sample"] == sample) & (frame["category"] == cat)]
            if len(g):
                nums.update(_share_numbers(f"{tag} {pop} {cat}", g))
    nums.update(_origin_numbers(res, sample))
    rel = res.relevance.loc[
        (res.relevance["sample"] == sample) & (res.relevance["category"] == OVERALL)
    ]
    for r in rel.itertuples():
        level = SEVERITY_NAMES[int(r.response_sev)].lower()
        nums[f"{tag} relevance three at {level}"] = pct(r.share)
        nums[f"{tag} relevance three at {level} ci"] = ci(r.ci_lo, r.ci_hi)
        nums[f"{tag} relevance n at {level}"] = count(int(r.n))
    asym = res.asymmetry.get(sample)
    if asym is not None:
        om = asym.omnibus.iloc[0]
        nums[f"{tag} asym chi"] = real(om["statistic"], 1)
        nums[f"{tag} asym dof"] = count(int(om["dof"])) if pd.notna(om["dof"]) else text("n/a")
        nums[f"{tag} asym p"] = pvalue(om["pvalue"])
        nums[f"{tag} asym v"] = real(om["cramers_v"])
        nums[f"{tag} asym v ci"] = ci(om["cramers_v_lo"], om["cramers_v_hi"], pct=False, digits=2)
        for r in asym.rates.itertuples():
            nums[f"{tag} fail {r.category}"] = pct(r.share)
            nums[f"{tag} fail {r.category} ci"] = ci(r.ci_lo, r.ci_hi)
            nums[f"{tag} fail {r.category} n"] = count(r.n)
    return nums


def _record_numbers(res: TransitionResults, sample: str) -> dict[str, Number]:
    """Escalations from zero counted per record, and prompts graded zero, of one sample."""
    nums: dict[str, Number] = {}
    if res.origin_records is not None:
        org = res.origin_records
        r = org.loc[(org["sample"] == sample) & (org["unit"] == "records")]
        if len(r):
            r = r.iloc[0]
            key = f"{sample} escalations from zero records"
            nums[f"{key} k"] = count(int(r["k"]))
            nums[f"{key} n"] = count(int(r["n"]))
            if r["n"]:
                nums[key] = pct(r["share"])
                nums[f"{key} ci"] = ci(r["ci_lo"], r["ci_hi"])
            else:
                nums[key] = text("no escalations")
                nums[f"{key} ci"] = text("n/a")
    if res.prompts_zero and sample in res.prompts_zero:
        zero, total = res.prompts_zero[sample]
        nums[f"{sample} prompts graded zero"] = count(zero)
        nums[f"{sample} prompts"] = count(total)
    return nums


def _clustered_numbers(res: TransitionResults, samples: Sequence[str]) -> dict[str, Number]:
    """The record-clustered asymmetry test per requested sample; words where not estimable."""
    nums: dict[str, Number] = {}
    for sample, fit in (res.clustered or {}).items():
        if sample not in samples:
            continue
        key = f"{sample} asym clustered"
        why = text(fit.note or "not estimable")
        nums[f"{key} records"] = count(fit.n_clusters)
        nums[f"{key} n"] = count(fit.n_obs)
        ok = fit.estimable and np.isfinite(fit.factor_p)
        nums[f"{key} wald"] = real(fit.factor_wald, 1) if ok else why
        nums[f"{key} df"] = count(fit.factor_df) if ok else why
        nums[f"{key} p"] = pvalue(fit.factor_p) if ok else why
    return nums


def _confirmatory_numbers(res: TransitionResults) -> dict[str, Number]:
    conf = confirmatory_tests(res)
    nums: dict[str, Number] = {"confirmatory tests": count(len(conf))}
    for r in conf.itertuples():
        key = f"confirmatory {r.test}"
        ok = np.isfinite(r.pvalue)
        nums[f"{key} p"] = pvalue(r.pvalue) if ok else text("not testable")
        nums[f"{key} p holm"] = pvalue(r.p_holm) if ok else text("not testable")
    return nums


def paper_numbers(res: TransitionResults, samples: Sequence[str]) -> dict[str, Number]:
    """Raw numbers keyed by plain words; macro names are derived from the keys."""
    nums: dict[str, Number] = {"ci level": pct(1 - res.alpha, 0)}
    for sample in samples:
        nums.update(_sample_numbers(res, sample))
    for sample in samples:
        nums.update(_record_numbers(res, sample))
    if res.paired is not None:
        nums.update(_paired_numbers(res.paired))
    nums.update(_clustered_numbers(res, samples))
    nums.update(_confirmatory_numbers(res))
    return nums


def _paired_numbers(paired: PairedSideComparison) -> dict[str, Number]:
    nums: dict[str, Number] = {}
    for key, value in paired.sample.items():
        nums[f"hh {key.replace('_', ' ')}"] = count(value)
    s = paired.severity.set_index("category")
    o = s.loc[OVERALL]
    nums["hh pairs"] = count(int(o["n_pairs"]))
    nums["hh chosen lower"] = pct(o["share_chosen_lower"])
    nums["hh chosen higher"] = pct(o["share_chosen_higher"])
    for cat, r in s.iterrows():
        tag = "hh" if cat == OVERALL else f"hh {cat}"
        nums[f"{tag} untied"] = count(int(r["n_untied"]))
        if np.isfinite(r["rbc"]):
            nums[f"{tag} rbc"] = real(r["rbc"])
            nums[f"{tag} rbc ci"] = ci(r["rbc_lo"], r["rbc_hi"], pct=False, digits=2)
        else:
            nums[f"{tag} rbc"] = text("no untied pairs")
            nums[f"{tag} rbc ci"] = text("n/a")
        for test in ("wilcoxon", "pratt", "sign"):
            p = r[f"{test}_p"]
            nums[f"{tag} {test} p"] = pvalue(p) if np.isfinite(p) else text("no pairs")
            if cat != OVERALL:
                holm = r[f"{test}_p_holm"]
                nums[f"{tag} {test} p holm"] = (
                    pvalue(holm) if np.isfinite(holm) else text("no pairs")
                )
    d = paired.deescalation
    for r in d.loc[d["population"] == "prompt_positive"].itertuples():
        tag = "hh deesc" if r.category == OVERALL else f"hh deesc {r.category}"
        nums[f"{tag} pairs"] = count(int(r.n_pairs))
        if not r.n_pairs:
            for suffix in ("diff", "diff ci", "chosen", "rejected", "mcnemar p"):
                nums[f"{tag} {suffix}"] = text("no pairs")
            continue
        nums[f"{tag} chosen"] = pct(r.share_chosen)
        nums[f"{tag} rejected"] = pct(r.share_rejected)
        nums[f"{tag} diff"] = pp(r.diff)
        nums[f"{tag} diff ci"] = ci(r.diff_lo, r.diff_hi, points=True)
        nums[f"{tag} mcnemar p"] = pvalue(r.mcnemar_p)
    return nums
