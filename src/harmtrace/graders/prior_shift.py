"""Adjust calibrated probabilities to a dataset's own category priors (prior shift).

A calibrated classifier's probability ``p = P_train(harm | text)`` carries the class
prior of its training rows (21% hate among the labelled moderation texts, for example).
Applied to a dataset where harm is rarer or commoner, the posterior should be

    p' = (pi / pi_t) p / ((pi / pi_t) p + ((1 - pi) / (1 - pi_t)) (1 - p))

where ``pi_t`` is the training prior and ``pi`` the dataset's prior. ``pi`` is unknown,
and Saerens, Latinne and Decaestecker (2002, Neural Computation 14(1):21-41) estimate it
by EM: start at ``pi = pi_t``, adjust every probability as above (E step), set ``pi`` to
the mean adjusted probability (M step), and repeat until ``pi`` stops moving. The fixed
point is the maximum-likelihood prior under the assumption that only the prior changed
(P(text | class) is the same in both sets), which is the assumption to state whenever an
adjusted figure is reported; the raw, unadjusted judgments are always reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from harmtrace.taxonomy import CATEGORIES, SIDES

_EPS = 1e-6


class CalibratedModel(Protocol):
    """What prior shift needs of a model (the embedded grader's
    :class:`~harmtrace.graders.embedded.EmbeddedGrader` is one): the training priors its
    probabilities carry, and its own thresholds to turn shifted probabilities into severity."""

    @property
    def priors(self) -> dict[str, float]: ...

    def add_severity(self, probs: pd.DataFrame) -> pd.DataFrame: ...


@dataclass(frozen=True)
class PriorEstimate:
    prior: float
    """The EM estimate of the dataset's prior."""
    iterations: int
    converged: bool


def adjust_to_prior(prob: np.ndarray, train_prior: float, new_prior: float) -> np.ndarray:
    """Posterior under ``new_prior`` from a posterior computed under ``train_prior``."""
    p = np.clip(np.asarray(prob, dtype=np.float64), 0.0, 1.0)
    pt = float(np.clip(train_prior, _EPS, 1 - _EPS))
    pn = float(np.clip(new_prior, _EPS, 1 - _EPS))
    pos = (pn / pt) * p
    neg = ((1 - pn) / (1 - pt)) * (1 - p)
    total = pos + neg
    return np.divide(pos, total, out=np.full_like(p, pn), where=total > 0)


def em_prior(
    prob: np.ndarray, train_prior: float, tol: float = 1e-8, max_iter: int = 1000
) -> PriorEstimate:
    """Saerens et al. (2002) EM estimate of the prior of the set whose posteriors are
    ``prob`` (computed under ``train_prior``)."""
    p = np.asarray(prob, dtype=np.float64)
    if p.size == 0:
        return PriorEstimate(float(train_prior), 0, True)
    pi = float(np.clip(train_prior, _EPS, 1 - _EPS))
    for k in range(1, max_iter + 1):
        new = float(np.clip(adjust_to_prior(p, train_prior, pi).mean(), _EPS, 1 - _EPS))
        if abs(new - pi) < tol:
            return PriorEstimate(new, k, True)
        pi = new
    return PriorEstimate(pi, max_iter, False)


def estimate_priors(model: CalibratedModel, scores: pd.DataFrame) -> pd.DataFrame:
    """Per category: training prior, EM prior of ``scores`` (``prob_<cat>`` columns) and
    the mean raw and adjusted probability."""
    rows = []
    for cat in CATEGORIES:
        p = scores[f"prob_{cat}"].to_numpy(dtype=np.float64)
        train = model.priors[cat]
        est = em_prior(p, train)
        rows.append(
            {
                "category": cat,
                "n": int(p.size),
                "train_prior": train,
                "estimated_prior": est.prior,
                "mean_prob_raw": float(p.mean()) if p.size else np.nan,
                "iterations": est.iterations,
                "converged": est.converged,
            }
        )
    return pd.DataFrame(rows)


def shift_scores(model: CalibratedModel, scores: pd.DataFrame) -> pd.DataFrame:
    """``scores`` (from :meth:`EmbeddedGrader.score`) with each category probability
    adjusted to the EM prior of these texts, and severity and confidence recomputed with
    the model's thresholds. Severe sub-label probabilities are left as they are: they are
    conditional on the text, and no dataset-level prior for them is estimated."""
    out = scores.copy()
    for cat in CATEGORIES:
        p = out[f"prob_{cat}"].to_numpy(dtype=np.float64)
        est = em_prior(p, model.priors[cat])
        out[f"prob_{cat}"] = adjust_to_prior(p, model.priors[cat], est.prior)
    probs = out[[c for c in out.columns if c.startswith(("prob_", "severe_prob_"))]]
    return model.add_severity(probs)


def judgment_priors(model: CalibratedModel, judgments: pd.DataFrame) -> pd.DataFrame:
    """Per side (prompt, response) and category: the training prior, the EM prior of the
    graded texts, and the mean raw probability (for the prior-shift report)."""
    frames = []
    for side in SIDES:
        cols = {f"prob_{c}": judgments[f"{side}_prob_{c}"] for c in CATEGORIES}
        probs = pd.DataFrame(cols).dropna()
        if probs.empty:
            continue
        part = estimate_priors(model, probs.astype(float))
        part.insert(0, "side", side)
        frames.append(part)
    out = pd.concat(frames, ignore_index=True)
    return out.astype(
        {
            "side": "string",
            "category": "string",
            "n": "Int64",
            "train_prior": "Float64",
            "estimated_prior": "Float64",
            "mean_prob_raw": "Float64",
            "iterations": "Int64",
            "converged": "boolean",
        }
    )
