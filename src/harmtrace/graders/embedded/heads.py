"""The classifier heads of the embedded grader and the weights they are fitted with.

Per harm category one :class:`~harmtrace.graders.calibration.CalibratedLinear` on the
records whose category label is known, one per severe sub-label that gates severity 3,
and the harm head on "harm of any kind" (the package docstring says why it is separate).
Each head's thresholds come from its own out-of-fold probabilities.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from harmtrace.graders.calibration import CalibratedLinear
from harmtrace.graders.labels import SEVERE_KEYS, category_targets, harm_targets, severe_targets
from harmtrace.graders.severity import SeverityThresholds, best_fbeta_threshold, choose_thresholds
from harmtrace.taxonomy import CATEGORIES

NewClassifier = Callable[[], CalibratedLinear]
"""A factory of unfitted heads, all with the model's C grid, folds and seed."""


def class_balanced(y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``weights`` rescaled so that positives and negatives carry half the total each.

    The harm head's threshold is chosen with these: the share of harmful texts among the
    training rows only reflects which prompt sets were included (74% with the defaults,
    most sets being harmful-only), and an F1-optimal threshold at that share would call
    about half of the benign moderation texts harmful.
    """
    y = np.asarray(y, dtype=bool)
    w = np.asarray(weights, dtype=np.float64)
    pos, neg = w[y].sum(), w[~y].sum()
    if pos == 0 or neg == 0:
        return w
    return np.where(y, w * 0.5 / pos, w * 0.5 / neg) * w.sum()


def _both_classes(labels: pd.Series, minimum: int = 2) -> bool:
    """At least ``minimum`` known positives and negatives (a classifier can be fitted)."""
    y = labels.dropna().astype(bool)
    return int(y.sum()) >= minimum and int((~y).sum()) >= minimum


def record_weights(
    records: pd.DataFrame, source_weights: dict[str, float] | None = None
) -> np.ndarray:
    """Training weight per record: its dataset's entry in ``source_weights`` (default 1)."""
    if not source_weights:
        return np.ones(len(records))
    if "dataset" not in records:
        raise ValueError("source_weights need a 'dataset' column to identify each source")
    bad = {k: v for k, v in source_weights.items() if not (float(v) > 0)}
    if bad:
        raise ValueError(f"source weights must be positive, got {bad}")
    names = records["dataset"].astype("string").fillna("")
    return names.map(lambda n: float(source_weights.get(n, 1.0))).to_numpy(dtype=np.float64)


def fit_category_heads(
    x: Any, records: pd.DataFrame, weights: np.ndarray, new_classifier: NewClassifier
) -> tuple[dict[str, CalibratedLinear], dict[str, CalibratedLinear], dict[str, SeverityThresholds]]:
    """Category heads, severe sub-label heads (where both classes are labelled) and each
    category's severity thresholds; a category's training rows are those with its label
    known."""
    targets = category_targets(records)
    severe = severe_targets(records)
    models: dict[str, CalibratedLinear] = {}
    severe_models: dict[str, CalibratedLinear] = {}
    thresholds: dict[str, SeverityThresholds] = {}
    for cat in CATEGORIES:
        known = targets[cat].notna().to_numpy()
        y = targets[cat].to_numpy(dtype=bool, na_value=False)[known]
        w = weights[known]
        model = new_classifier().fit(x[np.flatnonzero(known)], y, w)
        models[cat] = model
        y_sev = p_sev = w_sev = None
        s_known = severe[cat].notna().to_numpy() if cat in SEVERE_KEYS else None
        if s_known is not None and _both_classes(severe[cat][s_known]):
            y_s = severe[cat].to_numpy(dtype=bool, na_value=False)[s_known]
            w_sev = weights[s_known]
            sev_model = new_classifier().fit(x[np.flatnonzero(s_known)], y_s, w_sev)
            severe_models[cat] = sev_model
            y_sev, p_sev = y_s, sev_model.oof_prob_
        thresholds[cat] = choose_thresholds(y, model.oof_prob_, y_sev, p_sev, w, w_sev)
    return models, severe_models, thresholds


def fit_harm_head(
    x: Any, records: pd.DataFrame, weights: np.ndarray, new_classifier: NewClassifier
) -> tuple[CalibratedLinear | None, float | None]:
    """The harm head and its class-balanced F1-optimal threshold (None, None when the
    records do not hold both classes)."""
    harm = harm_targets(records)
    known = harm.notna().to_numpy()
    if not _both_classes(harm[known]):
        return None, None
    y_h = harm.to_numpy(dtype=bool, na_value=False)[known]
    head = new_classifier().fit(x[np.flatnonzero(known)], y_h, weights[known])
    threshold = best_fbeta_threshold(y_h, head.oof_prob_, 1.0, class_balanced(y_h, weights[known]))
    return head, threshold
