"""harmtrace.stats against published values and independent implementations."""

from __future__ import annotations

import math

import numpy as np
import pingouin as pg
import pytest
import scipy.stats as ss
from statsmodels.stats.contingency_tables import Table2x2, mcnemar
from statsmodels.stats.descriptivestats import sign_test as sm_sign_test
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from harmtrace.stats import (
    adjust_pvalues,
    bootstrap_ci,
    chi2_independence,
    cramers_v,
    cramers_v_ci,
    fisher_exact_2x2,
    mcnemar_exact,
    newcombe_diff_ci,
    newcombe_paired_diff_ci,
    percentile_interval,
    rank_biserial_paired,
    rank_biserial_paired_ci,
    resample_counts,
    risk_ratio,
    sign_test,
    two_proportion_ztest,
    wilcoxon_signed_rank,
    wilson_ci,
)

# ----------------------------------------------------------------------------- Wilson


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [  # Newcombe (1998), Stat Med 17:857, Table I, method 3 (score, no CC)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_published(k, n, lo, hi):
    got = wilson_ci(k, n)
    assert got == pytest.approx((lo, hi), abs=5e-5)
    assert all(isinstance(x, float) for x in got)


def test_wilson_matches_statsmodels_vectorised():
    rng = np.random.default_rng(3)
    n = rng.integers(1, 500, 200)
    k = rng.integers(0, n + 1)
    for alpha in (0.05, 0.1, 0.01):
        lo, hi = wilson_ci(k, n, alpha)
        ref_lo, ref_hi = proportion_confint(k, n, alpha=alpha, method="wilson")
        np.testing.assert_allclose(lo, ref_lo, atol=1e-12)
        np.testing.assert_allclose(hi, ref_hi, atol=1e-12)


def test_wilson_empty_and_invalid():
    assert all(math.isnan(x) for x in wilson_ci(0, 0))
    lo, hi = wilson_ci([0, 3], [0, 3])
    assert np.isnan(lo[0]) and np.isnan(hi[0])
    assert hi[1] == 1.0 and 0.0 < lo[1] < 1.0
    with pytest.raises(ValueError):
        wilson_ci(5, 3)
    with pytest.raises(ValueError):
        wilson_ci(1, 3, alpha=1.5)


# ----------------------------------------------------------------------------- Newcombe


@pytest.mark.parametrize(
    ("k1", "n1", "k2", "n2", "lo", "hi"),
    [  # Newcombe (1998), Stat Med 17:873, Table II, method 10 (hybrid score)
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
        (0, 10, 0, 10, -0.2775, 0.2775),
        (10, 10, 0, 20, 0.6791, 1.0000),
        (10, 10, 0, 10, 0.6075, 1.0000),
    ],
)
def test_newcombe_published(k1, n1, k2, n2, lo, hi):
    d, got_lo, got_hi = newcombe_diff_ci(k1, n1, k2, n2)
    assert d == pytest.approx(k1 / n1 - k2 / n2)
    assert (got_lo, got_hi) == pytest.approx((lo, hi), abs=5e-5)


def test_newcombe_empty_and_vector():
    assert all(math.isnan(x) for x in newcombe_diff_ci(0, 0, 3, 10))
    _, lo, hi = newcombe_diff_ci([56, 9], [70, 10], [48, 3], [80, 10])
    np.testing.assert_allclose(lo, [0.0524, 0.1705], atol=5e-5)
    np.testing.assert_allclose(hi, [0.3339, 0.8090], atol=5e-5)


@pytest.mark.parametrize(
    ("cells", "lo", "hi"),
    [
        # Fagerland, Lydersen & Laake (2017) ch. 8, Cavo et al. 2012 data, via the
        # R package contingencytables' test suite
        ((59, 6, 16, 80), -0.1186, -0.0046),
        # Newcombe (1998), Stat Med 17:2635, example a=36, b=12, c=2, d=0, method 10
        ((36, 12, 2, 0), 0.0569, 0.3404),
    ],
)
def test_newcombe_paired_published(cells, lo, hi):
    a, b, c, d = cells
    diff, got_lo, got_hi = newcombe_paired_diff_ci(a, b, c, d)
    assert diff == pytest.approx((b - c) / sum(cells))
    assert (got_lo, got_hi) == pytest.approx((lo, hi), abs=5e-5)


def test_newcombe_paired_no_correlation_equals_independent_square_and_add():
    # margins with a 0 product -> phi = 0 -> same as combining the Wilson limits
    # of the two marginal proportions without a covariance term
    diff, lo, hi = newcombe_paired_diff_ci(0, 3, 0, 2)
    d2, lo2, hi2 = newcombe_diff_ci(3, 5, 0, 5)
    assert (diff, lo, hi) == pytest.approx((d2, lo2, hi2))
    assert all(math.isnan(x) for x in newcombe_paired_diff_ci(0, 0, 0, 0))


# ----------------------------------------------------------------------------- risk ratio


@pytest.mark.parametrize(
    ("k1", "n1", "k2", "n2"), [(10, 50, 5, 60), (30, 40, 10, 40), (7, 7, 3, 9)]
)
def test_risk_ratio_matches_scipy_katz(k1, n1, k2, n2):
    rr, lo, hi, corrected = risk_ratio(k1, n1, k2, n2)
    ref = ss.contingency.relative_risk(k1, n1, k2, n2)
    ci = ref.confidence_interval(0.95)
    assert not corrected
    assert (rr, lo, hi) == pytest.approx((ref.relative_risk, ci.low, ci.high), rel=1e-10)


def test_risk_ratio_zero_cell_correction():
    rr, lo, hi, corrected = risk_ratio(0, 20, 5, 30)
    assert corrected
    # Haldane-Anscombe: 0.5 added to all four cells -> [[0.5, 20.5], [5.5, 25.5]]
    assert rr == pytest.approx((0.5 / 21) / (5.5 / 31))
    ref = Table2x2(np.array([[0.5, 20.5], [5.5, 25.5]]), shift_zeros=False)
    assert (lo, hi) == pytest.approx(tuple(ref.riskratio_confint(alpha=0.05)), rel=1e-10)
    rr0, lo0, hi0, c0 = risk_ratio(0, 20, 5, 30, zero_correction=0)
    assert rr0 == 0.0 and not c0 and math.isnan(lo0) and math.isnan(hi0)
    assert all(math.isnan(x) for x in risk_ratio(0, 0, 2, 3)[:3])


# ----------------------------------------------------------------------------- contingency


def test_chi2_matches_scipy_and_cramers_v():
    table = np.array([[20, 15, 5], [10, 25, 30], [8, 8, 9]])
    res = chi2_independence(table, n_resamples=500, seed=1)
    ref = ss.chi2_contingency(table, correction=False)
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.pvalue == pytest.approx(ref.pvalue)
    assert res.dof == ref.dof == 4
    assert res.n == table.sum()
    assert res.min_expected == pytest.approx(ref.expected_freq.min())
    plain = cramers_v(table, bias_correction=False)
    assert plain == pytest.approx(ss.contingency.association(table, method="cramer"))
    assert res.cramers_v < plain  # bias correction shrinks V


def test_cramers_v_bias_corrected_by_hand():
    # [[20,15,5],[10,25,30]]: n = 105, chi2 = 18.80408654 (scipy), r = 2, c = 3
    table = [[20, 15, 5], [10, 25, 30]]
    phi2 = 18.80408654 / 105
    phi2c = phi2 - (1 * 2) / 104
    kc = min(2 - 1 / 104, 3 - 4 / 104) - 1
    assert cramers_v(table) == pytest.approx(math.sqrt(phi2c / kc), rel=1e-8)
    assert cramers_v(table) == pytest.approx(0.40176, abs=1e-5)
    # independence table: corrected V is truncated at 0, plain V is 0 too
    assert cramers_v([[10, 20], [10, 20]]) == 0.0
    # empty rows/columns are ignored; a single non-empty row has no association
    assert cramers_v([[20, 15, 0], [10, 25, 0], [0, 0, 0]]) == pytest.approx(
        cramers_v([[20, 15], [10, 25]])
    )
    assert math.isnan(cramers_v([[3, 4], [0, 0]]))


def test_cramers_v_ci_matches_independent_bootstrap():
    table = np.array([[30, 10, 10], [10, 30, 15]])
    rows, cols = np.nonzero(table)
    x = np.repeat(rows, table[rows, cols])
    y = np.repeat(cols, table[rows, cols])

    def v_stat(a, b):
        t = np.zeros((2, 3))
        np.add.at(t, (a, b), 1)
        return cramers_v(t, bias_correction=False)

    ref = ss.bootstrap(
        (x, y),
        v_stat,
        paired=True,
        vectorized=False,
        n_resamples=3000,
        method="percentile",
        rng=np.random.default_rng(11),
    ).confidence_interval
    v, lo, hi = cramers_v_ci(table, bias_correction=False, n_resamples=3000, seed=5)
    assert v == pytest.approx(v_stat(x, y))
    assert lo == pytest.approx(ref.low, abs=0.02)
    assert hi == pytest.approx(ref.high, abs=0.02)
    # deterministic given the seed, different with another seed
    assert cramers_v_ci(table, seed=5) == cramers_v_ci(table, seed=5)
    assert cramers_v_ci(table, seed=5) != cramers_v_ci(table, seed=6)


def test_chi2_degenerate():
    res = chi2_independence([[5, 0], [7, 0]])
    assert math.isnan(res.statistic) and math.isnan(res.cramers_v) and res.n == 12


def test_fisher_tea_tasting():
    # R: fisher.test(matrix(c(3, 1, 1, 3), 2)) -> p = 0.4857, OR = 6.408309,
    # 95% CI 0.2117329 to 621.9337505 (conditional MLE)
    res = fisher_exact_2x2([[3, 1], [1, 3]])
    assert res["pvalue"] == pytest.approx(0.4857, abs=1e-4)
    assert res["odds_ratio"] == pytest.approx(6.408309, rel=1e-5)
    assert res["or_lo"] == pytest.approx(0.2117329, rel=1e-3)
    assert res["or_hi"] == pytest.approx(621.9337505, rel=1e-2)
    assert res["or_method"] == "conditional"
    degenerate = fisher_exact_2x2([[0, 0], [3, 4]])
    assert degenerate["pvalue"] == 1.0 and math.isnan(degenerate["odds_ratio"])
    with pytest.raises(ValueError):
        fisher_exact_2x2([[1, 2, 3], [4, 5, 6]])


def test_fisher_large_table_uses_woolf_interval():
    table = np.array([[3000, 2000], [2800, 2200]])
    res = fisher_exact_2x2(table)
    ref = Table2x2(table)
    assert res["or_method"] == "sample"
    assert res["odds_ratio"] == pytest.approx(ref.oddsratio)
    assert (res["or_lo"], res["or_hi"]) == pytest.approx(tuple(ref.oddsratio_confint()))
    assert res["pvalue"] == pytest.approx(ss.fisher_exact(table).pvalue)


def test_two_proportion_ztest():
    z, p = two_proportion_ztest(30, 40, 10, 40)
    ref_z, ref_p = proportions_ztest([30, 10], [40, 40])
    assert (z, p) == pytest.approx((ref_z, ref_p))
    chi = ss.chi2_contingency([[30, 10], [10, 30]], correction=False)
    assert z**2 == pytest.approx(chi.statistic)
    assert all(math.isnan(x) for x in two_proportion_ztest(0, 10, 0, 10))
    assert all(math.isnan(x) for x in two_proportion_ztest(1, 0, 0, 10))


def test_adjust_pvalues_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04
    # then running max -> 0.02, 0.03, 0.06, 0.06
    got = adjust_pvalues([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(got, [0.03, 0.06, 0.06, 0.02])
    # NaN is skipped and does not enlarge the family (m = 2)
    got = adjust_pvalues([0.01, np.nan, 0.04])
    np.testing.assert_allclose(got, [0.02, np.nan, 0.04])
    assert adjust_pvalues([0.9, 0.5])[0] == 1.0  # capped
    assert adjust_pvalues([]).size == 0
    bh = adjust_pvalues([0.01, 0.04, 0.03, 0.005], method="fdr_bh")
    np.testing.assert_allclose(bh, [0.02, 0.04, 0.04, 0.02])


# ----------------------------------------------------------------------------- paired


def test_sign_test_by_hand_and_statsmodels():
    d = [1, 2, 1, 3, 1, 1, 2, 1, -1, 0, 0]
    res = sign_test(d)
    assert (res["n_pos"], res["n_neg"], res["n_zero"]) == (8, 1, 2)
    assert res["pvalue"] == pytest.approx(20 / 512)  # 2 * (C(9,0) + C(9,1)) / 2**9
    assert res["pvalue"] == pytest.approx(sm_sign_test(np.array(d))[1])
    assert sign_test([0, 0])["pvalue"] == 1.0


def test_wilcoxon_by_hand_and_scipy():
    assert wilcoxon_signed_rank([1, 2, 3, 4, 5, 6])["pvalue"] == pytest.approx(2 / 64)
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 4, 80), rng.integers(0, 4, 80)
    res = wilcoxon_signed_rank(x - y)
    ref = ss.wilcoxon(x, y, zero_method="wilcox", correction=False)
    assert res["pvalue"] == pytest.approx(ref.pvalue)
    assert res["n_nonzero"] == int(np.sum(x != y))
    assert wilcoxon_signed_rank([0, 0])["pvalue"] == 1.0
    assert math.isnan(wilcoxon_signed_rank([])["pvalue"])


def test_rank_biserial_by_hand():
    # ranks of |d| = 1, 2, 3, 4 -> R+ = 6, R- = 4 -> (6 - 4) / 10
    assert rank_biserial_paired([1, 2, 3, -4]) == pytest.approx(0.2)
    # ties: |d| = 1, 1, 2 -> midranks 1.5, 1.5, 3 -> R+ = 4.5, R- = 1.5
    assert rank_biserial_paired([1, -1, 2, 0]) == pytest.approx(0.5)
    assert rank_biserial_paired([-1, -3]) == -1.0
    assert math.isnan(rank_biserial_paired([0, 0]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_biserial_matches_pingouin(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 4, 120), rng.integers(0, 3, 120)
    ref = pg.wilcoxon(x, y)["RBC"].iloc[0]
    assert rank_biserial_paired(x - y) == pytest.approx(ref, abs=1e-12)


def test_rank_biserial_ci_matches_case_bootstrap():
    rng = np.random.default_rng(4)
    d = rng.choice([-2, -1, 0, 1, 2, 3], size=150, p=[0.1, 0.2, 0.3, 0.2, 0.1, 0.1])
    est, lo, hi = rank_biserial_paired_ci(d, n_resamples=4000, seed=9)
    ref = ss.bootstrap(
        (d,),
        rank_biserial_paired,
        vectorized=False,
        n_resamples=4000,
        method="percentile",
        rng=np.random.default_rng(12),
    ).confidence_interval
    assert est == pytest.approx(rank_biserial_paired(d))
    assert lo == pytest.approx(ref.low, abs=0.025)
    assert hi == pytest.approx(ref.high, abs=0.025)
    assert lo < est < hi
    assert rank_biserial_paired_ci(d, seed=9) == rank_biserial_paired_ci(d, seed=9)
    assert all(math.isnan(v) for v in rank_biserial_paired_ci([0, 0, 0]))


def test_mcnemar_exact():
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    for b, c in [(3, 9), (12, 4), (5, 5)]:
        ref = mcnemar(np.array([[10, b], [c, 20]]), exact=True).pvalue
        assert mcnemar_exact(b, c) == pytest.approx(ref)
    assert mcnemar_exact(0, 0) == 1.0


# ----------------------------------------------------------------------------- bootstrap


def test_bootstrap_bca_matches_scipy():
    rng = np.random.default_rng(0)
    x = rng.exponential(size=60)
    est, lo, hi = bootstrap_ci(x, np.mean, n_resamples=5000, seed=3)
    ref = ss.bootstrap(
        (x,), np.mean, n_resamples=5000, method="BCa", rng=np.random.default_rng(8)
    ).confidence_interval
    assert est == pytest.approx(x.mean())
    assert lo == pytest.approx(ref.low, abs=0.03)
    assert hi == pytest.approx(ref.high, abs=0.03)
    # BCa shifts a right-skewed mean's interval to the right of the percentile one
    _, _, phi = bootstrap_ci(x, np.mean, n_resamples=5000, seed=3, method="percentile")
    assert hi > phi


def test_bootstrap_paired_and_deterministic():
    x = np.arange(20.0)
    y = 2 * x + 1

    def slope(a, b):
        return np.polyfit(a, b, 1)[0]

    est, lo, hi = bootstrap_ci((x, y), slope, n_resamples=200, seed=1, method="percentile")
    assert (est, lo, hi) == pytest.approx((2.0, 2.0, 2.0))
    a = bootstrap_ci(np.arange(10.0), np.median, seed=4)
    assert a == bootstrap_ci(np.arange(10.0), np.median, seed=4)
    assert all(math.isnan(v) for v in bootstrap_ci(np.array([]), np.mean))
    with pytest.raises(ValueError):
        bootstrap_ci((x, y[:-1]), slope)


def test_resample_counts_and_percentile():
    draws = resample_counts([5, 0, 15], 100, seed=2)
    assert draws.shape == (100, 3)
    assert (draws.sum(axis=1) == 20).all() and (draws[:, 1] == 0).all()
    np.testing.assert_array_equal(draws, resample_counts([5, 0, 15], 100, seed=2))
    assert percentile_interval(np.arange(101.0), 0.1) == pytest.approx((5.0, 95.0))
    assert all(math.isnan(v) for v in percentile_interval([np.nan]))
