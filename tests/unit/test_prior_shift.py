"""Prior shift: the adjustment is Bayes' rule; EM recovers a known prior (Saerens 2002)."""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from harmtrace.graders.prior_shift import adjust_to_prior, em_prior


def _posterior(x: np.ndarray, prior: float) -> np.ndarray:
    """Exact P(y=1 | x) for x ~ N(1, 1) given y=1 and N(-1, 1) given y=0 (scipy densities)."""
    a = prior * norm.pdf(x, 1.0, 1.0)
    b = (1 - prior) * norm.pdf(x, -1.0, 1.0)
    return a / (a + b)


def test_adjustment_equals_the_posterior_under_the_new_prior():
    x = np.linspace(-4, 4, 81)
    under_train = _posterior(x, 0.3)
    np.testing.assert_allclose(adjust_to_prior(under_train, 0.3, 0.05), _posterior(x, 0.05))
    np.testing.assert_allclose(adjust_to_prior(under_train, 0.3, 0.3), under_train)


def test_em_recovers_the_prior_of_a_shifted_sample():
    rng = np.random.default_rng(0)
    for true_prior in (0.05, 0.5, 0.8):
        n = 20_000
        y = rng.random(n) < true_prior
        x = np.where(y, rng.normal(1, 1, n), rng.normal(-1, 1, n))
        est = em_prior(_posterior(x, 0.3), train_prior=0.3)
        assert est.converged
        assert abs(est.prior - true_prior) < 0.02, (true_prior, est.prior)


def test_em_leaves_the_training_prior_when_nothing_shifted():
    rng = np.random.default_rng(1)
    n = 20_000
    y = rng.random(n) < 0.3
    x = np.where(y, rng.normal(1, 1, n), rng.normal(-1, 1, n))
    assert abs(em_prior(_posterior(x, 0.3), 0.3).prior - 0.3) < 0.02
    assert em_prior(np.array([]), 0.3).prior == 0.3
