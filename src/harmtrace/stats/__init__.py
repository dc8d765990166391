"""Pure statistics on arrays and tables (imports nothing else from harmtrace).

Where statsmodels, scipy, scikit-learn or krippendorff provide a method, callers use
it directly (Wilson and independent Newcombe intervals:
``statsmodels.stats.proportion``; McNemar: ``statsmodels.stats.contingency_tables``;
bootstrap of unit-level statistics: ``scipy.stats.bootstrap``). This package keeps what
they lack or what needs care the libraries do not take: paired Newcombe intervals,
count and cluster bootstraps, the bias-corrected Cramér's V, small-cell fallbacks,
clustered regressions with contrasts, the Brant test, and vectorised agreement
bootstraps. Everything random is seeded.
"""

from .agreement import (
    OrdinalAgreement,
    alpha_ordinal_from_tables,
    kappa_quadratic_from_tables,
    ordinal_agreement,
    pair_table,
)
from .bootstrap import ClusterDraws, cluster_bootstrap, percentile_interval, resample_counts
from .contingency import (
    Chi2Result,
    TrendResult,
    adjust_pvalues,
    chi2_independence,
    cramers_v,
    cramers_v_ci,
    cramers_v_cluster_ci,
    fisher_exact_2x2,
    stratified_trend_test,
    trend_test,
)
from .paired import (
    PairedOrdinalTests,
    newcombe_paired_diff_ci,
    paired_ordinal_tests,
    rank_biserial_paired,
    rank_biserial_paired_ci,
)
from .regression import (
    BrantResult,
    ClusteredLogit,
    OrdinalFit,
    brant_test,
    clustered_logit,
    ordinal_regression,
)

__all__ = [
    "BrantResult",
    "Chi2Result",
    "ClusterDraws",
    "ClusteredLogit",
    "OrdinalAgreement",
    "OrdinalFit",
    "PairedOrdinalTests",
    "TrendResult",
    "adjust_pvalues",
    "alpha_ordinal_from_tables",
    "brant_test",
    "chi2_independence",
    "cluster_bootstrap",
    "clustered_logit",
    "cramers_v",
    "cramers_v_ci",
    "cramers_v_cluster_ci",
    "fisher_exact_2x2",
    "kappa_quadratic_from_tables",
    "newcombe_paired_diff_ci",
    "ordinal_agreement",
    "ordinal_regression",
    "pair_table",
    "paired_ordinal_tests",
    "percentile_interval",
    "rank_biserial_paired",
    "rank_biserial_paired_ci",
    "resample_counts",
    "stratified_trend_test",
    "trend_test",
]
