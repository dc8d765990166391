"""Prompt -> response risk transitions on judged records.

Pure functions on pandas frames, called from the analysis notebooks. The
input is a judgments frame with ``record_id``, ``prompt_severity_<cat>`` and
``response_severity_<cat>`` for every category in
:data:`harmtrace.taxonomy.CATEGORIES` (nullable ints 0..3; the response
columns are null for records without a response) and ``relevance`` (1..3),
optionally merged with record columns (``dataset``, ``hh_side``,
``hh_pair_id``, ...).

Most functions take the *long* frame from :func:`long_format`: one row per
record x category, plus the ``"overall"`` pseudo-category (record severity =
max over categories). Outputs are tidy frames with counts, shares and 95%
intervals, so a notebook only formats them.

Two populations recur. A record x category whose prompt is already at
severity 0 cannot de-escalate, so a (0, 0) pair counts as "preserve" and
dilutes the de-escalation share; every share function therefore lets the
caller restrict to prompts with severity > 0 (``prompt_positive``), which is
the population where de-escalation is possible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from harmtrace.stats import (
    adjust_pvalues,
    chi2_independence,
    fisher_exact_2x2,
    newcombe_paired_diff_ci,
    paired_ordinal_tests,
    rank_biserial_paired_ci,
)
from harmtrace.taxonomy import CATEGORIES, RELEVANCE_LEVELS, SEVERITY_LEVELS, SIDES, TRANSITIONS

__all__ = [
    "CATEGORY_LEVELS",
    "OVERALL",
    "POOLED",
    "CategoryAsymmetry",
    "PairedSideComparison",
    "add_pooled",
    "category_asymmetry",
    "escalation_origin",
    "escalation_relevance",
    "long_format",
    "overall_severity",
    "paired_sample",
    "paired_side_comparison",
    "persistence_drift",
    "relevance_by_response_severity",
    "severity_matrix",
    "transition",
    "transition_shares",
    "wilson_interval",
]

OVERALL = "overall"
"""Pseudo-category: the record's maximum severity over all categories."""
POOLED = "pooled"
"""Pseudo-category from :func:`add_pooled`: every record x real category row."""
CATEGORY_LEVELS: tuple[str, ...] = (*CATEGORIES, OVERALL, POOLED)

HH_SIDES = ("chosen", "rejected")
_DROP_BY_DEFAULT = ("prompt", "response")  # raw texts: no need to copy them 5x


def _col(side: str, category: str) -> str:
    return f"{side}_severity_{category}"


def _as_float(x) -> np.ndarray:
    """Nullable ints / objects -> float array with NaN for missing."""
    return pd.Series(x).astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def _index_of(*xs) -> pd.Index | None:
    for x in xs:
        if isinstance(x, pd.Series):
            return x.index
    return None


# --------------------------------------------------------------------------- basics


def transition(prompt_sev, response_sev) -> pd.Series:
    """Transition of each pair: de-escalate (response < prompt), preserve (=), escalate (>).

    Returns a Categorical Series with categories :data:`TRANSITIONS` (in that
    order); missing where either severity is missing. A (0, 0) pair is
    "preserve"; see the module docstring for the prompt-positive population.
    """
    p, r = _as_float(prompt_sev), _as_float(response_sev)
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
    values = np.column_stack([_as_float(df[c]) for c in cols]) if len(df) else np.empty((0, 4))
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
        part["prompt_sev"] = pd.array(_as_float(p), dtype="Float64").astype("Int8")
        part["response_sev"] = pd.array(_as_float(r), dtype="Float64").astype("Int8")
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


def _subset(long: pd.DataFrame, prompt_positive_only: bool) -> pd.DataFrame:
    if not prompt_positive_only:
        return long
    return long.loc[(long["prompt_sev"] > 0).fillna(False).astype(bool)]


def _groupby(df: pd.DataFrame, by: Sequence[str]):
    return df.groupby(list(by), observed=True, dropna=False, sort=True)


def wilson_interval(k, n, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """statsmodels' Wilson interval, vectorised, NaN (without warnings) where ``n == 0``."""
    kk = np.atleast_1d(np.asarray(k, dtype=float))
    nn = np.atleast_1d(np.asarray(n, dtype=float))
    kk, nn = np.broadcast_arrays(kk, nn)
    lo, hi = np.full(kk.shape, np.nan), np.full(kk.shape, np.nan)
    ok = nn > 0
    if ok.any():
        lo[ok], hi[ok] = proportion_confint(kk[ok], nn[ok], alpha=alpha, method="wilson")
    return lo, hi


def _newcombe(k1: int, n1: int, k2: int, n2: int, alpha: float) -> tuple[float, float, float]:
    """Difference of independent proportions with statsmodels' Newcombe interval."""
    if n1 <= 0 or n2 <= 0:
        return (np.nan, np.nan, np.nan)
    lo, hi = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", alpha=alpha)
    return (k1 / n1 - k2 / n2, float(lo), float(hi))


def _ratio(k1: int, n1: int, k2: int, n2: int, alpha: float) -> tuple[float, float, float]:
    """Risk ratio with statsmodels' adjusted-log interval (Katz on counts + 0.5).

    The adjustment keeps the interval finite when a group has no events. (statsmodels'
    Koopman score interval is not used: it returns intervals that exclude the estimate
    when a proportion is 0 or 1.)
    """
    if n1 <= 0 or n2 <= 0 or k1 + k2 == 0:
        return (np.nan, np.nan, np.nan)
    lo, hi = confint_proportions_2indep(
        k1, n1, k2, n2, compare="ratio", method="log-adjusted", alpha=alpha
    )
    rr = (k1 / n1) / (k2 / n2) if k2 else np.inf
    return (float(rr), float(lo), float(hi))


def _with_ci(out: pd.DataFrame, k: str, n: str, alpha: float, prefix: str = "") -> pd.DataFrame:
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
    return _with_ci(out, "k", "n", alpha)


# --------------------------------------------------------------------------- shares


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
    return _with_ci(out, "count", "n", alpha)


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
    return _with_ci(out, f"n_rel{max(RELEVANCE_LEVELS)}", "n", alpha)


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


# --------------------------------------------------------------------------- category asymmetry


@dataclass(frozen=True)
class CategoryAsymmetry:
    """Result of :func:`category_asymmetry` (three tidy frames)."""

    rates: pd.DataFrame
    """Per category: ``category, k_fail, n, share, ci_lo, ci_hi`` (failure to de-escalate)."""
    omnibus: pd.DataFrame
    """One row: chi-square test of category x de-escalated, with Cramér's V and CI."""
    pairwise: pd.DataFrame
    """Per category pair: risk ratio, risk difference, odds ratio (CIs), Fisher and Holm p."""


_PAIRWISE_COLUMNS = [
    "category_a",
    "category_b",
    "k_a",
    "n_a",
    "k_b",
    "n_b",
    "risk_ratio",
    "rr_lo",
    "rr_hi",
    "risk_diff",
    "rd_lo",
    "rd_hi",
    "odds_ratio",
    "or_lo",
    "or_hi",
    "or_method",
    "pvalue",
    "p_holm",
]


def category_asymmetry(
    long: pd.DataFrame,
    categories: Sequence[str] = CATEGORIES,
    reference: str | None = None,
    alpha: float = 0.05,
    n_resamples: int = 2000,
    seed: int = 0,
) -> CategoryAsymmetry:
    """Does the difficulty of de-escalation differ between harm categories?

    Population: record x category rows with prompt severity > 0 (the only
    ones that can de-escalate). Outcome: *failure* to de-escalate (preserve or
    escalate). Omnibus: Pearson chi-square on the category x {failed,
    de-escalated} table with bias-corrected Cramér's V and a seeded bootstrap
    CI. Pairwise: for each pair (``category_a``, ``category_b``) - all pairs
    in ``categories`` order, or each category against ``reference`` - the
    risk ratio of failure a / b (adjusted-log CI, finite with zero cells), the
    Newcombe difference a - b, the odds ratio (see
    :func:`harmtrace.stats.fisher_exact_2x2` for exact vs Woolf CI) and a
    two-sided Fisher exact p-value, Holm-adjusted over the pairs (``p_holm``).
    """
    cats = list(categories)
    d = long.loc[long["category"].isin(cats) & long["transition"].notna()]
    d = d.loc[(d["prompt_sev"] > 0).fillna(False).astype(bool)]
    fail = d["transition"] != "de-escalate"
    k = {c: int(fail[d["category"] == c].sum()) for c in cats}
    n = {c: int((d["category"] == c).sum()) for c in cats}
    rates = pd.DataFrame(
        {"category": cats, "k_fail": [k[c] for c in cats], "n": [n[c] for c in cats]}
    )
    rates = _with_ci(rates, "k_fail", "n", alpha)

    table = np.array([[k[c], n[c] - k[c]] for c in cats], dtype=float).reshape(-1, 2)
    chi = chi2_independence(table, alpha=alpha, n_resamples=n_resamples, seed=seed)
    omnibus = pd.DataFrame([{"categories": ",".join(cats), **chi.to_dict()}])

    if reference is None:
        pairs = list(combinations(cats, 2))
    else:
        if reference not in cats:
            raise ValueError(f"reference {reference!r} not among {cats}")
        pairs = [(c, reference) for c in cats if c != reference]
    rows = []
    for a, b in pairs:
        rr, rr_lo, rr_hi = _ratio(k[a], n[a], k[b], n[b], alpha)
        diff, d_lo, d_hi = _newcombe(k[a], n[a], k[b], n[b], alpha)
        if n[a] > 0 and n[b] > 0:
            fisher = fisher_exact_2x2([[k[a], n[a] - k[a]], [k[b], n[b] - k[b]]], alpha)
        else:
            fisher = {"odds_ratio": np.nan, "or_lo": np.nan, "or_hi": np.nan, "or_method": ""}
            fisher["pvalue"] = np.nan
        rows.append(
            {
                "category_a": a,
                "category_b": b,
                "k_a": k[a],
                "n_a": n[a],
                "k_b": k[b],
                "n_b": n[b],
                "risk_ratio": rr,
                "rr_lo": rr_lo,
                "rr_hi": rr_hi,
                "risk_diff": diff,
                "rd_lo": d_lo,
                "rd_hi": d_hi,
                **fisher,
            }
        )
    pairwise = pd.DataFrame(rows, columns=_PAIRWISE_COLUMNS[:-1])
    pairwise = pairwise.rename(columns={"pvalue": "p_fisher"})
    pairwise["p_holm"] = adjust_pvalues(pairwise["p_fisher"].to_numpy(dtype=float), "holm")
    return CategoryAsymmetry(rates=rates, omnibus=omnibus, pairwise=pairwise)


# --------------------------------------------------------------------------- paired sides


@dataclass(frozen=True)
class PairedSideComparison:
    """Result of :func:`paired_side_comparison` (tidy frames)."""

    severity: pd.DataFrame
    """Per category: paired response-severity differences (chosen - rejected)."""
    deescalation: pd.DataFrame
    """Per category and population: de-escalation share by side, paired difference."""
    shares: pd.DataFrame
    """Transition shares per category and side (unpaired view, all records)."""
    sample: dict[str, int]
    """How the paired sample was formed: ``pairs_total``, ``context_differs`` (pairs whose
    earlier turns differ, excluded), ``context_differs_prompt_differs`` (of those, pairs
    whose prompt severity differs between the sides in some category), ``pairs_used``."""


def _pair_table(df: pd.DataFrame, categories: Sequence[str]) -> pd.DataFrame:
    for col in ("hh_side", "hh_pair_id"):
        if col not in df.columns:
            raise KeyError(f"paired comparison needs column {col!r}")
    sub = df.loc[df["hh_side"].isin(HH_SIDES) & df["hh_pair_id"].notna()]
    dup = sub.duplicated(["hh_pair_id", "hh_side"])
    if dup.any():
        ids = sub.loc[dup, "hh_pair_id"].unique()[:5].tolist()
        raise ValueError(f"more than one record per (hh_pair_id, hh_side), e.g. {ids}")
    long = long_format(sub, keep=["hh_pair_id", "hh_side"], dropna=False)
    long = long.loc[long["category"].isin([OVERALL, *categories])]
    cols = ["prompt_sev", "response_sev", "transition"]
    sides = [
        long.loc[long["hh_side"] == s]
        .set_index(["hh_pair_id", "category"])[cols]
        .add_suffix(f"_{s}")
        for s in HH_SIDES
    ]
    return sides[0].join(sides[1], how="inner").reset_index()


def paired_sample(df: pd.DataFrame, categories: Sequence[str] = CATEGORIES):
    """The pairs that share their dialogue up to the final response, and how many do not.

    A pair whose sides differ before the final response (``hh_context_differs``) is not
    two answers to one prompt, so it is left out of every paired comparison. Returns
    ``(pairs, sample)``: the pair table of the kept pairs and the counts of
    :attr:`PairedSideComparison.sample`.
    """
    pairs = _pair_table(df, categories)
    ids = pairs["hh_pair_id"].unique()
    differs: set = set()
    if "hh_context_differs" in df.columns:
        flag = df["hh_context_differs"].astype("boolean").fillna(False).astype(bool)
        differs = set(df.loc[flag, "hh_pair_id"]) & set(ids)
    real = pairs.loc[pairs["category"].isin(categories)]
    sev_differs = real.loc[
        _as_float(real["prompt_sev_chosen"]) != _as_float(real["prompt_sev_rejected"]),
        "hh_pair_id",
    ]
    sample = {
        "pairs_total": len(ids),
        "context_differs": len(differs),
        "context_differs_prompt_differs": len(differs & set(sev_differs)),
        "pairs_used": len(ids) - len(differs),
    }
    return pairs.loc[~pairs["hh_pair_id"].isin(differs)].reset_index(drop=True), sample


def paired_side_comparison(
    df: pd.DataFrame,
    categories: Sequence[str] = CATEGORIES,
    alpha: float = 0.05,
    n_resamples: int = 2000,
    seed: int = 0,
) -> PairedSideComparison:
    """Chosen vs rejected hh-rlhf responses to the same prompt, compared within pairs.

    ``df`` is a judgments frame merged with ``hh_side`` and ``hh_pair_id`` (and
    ``hh_context_differs``, see :func:`paired_sample`); rows of other datasets (no
    side) are ignored; a pair counts for a category when both responses have a
    severity. ``severity`` rows ("overall" first, then ``categories``): ``n_pairs``,
    counts and shares of pairs where chosen is lower / equal / higher, ``mean_diff``
    (chosen - rejected), ``n_untied`` (pairs with a non-zero difference), the Wilcoxon
    signed-rank p with zeros dropped (primary), with Pratt's zero handling and the
    exact sign test (sensitivity), matched-pairs rank-biserial (negative = chosen
    safer) with seeded bootstrap CI, and Holm-adjusted p-values over the real
    categories (``overall`` is a separate primary test and gets NaN there).
    ``deescalation`` rows, for population "all" and "prompt_positive" (both sides'
    prompts > 0): de-escalation share of each side, their difference with Newcombe's
    paired score CI (primary) and, for reference, the independent-samples Newcombe CI,
    and the exact McNemar p-value (statsmodels).
    """
    cats = [OVERALL, *categories]
    pairs, sample = paired_sample(df, categories)
    sev_rows, de_rows = [], []
    for cat in cats:
        pc = pairs.loc[pairs["category"] == cat]
        ch = _as_float(pc["response_sev_chosen"])
        rj = _as_float(pc["response_sev_rejected"])
        ok = ~(np.isnan(ch) | np.isnan(rj))
        diff = ch[ok] - rj[ok]
        m = int(diff.size)
        lower, equal, higher = int((diff < 0).sum()), int((diff == 0).sum()), int((diff > 0).sum())
        rbc, rbc_lo, rbc_hi = rank_biserial_paired_ci(diff, alpha, n_resamples, seed)
        tests = paired_ordinal_tests(diff)
        with np.errstate(invalid="ignore", divide="ignore"):
            sev_rows.append(
                {
                    "category": cat,
                    "n_pairs": m,
                    "n_chosen_lower": lower,
                    "n_equal": equal,
                    "n_chosen_higher": higher,
                    "n_untied": tests.n_untied,
                    "share_chosen_lower": lower / m if m else np.nan,
                    "share_equal": equal / m if m else np.nan,
                    "share_chosen_higher": higher / m if m else np.nan,
                    "mean_diff": float(diff.mean()) if m else np.nan,
                    "wilcoxon_p": tests.wilcoxon_p,
                    "pratt_p": tests.pratt_p,
                    "sign_p": tests.sign_p,
                    "rbc": rbc,
                    "rbc_lo": rbc_lo,
                    "rbc_hi": rbc_hi,
                }
            )
        tc, tr = pc["transition_chosen"], pc["transition_rejected"]
        both = (tc.notna() & tr.notna()).to_numpy()
        pos = (
            both
            & (_as_float(pc["prompt_sev_chosen"]) > 0)
            & (_as_float(pc["prompt_sev_rejected"]) > 0)
        )
        dc = (tc == "de-escalate").to_numpy()
        dr = (tr == "de-escalate").to_numpy()
        for population, mask in (("all", both), ("prompt_positive", pos)):
            a = int((dc & dr & mask).sum())
            b = int((dc & ~dr & mask).sum())
            c = int((~dc & dr & mask).sum())
            dd = int((~dc & ~dr & mask).sum())
            npairs = a + b + c + dd
            delta, lo, hi = newcombe_paired_diff_ci(a, b, c, dd, alpha)
            _, ilo, ihi = _newcombe(a + b, npairs, a + c, npairs, alpha)
            de_rows.append(
                {
                    "category": cat,
                    "population": population,
                    "n_pairs": npairs,
                    "k_chosen": a + b,
                    "k_rejected": a + c,
                    "share_chosen": (a + b) / npairs if npairs else np.nan,
                    "share_rejected": (a + c) / npairs if npairs else np.nan,
                    "diff": delta,
                    "diff_lo": lo,
                    "diff_hi": hi,
                    "diff_lo_indep": ilo,
                    "diff_hi_indep": ihi,
                    "n_only_chosen": b,
                    "n_only_rejected": c,
                    "mcnemar_p": (
                        float(mcnemar(np.array([[a, b], [c, dd]]), exact=True).pvalue)
                        if npairs
                        else np.nan
                    ),
                }
            )
    severity = pd.DataFrame(sev_rows)
    real = severity["category"] != OVERALL
    for col in ("wilcoxon_p", "pratt_p", "sign_p"):
        adj = np.full(len(severity), np.nan)
        adj[real.to_numpy()] = adjust_pvalues(severity.loc[real, col].to_numpy(dtype=float))
        severity[f"{col}_holm"] = adj
    sub = df.loc[df["hh_side"].isin(HH_SIDES)] if "hh_side" in df.columns else df.iloc[:0]
    long = long_format(sub, keep=["hh_side"])
    long = long.loc[long["category"].isin(cats)]
    shares = transition_shares(long, by=["category", "hh_side"], alpha=alpha)
    return PairedSideComparison(
        severity=severity, deescalation=pd.DataFrame(de_rows), shares=shares, sample=sample
    )
