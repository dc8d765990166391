"""Ordinal agreement statistics against published values and second libraries."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import cohens_kappa

from harmtrace.stats import (
    alpha_ordinal_from_tables,
    kappa_quadratic_from_tables,
    ordinal_agreement,
    pair_table,
)

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", the two-observer
# binary example: alpha = 0.095 (for two values every metric gives the same alpha)
KRIPP_A = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
KRIPP_B = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]


def test_alpha_published_two_observer_example():
    t = pair_table(KRIPP_A, KRIPP_B, [0, 1])
    assert alpha_ordinal_from_tables(t)[0] == pytest.approx(0.095, abs=5e-4)
    res = ordinal_agreement(KRIPP_A, KRIPP_B, [0, 1], n_resamples=200)
    assert res.alpha_ordinal == pytest.approx(0.095, abs=5e-4)
    assert res.exact == pytest.approx(0.6) and res.n == 10


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_statistics_match_the_libraries(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, 300)
    b = np.clip(a + rng.integers(-1, 2, 300), 0, 3)
    b[rng.random(300) < 0.1] = 3
    t = pair_table(a, b, [0, 1, 2, 3])
    ref_alpha = krippendorff.alpha(
        reliability_data=np.vstack([a, b]).astype(float),
        level_of_measurement="ordinal",
        value_domain=[0, 1, 2, 3],
    )
    assert alpha_ordinal_from_tables(t)[0] == pytest.approx(ref_alpha, rel=1e-9)
    ref_kappa = cohens_kappa(t, wt="quadratic").kappa  # statsmodels
    assert kappa_quadratic_from_tables(t)[0] == pytest.approx(ref_kappa, rel=1e-9)
    assert kappa_quadratic_from_tables(t)[0] == pytest.approx(
        cohen_kappa_score(a, b, weights="quadratic"), rel=1e-9
    )
    # a level nobody used does not change alpha (its margin is zero)
    t5 = pair_table(a, b, [0, 1, 2, 3, 4])
    assert alpha_ordinal_from_tables(t5)[0] == pytest.approx(ref_alpha, rel=1e-9)


def test_ordinal_agreement_interval_and_edge_cases():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 4, 200)
    b = np.clip(a + rng.integers(-1, 2, 200), 0, 3).astype(float)
    b[:5] = np.nan  # dropped pairwise
    res = ordinal_agreement(a, b, [0, 1, 2, 3], n_resamples=2000, seed=1)
    assert res.n == 195
    assert res.kappa_lo < res.kappa_quadratic < res.kappa_hi
    assert res.alpha_lo < res.alpha_ordinal < res.alpha_hi
    assert res == ordinal_agreement(a, b, [0, 1, 2, 3], n_resamples=2000, seed=1)
    flat = ordinal_agreement([2, 2, 2], [2, 2, 2], [0, 1, 2, 3])
    assert flat.exact == 1.0 and math.isnan(flat.kappa_quadratic) and flat.note == "no variation"
    assert ordinal_agreement([1], [1], [0, 1]).note == "too few units"
    with pytest.raises(ValueError):
        ordinal_agreement([0, 5], [0, 1], [0, 1, 2, 3])
    with pytest.raises(ValueError):
        ordinal_agreement([0, 1], [0], [0, 1])
