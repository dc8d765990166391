"""From calibrated probabilities to severity 0-3, and the thresholds behind that mapping.

For one category let ``p`` be the calibrated probability that a text is harmful and ``q``
the calibrated probability of the category's severe sub-label (hate/threatening,
sexual/minors, violence/graphic). With thresholds ``t_low <= t_mid`` and ``t_severe``:

=========  ==========================================
severity   rule
=========  ==========================================
0 Safe     ``p < t_low``
1 Low      ``t_low <= p < t_mid``
2 Medium   ``p >= t_mid`` (and not 3)
3 High     ``p >= t_mid`` and ``q >= t_severe``
=========  ==========================================

All three thresholds are chosen on out-of-fold predictions inside the training data:
``t_mid`` maximises F1 of ``p >= t`` (the binary "harmful" decision), ``t_low`` maximises
F2 (recall weighted four times as much as precision, so "Low" catches likely-but-uncertain
cases) and is clipped to at most ``t_mid``, and ``t_severe`` maximises F1 of the severe
sub-label classifier. Self-harm has no severe sub-label: it is capped at 2.

``confidence`` is the model's own probability that the event defining the assigned level
holds, treating ``p`` and ``q`` as independent: ``1 - p`` for levels 0 and 1 (not flagged),
``p * (1 - q)`` for level 2, ``p * q`` for level 3, and ``p`` for level 2 of a category
without a severe sub-label.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import precision_recall_curve


@dataclass(frozen=True)
class SeverityThresholds:
    t_low: float
    t_mid: float
    t_severe: float | None = None
    """None: the category has no severe sub-label, so severity is capped at 2."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.t_low <= self.t_mid <= 1.0:
            raise ValueError(f"need 0 <= t_low <= t_mid <= 1, got {self.t_low}, {self.t_mid}")
        if self.t_severe is not None and not 0.0 <= self.t_severe <= 1.0:
            raise ValueError(f"t_severe must lie in [0, 1], got {self.t_severe}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def best_fbeta_threshold(
    y_true: np.ndarray,
    scores: np.ndarray,
    beta: float = 1.0,
    sample_weight: np.ndarray | None = None,
) -> float:
    """The score threshold ``t`` maximising F-beta of ``scores >= t`` (smallest on ties).

    With no positive or no negative example the problem is undefined; 0.5 is returned.
    ``sample_weight`` counts each row that many times (per-source training weights).
    """
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.all() or not y.any():
        return 0.5
    precision, recall, thresholds = precision_recall_curve(y, s, sample_weight=sample_weight)
    precision, recall = precision[:-1], recall[:-1]
    b2 = beta * beta
    denom = b2 * precision + recall
    f = np.divide((1 + b2) * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    best = np.flatnonzero(f == f.max())
    return float(thresholds[best].min())


def choose_thresholds(
    y_true: np.ndarray,
    prob: np.ndarray,
    y_severe: np.ndarray | None = None,
    prob_severe: np.ndarray | None = None,
    weight: np.ndarray | None = None,
    weight_severe: np.ndarray | None = None,
) -> SeverityThresholds:
    """Thresholds from out-of-fold calibrated probabilities (see the module docstring)."""
    t_mid = best_fbeta_threshold(y_true, prob, beta=1.0, sample_weight=weight)
    t_low = min(best_fbeta_threshold(y_true, prob, beta=2.0, sample_weight=weight), t_mid)
    t_severe = None
    if y_severe is not None and prob_severe is not None:
        t_severe = best_fbeta_threshold(y_severe, prob_severe, 1.0, weight_severe)
    return SeverityThresholds(t_low=t_low, t_mid=t_mid, t_severe=t_severe)


def map_severity(
    prob: np.ndarray, thresholds: SeverityThresholds, prob_severe: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Severity (int8, 0-3) and confidence (float, 0-1) for each probability."""
    p = np.asarray(prob, dtype=np.float64)
    sev = np.zeros(p.shape, dtype=np.int8)
    sev[p >= thresholds.t_low] = 1
    flagged = p >= thresholds.t_mid
    sev[flagged] = 2
    conf = np.where(flagged, p, 1.0 - p)
    if thresholds.t_severe is not None:
        if prob_severe is None:
            raise ValueError("this category has a severe threshold; pass prob_severe")
        q = np.asarray(prob_severe, dtype=np.float64)
        high = flagged & (q >= thresholds.t_severe)
        sev[high] = 3
        conf = np.where(high, p * q, np.where(flagged, p * (1.0 - q), conf))
    return sev, np.clip(conf, 0.0, 1.0)
