"""Severity mapping at its boundaries, threshold choice and Platt calibration."""

from __future__ import annotations

import numpy as np
import pytest

from harmtrace.graders.calibration import CalibratedLinear, platt_fit, sigmoid
from harmtrace.graders.severity import (
    SeverityThresholds,
    best_fbeta_threshold,
    choose_thresholds,
    map_severity,
)

T = SeverityThresholds(t_low=0.2, t_mid=0.5, t_severe=0.6)


def test_boundaries_are_inclusive_from_below():
    p = np.array([0.0, np.nextafter(0.2, 0), 0.2, np.nextafter(0.5, 0), 0.5, 0.5, 1.0])
    q = np.array([0.9, 0.9, 0.9, 0.9, np.nextafter(0.6, 0), 0.6, 0.6])
    sev, _ = map_severity(p, T, q)
    assert sev.tolist() == [0, 0, 1, 1, 2, 3, 3]
    assert sev.dtype == np.int8


def test_severe_probability_alone_never_raises_severity():
    sev, _ = map_severity(np.array([0.1, 0.3]), T, np.array([1.0, 1.0]))
    assert sev.tolist() == [0, 1]


def test_category_without_severe_label_is_capped_at_two():
    capped = SeverityThresholds(t_low=0.2, t_mid=0.5)
    sev, conf = map_severity(np.array([0.99, 0.6]), capped)
    assert sev.tolist() == [2, 2]
    assert np.allclose(conf, [0.99, 0.6])
    with pytest.raises(ValueError):
        map_severity(np.array([0.9]), T)  # severe threshold set but no severe probability


def test_confidence_is_probability_of_the_assigned_level():
    p = np.array([0.1, 0.3, 0.8, 0.8])
    q = np.array([0.0, 0.0, 0.25, 0.75])
    sev, conf = map_severity(p, T, q)
    assert sev.tolist() == [0, 1, 2, 3]
    assert np.allclose(conf, [0.9, 0.7, 0.8 * 0.75, 0.8 * 0.75])


def test_threshold_validation():
    with pytest.raises(ValueError):
        SeverityThresholds(t_low=0.6, t_mid=0.5)
    with pytest.raises(ValueError):
        SeverityThresholds(t_low=0.1, t_mid=0.5, t_severe=1.5)


def test_best_f1_threshold_on_a_known_case():
    y = np.array([0, 0, 0, 1, 1, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.35, 0.5, 0.6, 0.7, 0.9])
    t = best_fbeta_threshold(y, s)
    # brute force over all cut points
    best = max(((2 * ((s >= c) & (y == 1)).sum()) / ((s >= c).sum() + y.sum()), -c) for c in s)
    assert t == pytest.approx(-best[1])
    assert best_fbeta_threshold(np.ones(3), np.array([0.1, 0.2, 0.3])) == 0.5


def test_f2_threshold_is_not_above_f1_threshold():
    rng = np.random.default_rng(0)
    y = rng.random(400) < 0.2
    s = np.clip(0.3 * y + rng.normal(0.3, 0.15, 400), 0, 1)
    th = choose_thresholds(y, s)
    assert th.t_low <= th.t_mid and th.t_severe is None


def test_platt_recovers_a_known_sigmoid():
    rng = np.random.default_rng(1)
    s = rng.normal(0, 2, 20_000)
    y = rng.random(s.size) < sigmoid(1.5 * s - 0.7)
    a, b = platt_fit(s, y)
    assert a == pytest.approx(1.5, abs=0.08) and b == pytest.approx(-0.7, abs=0.08)


def test_calibrated_linear_is_calibrated_and_deterministic():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(600, 5))
    y = rng.random(600) < sigmoid(x[:, 0] * 2 - 1.5)
    m1 = CalibratedLinear(c_grid=(0.1, 1.0), standardise=True, inner_splits=3, seed=0).fit(x, y)
    m2 = CalibratedLinear(c_grid=(0.1, 1.0), standardise=True, inner_splits=3, seed=0).fit(x, y)
    assert m1.fingerprint() == m2.fingerprint()
    p = m1.predict_proba(x)
    # class_weight="balanced" inflates raw scores; after Platt the mean matches the base rate
    assert p.mean() == pytest.approx(y.mean(), abs=0.03)
    assert m1.oof_prob_.shape == (600,)
    with pytest.raises(ValueError):
        CalibratedLinear().fit(x[:10], np.array([True] + [False] * 9))
