"""The one Wilson interval every share in the project is reported with.

statsmodels computes it; this wrapper only makes it vectorised and NaN (without a
warning) for an empty group, so transitions, grader validity and moderation effects
cannot drift into three variants of the same interval. It sits outside
:mod:`harmtrace.stats` on purpose: importing that package runs all of it, and a job's
code hash follows imports, so an edit to a regression would replan the grader's
evaluation. (Newcombe's paired interval in :mod:`harmtrace.stats.paired` builds on the
same statsmodels call.)
"""

from __future__ import annotations

import numpy as np
from statsmodels.stats.proportion import proportion_confint


def wilson_interval(k, n, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Wilson interval of ``k`` of ``n`` (arrays broadcast); NaN where ``n == 0``."""
    kk = np.atleast_1d(np.asarray(k, dtype=float))
    nn = np.atleast_1d(np.asarray(n, dtype=float))
    kk, nn = np.broadcast_arrays(kk, nn)
    lo, hi = np.full(kk.shape, np.nan), np.full(kk.shape, np.nan)
    ok = nn > 0
    if ok.any():
        lo[ok], hi[ok] = proportion_confint(kk[ok], nn[ok], alpha=alpha, method="wilson")
    return lo, hi
