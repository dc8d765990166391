"""harmtrace.stats against published values and independent implementations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pingouin as pg
import pytest
import scipy.stats as ss
from statsmodels.stats.contingency_tables import Table2x2, mcnemar
from statsmodels.stats.descriptivestats import sign_test as sm_sign_test
from statsmodels.stats.proportion import confint_proportions_2indep

from harmtrace.stats import (
    adjust_pvalues,
    chi2_independence,
    cluster_bootstrap,
    cramers_v,
    cramers_v_ci,
    cramers_v_cluster_ci,
    fisher_exact_2x2,
    newcombe_paired_diff_ci,
    paired_ordinal_tests,
    percentile_interval,
    rank_biserial_paired,
    rank_biserial_paired_ci,
    resample_counts,
    trend_test,
)

# ----------------------------------------------------------------------------- paired Newcombe


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


def test_resample_counts_and_percentile():
    draws = resample_counts([5, 0, 15], 100, seed=2)
    assert draws.shape == (100, 3)
    assert (draws.sum(axis=1) == 20).all() and (draws[:, 1] == 0).all()
    np.testing.assert_array_equal(draws, resample_counts([5, 0, 15], 100, seed=2))
    assert percentile_interval(np.arange(101.0), 0.1) == pytest.approx((5.0, 95.0))
    assert all(math.isnan(v) for v in percentile_interval([np.nan]))


def test_newcombe_paired_without_correlation_is_the_independent_square_and_add():
    # margins with a zero product -> phi = 0 -> the independent-samples hybrid score
    # interval of the two marginal proportions (statsmodels' "newcomb")
    diff, lo, hi = newcombe_paired_diff_ci(0, 3, 0, 2)
    ref = confint_proportions_2indep(3, 5, 0, 5, method="newcomb")
    assert (diff, lo, hi) == pytest.approx((0.6, *ref))
    assert all(math.isnan(x) for x in newcombe_paired_diff_ci(0, 0, 0, 0))


# ----------------------------------------------------------------------------- small cells


def _exact_pearson_p(table: np.ndarray) -> float:
    """P(X^2 >= observed) over every 2 x c table with the observed margins (hypergeometric)."""
    rows, cols = table.sum(axis=1), table.sum(axis=0)
    n = int(table.sum())
    observed = ss.chi2_contingency(table, correction=False).statistic
    total = 0.0
    for first in itertools.product(*(range(int(c) + 1) for c in cols)):
        top = np.array(first)
        if top.sum() != rows[0]:
            continue
        t = np.vstack([top, cols - top])
        ways = np.prod([math.comb(int(c), int(k)) for c, k in zip(cols, top, strict=True)])
        prob = ways / math.comb(n, int(rows[0]))
        expected = np.outer(rows, cols) / n
        stat = ((t - expected) ** 2 / expected).sum()
        if stat >= observed - 1e-9:
            total += prob
    return total


def test_chi2_small_cells_monte_carlo_matches_exact_enumeration():
    table = np.array([[3, 0, 4], [1, 5, 2]])
    res = chi2_independence(table, n_resamples=20000, seed=3)
    assert res.p_method == "monte-carlo" and res.min_expected < 5
    assert res.statistic == pytest.approx(ss.chi2_contingency(table, correction=False).statistic)
    assert res.pvalue == pytest.approx(_exact_pearson_p(table), abs=0.01)
    # the asymptotic p-value differs noticeably here, which is why it is not used
    asym = chi2_independence(table, method="asymptotic", n_resamples=10)
    assert asym.p_method == "asymptotic"
    assert abs(asym.pvalue - res.pvalue) > 0.01
    # seeded: identical on rerun
    assert chi2_independence(table, n_resamples=500, seed=3) == chi2_independence(
        table, n_resamples=500, seed=3
    )


def test_chi2_small_2x2_uses_fisher():
    table = np.array([[3, 1], [1, 3]])
    res = chi2_independence(table, n_resamples=100)
    assert res.p_method == "exact"
    assert res.pvalue == pytest.approx(0.4857, abs=1e-4)  # R fisher.test (tea tasting)
    big = chi2_independence(np.array([[30, 10], [10, 30]]), n_resamples=100)
    assert big.p_method == "asymptotic"
    with pytest.raises(ValueError):
        chi2_independence(table, method="nonsense")


# ----------------------------------------------------------------------------- cluster bootstrap


def test_cluster_bootstrap_moments_match_theory():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, size=(60, 3))
    draws = cluster_bootstrap(x, 40000, seed=1)
    np.testing.assert_array_equal(draws.observed, x.sum(axis=0))
    assert draws.n_clusters == 60
    # totals under resampling R clusters with replacement: mean sum(x), and
    # variance sum(x^2) - sum(x)^2 / R (multinomial weights with p = 1/R)
    r = x.shape[0]
    var = (x**2).sum(axis=0) - x.sum(axis=0) ** 2 / r
    np.testing.assert_allclose(draws.replicates.mean(axis=0), x.sum(axis=0), rtol=0.01)
    np.testing.assert_allclose(draws.replicates.var(axis=0), var, rtol=0.05)
    again = cluster_bootstrap(x, 100, seed=1).replicates
    np.testing.assert_array_equal(again, cluster_bootstrap(x, 100, seed=1).replicates)
    assert cluster_bootstrap(np.zeros((0, 2)), 5, 0).replicates.shape == (5, 2)


def test_cramers_v_cluster_ci_matches_index_resampling():
    rng = np.random.default_rng(5)
    # 150 clusters; each contributes one unit to a 2 x 2 table, duplicated (two
    # identical rows per cluster): the cluster interval must be wider than the naive one
    cells = rng.choice(4, size=150, p=[0.35, 0.15, 0.15, 0.35])
    per_cluster = np.zeros((150, 4), dtype=int)
    per_cluster[np.arange(150), cells] = 2
    v, lo, hi = cramers_v_cluster_ci(per_cluster, (2, 2), n_resamples=4000, seed=2)
    table = per_cluster.sum(axis=0).reshape(2, 2)
    assert v == pytest.approx(cramers_v(table))
    # reference: resample cluster indices explicitly
    idx = np.random.default_rng(9).integers(0, 150, size=(4000, 150))
    reps = [cramers_v(per_cluster[i].sum(axis=0).reshape(2, 2)) for i in idx]
    ref_lo, ref_hi = np.quantile(reps, [0.025, 0.975])
    assert (lo, hi) == pytest.approx((ref_lo, ref_hi), abs=0.03)
    _, naive_lo, naive_hi = cramers_v_ci(table, n_resamples=4000, seed=2)
    assert hi - lo > 1.2 * (naive_hi - naive_lo)
    with pytest.raises(ValueError):
        cramers_v_cluster_ci(per_cluster, (3, 2))


# ----------------------------------------------------------------------------- trend


def test_trend_test_agresti_malformation():
    # Agresti, Categorical Data Analysis (2002) sec. 3.4.5 / An Introduction to CDA
    # (2007) sec. 2.5: alcohol consumption (scores 0, 0.5, 1.5, 4, 7) and infant
    # malformation: M^2 = 6.57, P = 0.01
    table = np.array([[17066, 48], [14464, 38], [788, 5], [126, 1], [37, 1]])
    res = trend_test(table, row_scores=[0, 0.5, 1.5, 4, 7])
    assert res.statistic == pytest.approx(6.57, abs=0.005)
    assert res.pvalue == pytest.approx(0.0104, abs=5e-4)
    assert res.n == table.sum()
    # with two columns this is Cochran-Armitage; by hand, CA's z^2 uses n, M^2 uses n - 1
    x = np.array([0, 0.5, 1.5, 4, 7])
    n_i, k_i = table.sum(axis=1), table[:, 1]
    n, p = n_i.sum(), k_i.sum() / n_i.sum()
    t = (k_i * (x - (n_i * x).sum() / n)).sum()
    var = p * (1 - p) * ((n_i * x**2).sum() - (n_i * x).sum() ** 2 / n)
    assert t**2 / var * (n - 1) / n == pytest.approx(res.statistic, rel=1e-9)


def test_trend_test_degenerate():
    assert math.isnan(trend_test([[3, 0], [4, 0]]).pvalue)
    res = trend_test([[10, 0], [0, 0], [0, 10]])
    assert res.n == 20 and res.pvalue < 0.001


# ----------------------------------------------------------------------------- paired ordinal


def test_paired_ordinal_tests_by_hand():
    # no zeros, no ties: exact Wilcoxon p = 2/64; sign test 2 * 1/64
    res = paired_ordinal_tests([1, 2, 3, 4, 5, 6])
    assert res.wilcoxon_p == pytest.approx(2 / 64)
    assert res.sign_p == pytest.approx(2 / 64)
    assert (res.n_pairs, res.n_untied, res.n_pos, res.n_neg) == (6, 6, 6, 0)
    # one zero: Pratt ranks |d| with the zero (rank 1), drops it: R+ = 41 of ranks
    # 2..10, mean (10*11 - 1*2)/4 = 27, variance (10*11*21 - 1*2*3)/24 = 96
    d = [0, 1, 2, -3, 4, 5, 6, 7, -8, 9]
    res = paired_ordinal_tests(d)
    z = (41 - 27) / math.sqrt(96)
    assert res.pratt_p == pytest.approx(2 * ss.norm.sf(z), rel=1e-9)
    assert (res.n_pairs, res.n_untied, res.n_pos, res.n_neg) == (10, 9, 7, 2)
    assert res.sign_p == pytest.approx(sm_sign_test(np.array(d, dtype=float))[1])
    ref = ss.wilcoxon([x for x in d if x], correction=False)
    assert res.wilcoxon_p == pytest.approx(ref.pvalue)


def test_paired_ordinal_tests_edge_cases():
    assert paired_ordinal_tests([0, 0]).wilcoxon_p == 1.0
    assert paired_ordinal_tests([0, 0]).n_untied == 0
    assert math.isnan(paired_ordinal_tests([]).pratt_p)
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 4, 80), rng.integers(0, 4, 80)
    res = paired_ordinal_tests(x - y)
    ref = ss.wilcoxon(x, y, zero_method="pratt", correction=False, method="approx")
    assert res.pratt_p == pytest.approx(ref.pvalue)
    assert res.n_untied == int(np.sum(x != y))


def test_mcnemar_reference_used_by_the_analysis():
    # the analysis calls statsmodels' exact McNemar directly: b = 0, c = 6 -> 2 / 64
    assert mcnemar(np.array([[3, 0], [6, 4]]), exact=True).pvalue == pytest.approx(2 / 64)


def test_stratified_trend_reduces_to_single_table_and_to_cmh():
    from statsmodels.stats.contingency_tables import StratifiedTable

    from harmtrace.stats import stratified_trend_test

    # one stratum: the linear-by-linear test (statsmodels), Agresti's M^2 = 6.57
    table = np.array([[17066, 48], [14464, 38], [788, 5], [126, 1], [37, 1]])
    one = stratified_trend_test(table[None], row_scores=[0, 0.5, 1.5, 4, 7])
    assert one.statistic == pytest.approx(6.57, abs=0.005)
    assert one.statistic == pytest.approx(trend_test(table, [0, 0.5, 1.5, 4, 7]).statistic)
    # 2 x 2 x K: the Cochran-Mantel-Haenszel test without continuity correction
    rng = np.random.default_rng(1)
    strata = rng.integers(3, 40, size=(5, 2, 2))
    ref = StratifiedTable([s for s in strata]).test_null_odds(correction=False)
    got = stratified_trend_test(strata)
    assert got.statistic == pytest.approx(ref.statistic, rel=1e-9)
    assert got.pvalue == pytest.approx(ref.pvalue, rel=1e-9)
    # strata with fewer than two units are ignored; no variance -> NaN
    padded = np.concatenate([strata, np.zeros((1, 2, 2)), [[[1, 0], [0, 0]]]])
    assert stratified_trend_test(padded).statistic == pytest.approx(ref.statistic)
    assert math.isnan(stratified_trend_test(np.array([[[3, 0], [4, 0]]])).pvalue)
    with pytest.raises(ValueError):
        stratified_trend_test(table)


def test_wilson_interval_matches_newcombe_1998_and_is_nan_when_empty():
    """Reference values: Newcombe (1998), Stat Med 17:857, Table I, method 3 (Wilson
    score without continuity correction): 81/263 -> 0.2553-0.3662, 0/10 -> 0-0.2775."""
    from harmtrace.proportions import wilson_interval

    lo, hi = wilson_interval([81, 0, 3], [263, 10, 0])
    assert lo[0] == pytest.approx(0.2553, abs=5e-5) and hi[0] == pytest.approx(0.3662, abs=5e-5)
    assert lo[1] == pytest.approx(0.0, abs=1e-12) and hi[1] == pytest.approx(0.2775, abs=5e-5)
    assert np.isnan(lo[2]) and np.isnan(hi[2])
