"""How far a grader's judgments can be trusted, against every human signal at hand.

Which checks run for a dataset depends on the labels its records carry, never on its
name, so a user's own labelled data gets the same checks:

* **category labels** (``label_*``, the OpenAI moderation set): per category AUROC and
  AUPRC of the prompt probability, F1, recall and precision of severity >= 2;
* **refusal judgments** (``air_judge_score``, AIR-Bench: 1 refused, 0.5 partial, 0
  complied): agreement of the grader's refusal flag (Cohen's kappa, sensitivity,
  specificity) and of its relevance, read as an ordinal refusal scale (judge 1 ->
  relevance 1, 0.5 -> 2, 0 -> 3; quadratic-weighted kappa and ordinal Krippendorff's
  alpha); and the share of refused responses graded Medium or higher on the response
  side (a refusal that names a harm is not that harm), Wilson intervals;
* **preferences** (``hh_pair_id`` and ``hh_side``, HH-RLHF): the share of pairs whose
  rejected response is graded at least as severe as the chosen one, per category and
  overall (pairs whose earlier turns differ are left out, see
  :func:`harmtrace.analysis.transitions.paired_sample`);
* **prompt/response detection asymmetry**: the grader's sensitivity on prompts vs on
  responses where both are labelled harmful. On AIR-Bench every prompt is a risky
  request by construction and a response the judge scores as complied carries the
  harm, so on complied records both sides are positives: the paired difference in
  detection (Newcombe's paired interval, exact McNemar test) measures how differently
  the grader sees the same harm in a request and in an answer; prompts graded 0 on
  such a benchmark are the grader's under-detection;
* **human labels of responses** (``pyr_refusal``, ``pyr_harm_score``): refusal and
  harm read on the answer side, in :mod:`harmtrace.analysis.response_validity`;
* **another grader** (e.g. ``human`` labels of the same records): per category and
  side, quadratic-weighted kappa and ordinal Krippendorff's alpha with bootstrap CIs,
  and the detection asymmetry with the reference grader's non-zero severities as
  positives.

The checks are computed in :mod:`harmtrace.analysis.validity_checks`, the LaTeX tables
formatted in :mod:`harmtrace.analysis.validity_tables`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harmtrace.analysis import response_validity as rv
from harmtrace.analysis.rates import TOO_FEW, rate_numbers
from harmtrace.analysis.transitions import overall_severity
from harmtrace.analysis.validity_checks import (
    detection_asymmetry,
    moderation_metrics,
    preference_agreement,
    reference_agreement,
    refusal_agreement,
)
from harmtrace.graders.labels import has_labels
from harmtrace.report.macros import Number, ci, count, pct, pp, pvalue, real, text

__all__ = [
    "DatasetValidity",
    "analyse_validity",
    "validity_numbers",
]


# --------------------------------------------------------------------------- per dataset


def _any_flag(frame: pd.DataFrame, side: str, level: int = 1) -> np.ndarray:
    sev = overall_severity(frame, side).astype("Float64").to_numpy(float, na_value=np.nan)
    return sev >= level


@dataclass(frozen=True)
class DatasetValidity:
    """The checks :func:`analyse_validity` could run for one dataset (others are None)."""

    dataset: str
    n_records: int
    moderation: pd.DataFrame | None = field(default=None, repr=False)
    preferences: pd.DataFrame | None = field(default=None, repr=False)
    paired_sample: dict | None = None
    refusal: dict | None = field(default=None, repr=False)
    detection: dict | None = field(default=None, repr=False)
    prompts_graded_zero: int | None = None
    reference: pd.DataFrame | None = field(default=None, repr=False)
    reference_detection: dict | None = field(default=None, repr=False)
    labelled_refusal: dict | None = field(default=None, repr=False)
    response_harm: pd.DataFrame | None = field(default=None, repr=False)


def analyse_dataset(
    frame: pd.DataFrame,
    reference: pd.DataFrame | None = None,
    alpha: float = 0.05,
    n_resamples: int = 2000,
    seed: int = 0,
) -> DatasetValidity:
    """Every check whose labels ``frame`` (one dataset, judged) carries."""
    dataset = str(frame["dataset"].iloc[0])
    kwargs: dict[str, object] = {}
    if has_labels(frame) and any(
        frame.get(c) is not None and frame[c].notna().any()
        for c in frame.columns
        if c.startswith("label_")
    ):
        kwargs["moderation"] = moderation_metrics(frame.reset_index(drop=True), alpha)
    if "hh_pair_id" in frame.columns and frame["hh_pair_id"].notna().any():
        prefs, sample = preference_agreement(frame, alpha)
        kwargs["preferences"], kwargs["paired_sample"] = prefs, sample
    if "air_judge_score" in frame.columns and frame["air_judge_score"].notna().any():
        kwargs["refusal"] = refusal_agreement(frame, alpha, n_resamples, seed)
        judge = frame["air_judge_score"].astype("Float64").to_numpy(float, na_value=np.nan)
        complied = np.where(np.isnan(judge), np.nan, (judge == 0.0).astype(float))
        kwargs["detection"] = detection_asymmetry(
            np.ones(len(frame)),  # every benchmark prompt is a risky request
            _any_flag(frame, "prompt"),
            complied,
            _any_flag(frame, "response"),
            alpha,
        )
        prompt = overall_severity(frame, "prompt").astype("Float64")
        kwargs["prompts_graded_zero"] = int((prompt == 0).sum())
    if rv.has_refusal_labels(frame):
        kwargs["labelled_refusal"] = rv.labelled_refusal(frame, alpha, n_resamples, seed)
    if rv.has_harm_ratings(frame):
        kwargs["response_harm"] = rv.response_harm(frame, alpha, n_resamples, seed)
    if reference is not None:
        ref = reference.loc[reference["record_id"].isin(frame["record_id"])]
        if len(ref):
            kwargs["reference"] = reference_agreement(frame, ref, alpha, n_resamples, seed)
            merged = frame[["record_id"]].merge(ref, on="record_id", how="left")
            tp = np.where(
                overall_severity(merged, "prompt").isna(),
                np.nan,
                _any_flag(merged, "prompt").astype(float),
            )
            tr = np.where(
                overall_severity(merged, "response").isna(),
                np.nan,
                _any_flag(merged, "response").astype(float),
            )
            kwargs["reference_detection"] = detection_asymmetry(
                tp, _any_flag(frame, "prompt"), tr, _any_flag(frame, "response"), alpha
            )
    return DatasetValidity(dataset, len(frame), **kwargs)  # type: ignore[arg-type]


def analyse_validity(
    df: pd.DataFrame,
    reference: pd.DataFrame | None = None,
    alpha: float = 0.05,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, DatasetValidity]:
    """:func:`analyse_dataset` for every dataset of a judged frame (sorted by name).

    ``reference`` is another grader's judgments (e.g. human labels) of some of the
    same records, or None.
    """
    return {
        name: analyse_dataset(g.reset_index(drop=True), reference, alpha, n_resamples, seed)
        for name, g in sorted(df.groupby("dataset", sort=True), key=lambda kv: kv[0])
    }


# --------------------------------------------------------------------------- numbers


def _detection_numbers(key: str, det: Mapping[str, object]) -> dict[str, Number]:
    nums = {
        **rate_numbers(f"{key} prompt sensitivity", det["prompt"]),  # type: ignore[arg-type]
        **rate_numbers(f"{key} response sensitivity", det["response"]),  # type: ignore[arg-type]
    }
    paired = det["paired"]
    nums[f"{key} pairs"] = count(paired["n"])  # type: ignore[index]
    nums[f"{key} prompt only"] = count(paired["prompt_only"])  # type: ignore[index]
    nums[f"{key} response only"] = count(paired["response_only"])  # type: ignore[index]
    if det["note"]:
        nums[f"{key} diff"] = text(str(det["note"]))
        nums[f"{key} diff ci"] = text("n/a")
        nums[f"{key} mcnemar p"] = text(str(det["note"]))
    else:
        diff, lo, hi = det["diff"]  # type: ignore[misc]
        nums[f"{key} diff"] = pp(diff)
        nums[f"{key} diff ci"] = ci(lo, hi, pct=False, digits=1, points=True)
        nums[f"{key} mcnemar p"] = pvalue(det["mcnemar_p"])  # type: ignore[arg-type]
    return nums


def _moderation_numbers(tag: str, moderation: pd.DataFrame) -> dict[str, Number]:
    nums: dict[str, Number] = {}
    for r in moderation.itertuples():
        key = f"{tag} {r.category}"
        nums[f"{key} known"] = count(r.n_known)
        nums[f"{key} positive"] = count(r.n_positive)
        for m in ("auroc", "auprc", "f1", "precision"):
            v = getattr(r, m)
            nums[f"{key} {m}"] = real(v) if np.isfinite(v) else text(TOO_FEW)
        nums.update(
            rate_numbers(
                f"{key} recall",
                {
                    "k": r.recall_k,
                    "n": r.recall_n,
                    "share": r.recall_share,
                    "ci_lo": r.recall_ci_lo,
                    "ci_hi": r.recall_ci_hi,
                },
            )
        )
    return nums


PREFERENCE_LABELS = {
    "at_least": "rejected at least chosen",
    "above": "rejected above chosen",
    "tied": "tied",
}
"""Preference outcomes reported, with the words of their keys."""


def _preference_numbers(
    tag: str, preferences: pd.DataFrame, sample: dict | None
) -> dict[str, Number]:
    s = sample or {}
    nums: dict[str, Number] = {
        f"{tag} pairs total": count(s.get("pairs_total", 0)),
        f"{tag} pairs context differs": count(s.get("context_differs", 0)),
        f"{tag} pairs used": count(s.get("pairs_used", 0)),
    }
    for r in preferences.itertuples():
        key = f"{tag} {r.category}"
        nums[f"{key} pairs"] = count(r.n_pairs)
        for name, label in PREFERENCE_LABELS.items():
            nums.update(
                rate_numbers(
                    f"{key} {label}",
                    {
                        "k": getattr(r, f"{name}_k"),
                        "n": r.n_pairs,
                        "share": getattr(r, name),
                        "ci_lo": getattr(r, f"{name}_lo"),
                        "ci_hi": getattr(r, f"{name}_hi"),
                    },
                )
            )
    return nums


def _refusal_numbers(tag: str, rf: dict) -> dict[str, Number]:
    nums: dict[str, Number] = {
        f"{tag} refusal n": count(rf["n"]),
        f"{tag} judge refused": count(rf["judge_refused"]),
        f"{tag} refusal flagged": count(rf["flagged"]),
    }
    k = rf["kappa"]
    nums[f"{tag} refusal kappa"] = real(k) if np.isfinite(k) else text(TOO_FEW)
    nums[f"{tag} refusal accuracy"] = pct(rf["accuracy"])
    nums.update(rate_numbers(f"{tag} refusal sensitivity", rf["sensitivity"]))
    nums.update(rate_numbers(f"{tag} refusal specificity", rf["specificity"]))
    nums.update(rate_numbers(f"{tag} judge refused graded medium", rf["refused_medium_plus"]))
    nums.update(rate_numbers(f"{tag} flagged refused graded medium", rf["flagged_medium_plus"]))
    nums.update(_agreement_numbers(f"{tag} relevance judge", rf["relevance"]))
    return nums


def validity_numbers(
    results: Mapping[str, DatasetValidity],
    alpha: float,
    reference_grader: str | None = None,
    n_boot: int | None = None,
) -> dict[str, Number]:
    """Numbers under stable keys ``<dataset> <what>``."""
    nums: dict[str, Number] = {
        "ci level": pct(1 - alpha, 0),
        "reference grader": text(reference_grader or "none"),
    }
    if n_boot is not None:
        nums["bootstrap iterations"] = count(n_boot)
    for dataset, res in results.items():
        tag = dataset
        nums[f"{tag} records"] = count(res.n_records)
        if res.moderation is not None:
            nums.update(_moderation_numbers(tag, res.moderation))
        if res.preferences is not None:
            nums.update(_preference_numbers(tag, res.preferences, res.paired_sample))
        if res.refusal is not None:
            nums.update(_refusal_numbers(tag, res.refusal))
        if res.detection is not None:
            nums.update(_detection_numbers(f"{tag} detection", res.detection))
            nums[f"{tag} prompts graded zero"] = count(res.prompts_graded_zero or 0)
        nums.update(
            rv.response_validity_numbers(tag, res.labelled_refusal, res.response_harm, alpha)
        )
        if res.reference is not None:
            for r in res.reference.itertuples():
                nums.update(_agreement_numbers(f"{tag} reference {r.side} {r.category}", r))
        if res.reference_detection is not None:
            nums.update(_detection_numbers(f"{tag} reference detection", res.reference_detection))
    return nums


def _agreement_numbers(key: str, agr) -> dict[str, Number]:
    nums: dict[str, Number] = {f"{key} n": count(int(agr.n))}
    if np.isfinite(agr.kappa_quadratic):
        nums[f"{key} kappa"] = real(agr.kappa_quadratic)
        nums[f"{key} kappa ci"] = ci(agr.kappa_lo, agr.kappa_hi, pct=False, digits=2)
        nums[f"{key} alpha"] = real(agr.alpha_ordinal)
        nums[f"{key} alpha ci"] = ci(agr.alpha_lo, agr.alpha_hi, pct=False, digits=2)
    else:
        for suffix in ("kappa", "kappa ci", "alpha", "alpha ci"):
            nums[f"{key} {suffix}"] = text(agr.note or TOO_FEW)
    nums[f"{key} exact"] = pct(agr.exact) if np.isfinite(agr.exact) else text("n/a")
    return nums
