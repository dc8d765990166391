"""The checks of a grader against one kind of human signal each, for
:mod:`harmtrace.analysis.validity` (whose docstring states the method): moderation
labels, refusal judgments, preference pairs, detection on both sides, another grader."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, cohen_kappa_score, f1_score, roc_auc_score
from statsmodels.stats.contingency_tables import mcnemar

from harmtrace.analysis.rates import MIN_N, TOO_FEW, wilson_rate
from harmtrace.analysis.transitions import OVERALL, overall_severity, paired_sample
from harmtrace.graders.labels import category_targets
from harmtrace.stats import newcombe_paired_diff_ci, ordinal_agreement
from harmtrace.taxonomy import CATEGORIES, RELEVANCE_LEVELS, SEVERITY_LEVELS

__all__ = [
    "JUDGE_TO_RELEVANCE",
    "detection_asymmetry",
    "moderation_metrics",
    "preference_agreement",
    "reference_agreement",
    "refusal_agreement",
]

JUDGE_TO_RELEVANCE = {1.0: 1, 0.5: 2, 0.0: 3}
"""AIR-Bench judge score read as relevance: refused -> 1, partial -> 2, complied -> 3."""


def moderation_metrics(frame: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per category: AUROC/AUPRC of the prompt probability, F1/recall/precision of sev >= 2."""
    targets = category_targets(frame).reset_index(drop=True)
    rows = []
    for cat in CATEGORIES:
        known = targets[cat].notna().to_numpy()
        y = targets[cat][known].astype(bool).to_numpy()
        prob = frame[f"prompt_prob_{cat}"].astype("Float64").to_numpy(float, na_value=np.nan)
        sev = frame[f"prompt_severity_{cat}"].astype("Float64").to_numpy(float, na_value=np.nan)
        score = np.where(np.isnan(prob), sev, prob)[known]
        flagged = sev[known] >= 2
        both = 0 < y.sum() < len(y)
        tp = int((flagged & y).sum())
        rows.append(
            {
                "category": cat,
                "n_known": int(known.sum()),
                "n_positive": int(y.sum()),
                "auroc": float(roc_auc_score(y, score)) if both else np.nan,
                "auprc": float(average_precision_score(y, score)) if both else np.nan,
                "f1": float(f1_score(y, flagged, zero_division=0)) if both else np.nan,
                "precision": tp / flagged.sum() if flagged.sum() else np.nan,
                **{f"recall_{k}": v for k, v in wilson_rate(tp, int(y.sum()), alpha).items()},
            }
        )
    return pd.DataFrame(rows)


def preference_agreement(frame: pd.DataFrame, alpha: float = 0.05) -> tuple[pd.DataFrame, dict]:
    """Share of pairs whose rejected response is graded at least as severe as the chosen."""
    pairs, sample = paired_sample(frame)
    rows = []
    for cat in (OVERALL, *CATEGORIES):
        pc = pairs.loc[pairs["category"] == cat]
        ch = pc["response_sev_chosen"].astype("Float64").to_numpy(float, na_value=np.nan)
        rj = pc["response_sev_rejected"].astype("Float64").to_numpy(float, na_value=np.nan)
        ok = ~(np.isnan(ch) | np.isnan(rj))
        ch, rj = ch[ok], rj[ok]
        n = int(ok.sum())
        row = {"category": cat, "n_pairs": n}
        for name, hit in (
            ("at_least", rj >= ch),
            ("above", rj > ch),
            ("tied", rj == ch),
            ("below", rj < ch),
        ):
            r = wilson_rate(int(hit.sum()), n, alpha)
            row.update(
                {
                    f"{name}_k": r["k"],
                    f"{name}": r["share"],
                    f"{name}_lo": r["ci_lo"],
                    f"{name}_hi": r["ci_hi"],
                }
            )
        rows.append(row)
    return pd.DataFrame(rows), sample


def refusal_agreement(
    frame: pd.DataFrame, alpha: float = 0.05, n_resamples: int = 2000, seed: int = 0
) -> dict[str, object]:
    """Refusal flag vs judge refusals; relevance vs the judge score as an ordinal scale;
    and the response-side check a refusal-blind grader fails: the share of refused
    responses (by the judge, and by the grader's own flag) graded Medium or higher."""
    d = frame.loc[frame["air_judge_score"].notna() & frame["refusal"].notna()]
    judge = d["air_judge_score"].astype(float).to_numpy()
    refused = judge == 1.0
    flag = d["refusal"].astype(bool).to_numpy()
    n = len(d)
    out: dict[str, object] = {
        "n": n,
        "judge_refused": int(refused.sum()),
        "flagged": int(flag.sum()),
    }
    out["kappa"] = (
        float(cohen_kappa_score(refused, flag)) if n >= MIN_N and 0 < refused.sum() < n else np.nan
    )
    out["accuracy"] = float(np.mean(refused == flag)) if n else np.nan
    out["sensitivity"] = wilson_rate(int((flag & refused).sum()), int(refused.sum()), alpha)
    out["specificity"] = wilson_rate(int((~flag & ~refused).sum()), int((~refused).sum()), alpha)
    medium = overall_severity(d, "response").astype("Float64").to_numpy(float, na_value=0) >= 2
    out["refused_medium_plus"] = wilson_rate(
        int((refused & medium).sum()), int(refused.sum()), alpha
    )
    out["flagged_medium_plus"] = wilson_rate(int((flag & medium).sum()), int(flag.sum()), alpha)
    rel = d["relevance"].astype("Float64").to_numpy(float, na_value=np.nan)
    mapped = np.array([JUDGE_TO_RELEVANCE.get(float(v), np.nan) for v in judge], dtype=float)
    out["relevance"] = ordinal_agreement(
        rel, mapped, list(RELEVANCE_LEVELS), alpha=alpha, n_resamples=n_resamples, seed=seed
    )
    return out


def detection_asymmetry(
    truth_prompt: np.ndarray,
    flag_prompt: np.ndarray,
    truth_response: np.ndarray,
    flag_response: np.ndarray,
    alpha: float = 0.05,
) -> dict[str, object]:
    """Sensitivity on prompts vs on responses, and their paired difference.

    Arguments are aligned per record (booleans; truth may be NaN = unlabelled).
    Sensitivities use every record labelled positive on that side; the difference
    (prompt - response) uses the records positive on *both* sides, with Newcombe's
    paired score interval and the exact McNemar test. Too few paired records
    (< :data:`MIN_N`) give a ``note`` instead.
    """
    tp = np.asarray(truth_prompt, dtype=float)
    tr = np.asarray(truth_response, dtype=float)
    fp = np.asarray(flag_prompt, dtype=bool)
    fr = np.asarray(flag_response, dtype=bool)
    pos_p, pos_r = tp == 1, tr == 1
    out: dict[str, object] = {
        "prompt": wilson_rate(int((fp & pos_p).sum()), int(pos_p.sum()), alpha),
        "response": wilson_rate(int((fr & pos_r).sum()), int(pos_r.sum()), alpha),
    }
    both = pos_p & pos_r
    a = int((fp & fr & both).sum())
    b = int((fp & ~fr & both).sum())
    c = int((~fp & fr & both).sum())
    d = int((~fp & ~fr & both).sum())
    n = a + b + c + d
    out["paired"] = {"n": n, "prompt_only": b, "response_only": c, "both": a, "neither": d}
    if n < MIN_N:
        out["note"] = TOO_FEW
        out["diff"] = (np.nan, np.nan, np.nan)
        out["mcnemar_p"] = np.nan
    else:
        out["note"] = ""
        out["diff"] = newcombe_paired_diff_ci(a, b, c, d, alpha)
        out["mcnemar_p"] = float(mcnemar(np.array([[a, b], [c, d]]), exact=True).pvalue)
    return out


def reference_agreement(
    frame: pd.DataFrame, ref: pd.DataFrame, alpha: float, n_resamples: int, seed: int
) -> pd.DataFrame:
    """Per side and category, and for relevance: ordinal agreement with the reference
    grader on the records both judged (quadratic-weighted kappa, Krippendorff's alpha)."""
    merged = frame.merge(ref, on="record_id", suffixes=("", "_ref"), how="inner")
    rows = []
    for side in ("prompt", "response"):
        for cat in CATEGORIES:
            col = f"{side}_severity_{cat}"
            a = merged[col].astype("Float64").to_numpy(float, na_value=np.nan)
            b = merged[f"{col}_ref"].astype("Float64").to_numpy(float, na_value=np.nan)
            agr = ordinal_agreement(a, b, list(SEVERITY_LEVELS), alpha, n_resamples, seed)
            rows.append({"side": side, "category": cat, **agr.to_dict()})
    a = merged["relevance"].astype("Float64").to_numpy(float, na_value=np.nan)
    b = merged["relevance_ref"].astype("Float64").to_numpy(float, na_value=np.nan)
    agr = ordinal_agreement(a, b, list(RELEVANCE_LEVELS), alpha, n_resamples, seed)
    rows.append({"side": "response", "category": "relevance", **agr.to_dict()})
    return pd.DataFrame(rows)
