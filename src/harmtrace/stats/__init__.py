"""Pure statistics on arrays and tables (imports nothing else from harmtrace).

Interval estimates are score-based or seeded-bootstrap, so results are
deterministic and behave at the 0/1 boundaries that transition shares hit.
"""

from .bootstrap import bootstrap_ci, percentile_interval, resample_counts
from .contingency import (
    Chi2Result,
    adjust_pvalues,
    chi2_independence,
    cramers_v,
    cramers_v_ci,
    fisher_exact_2x2,
    two_proportion_ztest,
)
from .paired import (
    mcnemar_exact,
    rank_biserial_paired,
    rank_biserial_paired_ci,
    sign_test,
    wilcoxon_signed_rank,
)
from .proportions import newcombe_diff_ci, newcombe_paired_diff_ci, risk_ratio, wilson_ci, z_crit

__all__ = [
    "Chi2Result",
    "adjust_pvalues",
    "bootstrap_ci",
    "chi2_independence",
    "cramers_v",
    "cramers_v_ci",
    "fisher_exact_2x2",
    "mcnemar_exact",
    "newcombe_diff_ci",
    "newcombe_paired_diff_ci",
    "percentile_interval",
    "rank_biserial_paired",
    "rank_biserial_paired_ci",
    "resample_counts",
    "risk_ratio",
    "sign_test",
    "two_proportion_ztest",
    "wilcoxon_signed_rank",
    "wilson_ci",
    "z_crit",
]
