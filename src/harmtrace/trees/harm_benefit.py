"""From tree files to fitted weights and harm-benefit tables.

Labels that exist here: every prompt of the harmful benchmarks (SimpleSafetyTests,
HarmBench, the AIR-Bench prompts) is harmful by construction; a text of a labelled
benign source (the OpenAI moderation set) is benign when none of its known labels is
positive and at least one is known (a missing key is unknown, not 0). The weights are
fitted on all of them (:func:`fit_aggregation`), and every prediction used to evaluate
them is cross-fitted: leave-one-source-out (each harmful benchmark predicted by weights
that never saw it, benign texts spread over the same folds) and stratified k-fold.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from sklearn.metrics import log_loss, roc_auc_score

from harmtrace.errors import HarmtraceError
from harmtrace.trees.aggregate import Weights, design_from_trees, explain, format_effect
from harmtrace.trees.fitting import Fit, fit_weights
from harmtrace.trees.resampling import (
    CrossFit,
    bootstrap_weights,
    cross_fit,
    leave_one_source_out,
    stratified_folds,
)
from harmtrace.trees.schema import TreeRecord
from harmtrace.trees.steering import FITTED, steer

LOSO = "leave-one-source-out"
KFOLD = "stratified-k-fold"
WEIGHTS_FORMAT = "harmtrace-tree-weights-1"


class HarmBenefitError(HarmtraceError):
    """Inputs of the fit or of scoring do not fit together."""


class FitSettings(BaseModel):
    """Config block ``trees.fit``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    harmful: tuple[str, ...] = Field(
        default=("simplesafetytests", "harmbench", "air-bench-2024"),
        min_length=2,
        description="datasets whose every prompt is harmful (label 1)",
    )
    benign: tuple[str, ...] = Field(
        default=("openai-moderation",),
        min_length=1,
        description="labelled datasets whose texts with every known label 0 are benign",
    )
    lam: float = Field(default=1.0, ge=0, description="ridge toward 1 on action/category weights")
    starts: int = Field(default=4, ge=1, description="optimizer starts (multi-start L-BFGS-B)")
    bootstrap: int = Field(default=100, ge=0, description="bootstrap refits for weight CIs")
    folds: int = Field(default=5, ge=2, description="folds of the stratified k-fold check")
    balanced: bool = Field(default=True, description="weigh both classes equally")
    alpha: float = Field(default=0.05, gt=0, lt=1, description="1 - CI coverage")
    seed: int = Field(default=0, description="seed of folds, starts and bootstrap")


def benign_mask(records: pd.DataFrame) -> np.ndarray:
    """Rows with every known ``label_*`` false and at least one label known."""
    labels = [c for c in records.columns if c.startswith("label_")]
    if not labels:
        raise HarmBenefitError(
            f"{records['dataset'].iloc[0] if len(records) else 'records'}: no label_* "
            "columns, so no text can be called benign"
        )
    lab = records[labels].astype("boolean")
    any_pos = lab.fillna(False).any(axis=1).to_numpy()
    any_known = lab.notna().any(axis=1).to_numpy()
    return ~any_pos & any_known


@dataclass(frozen=True)
class FittingSet:
    trees: list[TreeRecord]
    y: np.ndarray
    source: np.ndarray


def fitting_set(
    trees: Mapping[str, Sequence[TreeRecord]],
    records: Mapping[str, pd.DataFrame],
    settings: FitSettings,
) -> FittingSet:
    """The labelled trees: all trees of the harmful datasets, and those of the benign
    datasets' benign texts. Every record must have a tree line (failed or not)."""
    out: list[TreeRecord] = []
    y: list[int] = []
    src: list[str] = []
    for label, names in ((1, settings.harmful), (0, settings.benign)):
        for name in names:
            if name not in trees or name not in records:
                raise HarmBenefitError(f"fitting needs trees and records of {name!r}")
            by_id = {t.record_id: t for t in trees[name]}
            recs = records[name]
            keep = np.ones(len(recs), dtype=bool) if label else benign_mask(recs)
            ids = recs["record_id"].astype(str).to_numpy()[keep]
            missing = [i for i in ids if i not in by_id]
            if missing:
                raise HarmBenefitError(
                    f"{name}: {len(missing)} records have no tree line (e.g. {missing[:3]}); "
                    "regenerate the tree file"
                )
            out += [by_id[i] for i in ids]
            y += [label] * len(ids)
            src += [name] * len(ids)
    return FittingSet(out, np.asarray(y, dtype=float), np.asarray(src, dtype=object))


@dataclass(frozen=True)
class AggregationResult:
    fit: Fit
    ci: pd.DataFrame
    oof: pd.DataFrame
    """record_id, dataset, label, fold and out-of-fold probability per scheme"""
    cv: pd.DataFrame
    """per scheme: n, AUROC, log loss of the out-of-fold probabilities"""
    settings: FitSettings


def _cv_metrics(scheme: str, y: np.ndarray, cf: CrossFit) -> dict[str, Any]:
    ok = np.isfinite(cf.probability)
    p = np.clip(cf.probability[ok], 1e-12, 1 - 1e-12)
    return {
        "scheme": scheme,
        "n": int(ok.sum()),
        "n_failed": int((~ok).sum()),
        "auroc": float(roc_auc_score(y[ok], p)),
        "log_loss": float(log_loss(y[ok], p, labels=[0, 1])),
    }


def fit_aggregation(
    fs: FittingSet, level2: Sequence[str], settings: FitSettings
) -> AggregationResult:
    """Fit on all labelled trees, cross-fit both ways, bootstrap the weights."""
    design = design_from_trees(fs.trees, level2)
    kw = {"lam": settings.lam, "balanced": settings.balanced}
    fit = fit_weights(design, fs.y, n_starts=settings.starts, seed=settings.seed, **kw)
    strata = [f"{s}:{int(v)}" for s, v in zip(fs.source, fs.y, strict=True)]
    loso_fold = leave_one_source_out(fs.source, fs.y, seed=settings.seed)
    kfold = stratified_folds(strata, settings.folds, seed=settings.seed)
    loso = cross_fit(design, fs.y, loso_fold, n_starts=settings.starts, seed=settings.seed, **kw)
    kf = cross_fit(design, fs.y, kfold, n_starts=settings.starts, seed=settings.seed, **kw)
    ci = bootstrap_weights(
        design,
        fs.y,
        strata,
        fit,
        n_boot=settings.bootstrap,
        seed=settings.seed,
        alpha=settings.alpha,
    )
    oof = pd.DataFrame(
        {
            "record_id": pd.array([t.record_id for t in fs.trees], dtype="string"),
            "dataset": pd.array([t.dataset for t in fs.trees], dtype="string"),
            "label": pd.array(fs.y.astype(bool), dtype="boolean"),
            "fold_loso": pd.array(loso_fold, dtype="Int64"),
            "prob_loso": pd.array(loso.probability, dtype="Float64"),
            "fold_kfold": pd.array(kfold, dtype="Int64"),
            "prob_kfold": pd.array(kf.probability, dtype="Float64"),
        }
    )
    cv = pd.DataFrame([_cv_metrics(LOSO, fs.y, loso), _cv_metrics(KFOLD, fs.y, kf)])
    return AggregationResult(fit, ci, oof, cv, settings)


# ----------------------------------------------------------------------- weights file
def save_weights(result: AggregationResult, path: Path, provenance: dict[str, Any]) -> None:
    """The fitted weights with how they were made (sorted JSON, no timestamps)."""
    f = result.fit
    payload = {
        "format": WEIGHTS_FORMAT,
        "trees": provenance,
        "settings": result.settings.model_dump(mode="json"),
        "fit": {
            "nll": round(f.nll, 6),
            "n_trees": f.n_trees,
            "n_positive": f.n_positive,
            "converged": f.converged,
            "starts": f.starts,
            "lam": f.lam,
            "balanced": f.balanced,
        },
        "cv": result.cv.round(6).to_dict("records"),
        "weights": {k: round(v, 8) for k, v in f.weights.flat().items()},
        "effect_counts": f.effect_counts,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def load_weights(path: Path) -> tuple[Weights, dict[str, Any]]:
    """Fitted weights and the file's metadata; a clear error when the file is not one."""
    p = Path(path)
    if not p.is_file():
        raise HarmBenefitError(
            f"{p}: no fitted weights; run `harmtrace fit-tree-weights` (or the DAG) first"
        )
    try:
        payload = json.loads(p.read_text(encoding="utf-8"))
        if payload.get("format") != WEIGHTS_FORMAT:
            raise ValueError(f"format {payload.get('format')!r}, expected {WEIGHTS_FORMAT!r}")
        return Weights.from_flat(payload["weights"]).check(), payload
    except (ValueError, KeyError, TypeError) as exc:
        raise HarmBenefitError(f"{p}: not a tree weights file ({exc})") from exc


# ------------------------------------------------------------------------ scoring
def primary_risk(explanations: list[list[dict[str, Any]]]) -> list[str | None]:
    """AIR level-2 of each tree's largest positive (harm) contribution, if any."""
    out: list[str | None] = []
    for effects in explanations:
        harms = [e for e in effects if e["side"] == "harm" and e["contribution"] > 0]
        out.append(harms[0]["air_l2"] if harms else None)
    return out


def score_table(
    trees: Sequence[TreeRecord],
    level2: Sequence[str],
    profiles: Mapping[str, Weights],
    oof: pd.DataFrame | None = None,
    top: int = 3,
) -> pd.DataFrame:
    """One row per tree record (failed ones included): status, fitted score and
    probability, top contributing effects, and score/probability/label per profile.
    ``oof`` (from :class:`AggregationResult`) adds the cross-fitted probabilities."""
    if FITTED not in profiles:
        raise HarmBenefitError("profiles must include 'fitted'")
    design = design_from_trees(trees, level2)
    expl = explain(design, profiles[FITTED], top=top)
    n_eff = np.bincount(design.tree, minlength=design.n_trees)
    base = pd.DataFrame(
        {
            "record_id": pd.array([t.record_id for t in trees], dtype="string"),
            "dataset": pd.array([t.dataset for t in trees], dtype="string"),
            "generator": pd.array([t.provenance.generator for t in trees], dtype="string"),
            "generator_version": pd.array([t.provenance.version for t in trees], dtype="string"),
            "proxy": pd.array([t.provenance.proxy for t in trees], dtype="boolean"),
            "tree_status": pd.array([t.status for t in trees], dtype="string"),
            "tree_error": pd.array(
                [t.errors[-1] if t.status == "failed" and t.errors else None for t in trees],
                dtype="string",
            ),
            "n_effects": pd.array(
                [int(n) if t.tree is not None else None for n, t in zip(n_eff, trees, strict=True)],
                dtype="Int64",
            ),
            "primary_risk": pd.array(primary_risk(expl), dtype="string"),
            "top_effects": pd.array(
                [
                    json.dumps(e, sort_keys=True) if t.tree is not None else None
                    for e, t in zip(expl, trees, strict=True)
                ],
                dtype="string",
            ),
            "explanation": pd.array(
                [
                    "; ".join(format_effect(x) for x in e) if t.tree is not None else None
                    for e, t in zip(expl, trees, strict=True)
                ],
                dtype="string",
            ),
        }
    )
    steered = steer(design, profiles)
    out = pd.concat([base, steered], axis=1)
    out["score"] = out[f"score_{FITTED}"]
    out["probability"] = out[f"prob_{FITTED}"]
    if oof is not None:
        o = oof.set_index("record_id")
        ids = out["record_id"]
        for col in ("prob_loso", "prob_kfold"):
            out[f"oof_{col}"] = pd.array(
                o[col].reindex(ids).to_numpy(dtype=float, na_value=np.nan), dtype="Float64"
            )
    return out
