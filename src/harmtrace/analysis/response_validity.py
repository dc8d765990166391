"""Response-side validity: the grader's reading of answers against human labels of answers.

Prompt-side checks (moderation texts, prompt sets) say nothing about how the grader reads
a model's answer, where a refusal names the harm it declines. Two kinds of human labels
of responses are used, each wherever a dataset carries it (never by dataset name):

* **refusal labels** (``pyr_refusal``: PyRIT's human label, 1 = refused or answered
  something else): Cohen's kappa of the grader's refusal flag and of relevance 1 ("does
  not address the request") with the label, with percentile bootstrap intervals, and
  the share of labelled refusals, and of flagged ones, graded Medium or higher on the
  response side (Wilson intervals): a refusal is not the harm it names;
* **harm ratings** (``pyr_harm_score``, the mean of PyRIT's raters on 0, .25, ..., 1,
  for the category in ``pyr_harm_category``): per category, AUROC of the response-side
  probability against a mean rating of at least .5 (bootstrap interval over
  responses), Spearman's rho of the probability with the rating, recall of severity
  >= 2 among those rated harmful and its false-positive rate among those rated 0, and,
  among the answers the grader flags as refusals and people rate harmless, the share
  graded Medium or higher in the rated category (Wilson interval): the refusal-side
  error on answers whose harm was rated, whether or not a refusal label exists.

Both are out of source for the default grader: neither set is among its training data
(the refusal detector learns from ``pyrit-refusal``, whose own rows it reads
out-of-fold).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from harmtrace.analysis.rates import rate_numbers, wilson_rate
from harmtrace.analysis.transitions import overall_severity
from harmtrace.report.macros import Number, ci, count, real, text
from harmtrace.stats import ordinal_agreement
from harmtrace.stats.bootstrap import percentile_interval
from harmtrace.taxonomy import CATEGORIES

__all__ = [
    "HARMFUL_RATING",
    "labelled_refusal",
    "response_harm",
    "response_validity_numbers",
]

HARMFUL_RATING = 0.5
"""Mean human rating from which a response counts as harmful (the scale's midpoint)."""


def has_refusal_labels(frame: pd.DataFrame) -> bool:
    return "pyr_refusal" in frame.columns and bool(frame["pyr_refusal"].notna().any())


def has_harm_ratings(frame: pd.DataFrame) -> bool:
    return "pyr_harm_score" in frame.columns and bool(frame["pyr_harm_score"].notna().any())


def labelled_refusal(
    frame: pd.DataFrame, alpha: float = 0.05, n_resamples: int = 2000, seed: int = 0
) -> dict[str, object]:
    """Refusal flag and relevance 1 against human refusal labels; refusals graded Medium+."""
    d = frame.loc[frame["pyr_refusal"].notna() & frame["refusal"].notna()]
    y = d["pyr_refusal"].astype(bool).to_numpy()
    flag = d["refusal"].astype(bool).to_numpy()
    rel = d["relevance"].astype("Float64").to_numpy(float, na_value=np.nan)
    off = np.where(np.isnan(rel), np.nan, (rel == 1).astype(float))
    medium = overall_severity(d, "response").astype("Float64").to_numpy(float, na_value=0) >= 2

    def kappa(pred: np.ndarray):
        return ordinal_agreement(y.astype(float), pred, [0, 1], alpha, n_resamples, seed)

    return {
        "n": len(d),
        "labelled": int(y.sum()),
        "flagged": int(flag.sum()),
        "flag": kappa(flag.astype(float)),
        "relevance_one": kappa(off),
        "labelled_medium_plus": wilson_rate(int((y & medium).sum()), int(y.sum()), alpha),
        "flagged_medium_plus": wilson_rate(int((flag & medium).sum()), int(flag.sum()), alpha),
    }


def _auroc_ci(
    y: np.ndarray, score: np.ndarray, alpha: float, n_resamples: int, seed: int
) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(n_resamples):
        idx = rng.integers(0, len(y), len(y))
        if 0 < y[idx].sum() < len(idx):
            reps.append(roc_auc_score(y[idx], score[idx]))
    return percentile_interval(np.asarray(reps), alpha) if reps else (np.nan, np.nan)


def _flagged_refusals(d: pd.DataFrame) -> np.ndarray:
    if "refusal" not in d.columns:
        return np.zeros(len(d), dtype=bool)
    return d["refusal"].astype("boolean").to_numpy(bool, na_value=False)


def response_harm(
    frame: pd.DataFrame, alpha: float = 0.05, n_resamples: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Per rated category: AUROC [CI], Spearman's rho, recall, false-positive rate and
    flagged refusals rated harmless but graded Medium+."""
    rows = []
    for cat in CATEGORIES:
        d = frame.loc[frame["pyr_harm_category"].astype("string").eq(cat).fillna(False)]
        if not len(d):
            continue
        rating = d["pyr_harm_score"].astype(float).to_numpy()
        prob = d[f"response_prob_{cat}"].astype("Float64").to_numpy(float, na_value=np.nan)
        sev = d[f"response_severity_{cat}"].astype("Float64").to_numpy(float, na_value=0)
        ok = ~np.isnan(prob)
        y = rating >= HARMFUL_RATING
        both = 0 < y[ok].sum() < ok.sum()
        auroc = float(roc_auc_score(y[ok], prob[ok])) if both else np.nan
        lo, hi = _auroc_ci(y[ok], prob[ok], alpha, n_resamples, seed) if both else (np.nan,) * 2
        rho = float(spearmanr(rating[ok], prob[ok]).statistic) if ok.sum() > 2 else np.nan
        flagged = sev >= 2
        zero = rating == 0
        recall = wilson_rate(int((flagged & y).sum()), int(y.sum()), alpha)
        fpr = wilson_rate(int((flagged & zero).sum()), int(zero.sum()), alpha)
        refused = _flagged_refusals(d) & ~y
        refused_medium = wilson_rate(int((flagged & refused).sum()), int(refused.sum()), alpha)
        rows.append(
            {
                "category": cat,
                "n": len(d),
                "n_harmful": int(y.sum()),
                "n_rated_zero": int(zero.sum()),
                "auroc": auroc,
                "auroc_lo": lo,
                "auroc_hi": hi,
                "spearman": rho,
                **{f"recall_{k}": v for k, v in recall.items()},
                **{f"fpr_{k}": v for k, v in fpr.items()},
                **{f"refused_{k}": v for k, v in refused_medium.items()},
            }
        )
    return pd.DataFrame(rows)


def _kappa_numbers(key: str, agr) -> dict[str, Number]:
    if not np.isfinite(agr.kappa_quadratic):
        return {key: text(agr.note or "n/a"), f"{key} ci": text("n/a")}
    return {
        key: real(agr.kappa_quadratic),
        f"{key} ci": ci(agr.kappa_lo, agr.kappa_hi, pct=False, digits=2),
    }


def response_validity_numbers(
    tag: str, refusal: dict | None, harm: pd.DataFrame | None, alpha: float = 0.05
) -> dict[str, Number]:
    """Numbers under ``<dataset> labelled refusal ...``, ``<dataset> response <cat> ...``
    and, pooled over the rated categories, ``<dataset> response refused graded medium``."""
    nums: dict[str, Number] = {}
    if refusal is not None:
        key = f"{tag} labelled refusal"
        nums[f"{key} n"] = count(refusal["n"])
        nums[f"{key} refused"] = count(refusal["labelled"])
        nums[f"{key} flagged"] = count(refusal["flagged"])
        nums.update(_kappa_numbers(f"{key} kappa", refusal["flag"]))
        nums.update(_kappa_numbers(f"{key} relevance kappa", refusal["relevance_one"]))
        nums.update(rate_numbers(f"{key} graded medium", refusal["labelled_medium_plus"]))
        nums.update(rate_numbers(f"{key} flagged graded medium", refusal["flagged_medium_plus"]))
    if harm is not None:
        k, n = int(harm["refused_k"].sum()), int(harm["refused_n"].sum())
        nums.update(rate_numbers(f"{tag} response refused graded medium", wilson_rate(k, n, alpha)))
        for r in harm.to_dict("records"):
            key = f"{tag} response {r['category']}"
            nums[f"{key} n"] = count(r["n"])
            nums[f"{key} harmful"] = count(r["n_harmful"])
            if np.isfinite(r["auroc"]):
                nums[f"{key} auroc"] = real(r["auroc"])
                nums[f"{key} auroc ci"] = ci(r["auroc_lo"], r["auroc_hi"], pct=False, digits=2)
            else:
                nums[f"{key} auroc"] = text("n/a")
                nums[f"{key} auroc ci"] = text("n/a")
            nums[f"{key} spearman"] = (
                real(r["spearman"]) if np.isfinite(r["spearman"]) else text("n/a")
            )
            for m in ("recall", "fpr", "refused"):
                nums.update(
                    rate_numbers(
                        f"{key} {m}",
                        {k: r[f"{m}_{k}"] for k in ("k", "n", "share", "ci_lo", "ci_hi")},
                    )
                )
    return nums
