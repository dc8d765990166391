"""Regression models for transitions, with records as clusters.

A record enters a per-category analysis once for every category, so its rows are not
independent. Both models therefore use standard errors clustered by record:

* :func:`clustered_logit` -- binary logistic regression (statsmodels ``GLM``) of an
  outcome such as "de-escalated" on a factor (the harm category) and numeric
  covariates (prompt severity), with the cluster-robust sandwich covariance
  (``cov_type="cluster"``, small-sample corrected). It reports odds ratios with Wald
  intervals, a cluster-robust Wald test of the whole factor (the omnibus category test
  that respects clustering), and every pairwise contrast between factor levels with
  Holm-adjusted p-values.
* :func:`ordinal_regression` -- proportional-odds (cumulative logit) regression
  (statsmodels ``OrderedModel``) with the same clustered covariance, and the Brant
  (1990) Wald test of proportional odds, which statsmodels lacks: the slopes of the
  J-1 binary logits ``y > j`` are compared, using their joint covariance.

Both refuse to report what the data cannot support: a factor level whose outcome never
varies (separation), too few clusters, or a single outcome level give ``estimable =
False`` and a ``note`` saying why, never an infinite odds ratio.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.miscmodels.ordinal_model import OrderedModel
from statsmodels.stats.multitest import multipletests
from statsmodels.tools.sm_exceptions import PerfectSeparationError

__all__ = [
    "MIN_CLUSTERS",
    "BrantResult",
    "ClusteredLogit",
    "OrdinalFit",
    "brant_test",
    "clustered_logit",
    "ordinal_regression",
]

MIN_CLUSTERS = 10
"""Fewer clusters than this and a cluster-robust covariance is not worth reporting."""

_COEF_COLUMNS = ["term", "estimate", "se", "z", "pvalue", "odds_ratio", "or_lo", "or_hi"]
_CONTRAST_COLUMNS = [
    "level_a",
    "level_b",
    "log_or",
    "se",
    "z",
    "pvalue",
    "p_holm",
    "odds_ratio",
    "or_lo",
    "or_hi",
]


def _design(
    frame: pd.DataFrame, factor: str, levels: Sequence[str], covariates: Sequence[str]
) -> pd.DataFrame:
    """Intercept-free design: one dummy per non-reference level, then the covariates."""
    cols = {f"{factor}[{lv}]": (frame[factor] == lv).astype(float) for lv in levels[1:]}
    for c in covariates:
        cols[c] = pd.to_numeric(frame[c], errors="raise").astype(float)
    return pd.DataFrame(cols, index=frame.index)


def _coef_frame(names, est, se, alpha: float) -> pd.DataFrame:
    est, se = np.asarray(est, dtype=float), np.asarray(se, dtype=float)
    z = est / se
    crit = stats.norm.isf(alpha / 2)
    with np.errstate(over="ignore"):
        return pd.DataFrame(
            {
                "term": list(names),
                "estimate": est,
                "se": se,
                "z": z,
                "pvalue": 2 * stats.norm.sf(np.abs(z)),
                "odds_ratio": np.exp(est),
                "or_lo": np.exp(est - crit * se),
                "or_hi": np.exp(est + crit * se),
            }
        )


def _separation(frame: pd.DataFrame, outcome: str, factor: str, levels: Sequence[str]) -> str:
    y = frame[outcome].astype(float)
    bad = []
    for lv in levels:
        v = y[frame[factor] == lv]
        if len(v) and (v.min() == v.max()):
            bad.append(f"{lv} ({'all' if v.iloc[0] == 1 else 'no'} events in {len(v)})")
    return "separation: " + ", ".join(bad) if bad else ""


def _check_inputs(
    frame: pd.DataFrame, columns: Sequence[str], factor: str, levels: Sequence[str] | None
) -> list[str]:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"frame lacks column(s) {missing}")
    present = [str(v) for v in pd.unique(frame[factor].astype(str))]
    if levels is None:
        return sorted(present)
    unknown = sorted(set(present) - {str(lv) for lv in levels})
    if unknown:
        raise ValueError(f"{factor} holds level(s) {unknown} not among {list(levels)}")
    return [str(lv) for lv in levels if str(lv) in present]


@dataclass(frozen=True)
class ClusteredLogit:
    """Result of :func:`clustered_logit`."""

    estimable: bool
    note: str
    n_obs: int
    n_clusters: int
    n_events: int
    levels: list[str]
    coefficients: pd.DataFrame = field(repr=False)
    """``term, estimate, se, z, pvalue, odds_ratio, or_lo, or_hi`` (intercept first)."""
    contrasts: pd.DataFrame = field(repr=False)
    """Every pair of factor levels: odds ratio a vs b with CI, Wald p and Holm p."""
    factor_wald: float = np.nan
    factor_df: int = 0
    factor_p: float = np.nan


def _refusal(
    d: pd.DataFrame, outcome: str, factor: str, lv: list[str], n_clusters: int, n_events: int
) -> str:
    """Why the data cannot support a clustered logit ("" when they can)."""
    if n_clusters < MIN_CLUSTERS:
        return f"too few records ({n_clusters} < {MIN_CLUSTERS})"
    if len(lv) < 2:
        return f"only one {factor} level present"
    if n_events in (0, len(d)):
        return "the outcome does not vary"
    return _separation(d, outcome, factor, lv)


def _contrasts(
    lv: list[str], factor: str, names: list[str], beta: np.ndarray, cov: np.ndarray, alpha: float
) -> pd.DataFrame:
    """Every pair of levels (a before b) as ``exp(beta_a - beta_b)``, Holm over the pairs."""

    def vec(level: str) -> np.ndarray:
        v = np.zeros(len(names))
        if level != lv[0]:
            v[names.index(f"{factor}[{level}]")] = 1.0
        return v

    rows = []
    for a, b in combinations(lv, 2):
        L = vec(a) - vec(b)
        est, se = float(L @ beta), float(np.sqrt(L @ cov @ L))
        rows.append({"level_a": a, "level_b": b, "log_or": est, "se": se})
    con = pd.DataFrame(rows)
    z = con["log_or"] / con["se"]
    crit = stats.norm.isf(alpha / 2)
    con["z"] = z
    con["pvalue"] = 2 * stats.norm.sf(np.abs(z))
    con["p_holm"] = multipletests(con["pvalue"], method="holm")[1]
    con["odds_ratio"] = np.exp(con["log_or"])
    con["or_lo"] = np.exp(con["log_or"] - crit * con["se"])
    con["or_hi"] = np.exp(con["log_or"] + crit * con["se"])
    return con[_CONTRAST_COLUMNS]


def clustered_logit(
    frame: pd.DataFrame,
    outcome: str,
    factor: str,
    covariates: Sequence[str] = (),
    cluster: str = "record_id",
    levels: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> ClusteredLogit:
    """Logistic regression of ``outcome`` (0/1) on ``factor`` and ``covariates``.

    ``levels`` orders the factor; the first present level is the reference. Standard
    errors are clustered by ``cluster``. Contrasts compare every pair of levels (a
    before b in ``levels`` order) as ``exp(beta_a - beta_b)``, the adjusted odds ratio
    of the outcome in a vs b, with Holm adjustment over the pairs.
    """
    lv = _check_inputs(frame, [outcome, factor, cluster, *covariates], factor, levels)
    d = frame.dropna(subset=[outcome, factor, cluster, *covariates])
    n_obs, n_clusters = len(d), int(d[cluster].nunique())
    n_events = int(d[outcome].astype(float).sum()) if n_obs else 0
    counts = (n_obs, n_clusters, n_events, lv)
    empty_frames = (pd.DataFrame(columns=_COEF_COLUMNS), pd.DataFrame(columns=_CONTRAST_COLUMNS))
    note = _refusal(d, outcome, factor, lv, n_clusters, n_events)
    if note:
        return ClusteredLogit(False, note, *counts, *empty_frames)
    x = sm.add_constant(_design(d, factor, lv, covariates), has_constant="add")
    y = d[outcome].astype(float).to_numpy()
    groups = pd.factorize(d[cluster])[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sm.GLM(y, x, family=sm.families.Binomial()).fit(
            cov_type="cluster", cov_kwds={"groups": groups}
        )
    if not res.converged:
        return ClusteredLogit(False, "did not converge (separation?)", *counts, *empty_frames)
    coef = _coef_frame(x.columns, res.params, res.bse, alpha)
    cov = np.asarray(res.cov_params())
    names = list(x.columns)
    beta = np.asarray(res.params)
    con = _contrasts(lv, factor, names, beta, cov, alpha)
    # cluster-robust Wald test of the whole factor: all its dummies zero
    idx = [names.index(f"{factor}[{level}]") for level in lv[1:]]
    b_f = beta[idx]
    wald = float(b_f @ np.linalg.solve(cov[np.ix_(idx, idx)], b_f))
    factor_p = float(stats.chi2.sf(wald, len(idx)))
    return ClusteredLogit(True, "", *counts, coef, con, wald, len(idx), factor_p)


# --------------------------------------------------------------------------- ordinal


@dataclass(frozen=True)
class BrantResult:
    """Brant's Wald test of proportional odds: ``term`` "omnibus" first, then each column."""

    table: pd.DataFrame
    """``term, chi2, df, pvalue``."""
    note: str = ""


def brant_test(y: np.ndarray, x: pd.DataFrame) -> BrantResult:
    """Brant (1990) test that the J-1 cumulative binary logits share their slopes.

    ``y`` holds integer outcome codes 0..J-1 (every code present), ``x`` the
    covariates without intercept. Each binary logit ``y > j`` is fitted with
    statsmodels ``Logit``; the covariance of two fits j < l is
    ``I_j^-1 X' diag(pi_l (1 - pi_j)) X I_l^-1`` (Brant's eq. for the stacked
    estimates), and the Wald statistic compares the first logit's slopes with each
    other's. Degrees of freedom: ``(m - 1) * p`` overall and ``m - 1`` per column, for
    the ``m`` cut-points whose binary logit converges. A cut-point that some group
    never (or always) exceeds has no finite slope (separation); it is left out and
    ``note`` says so, so the test then covers the remaining cut-points only.
    """
    y = np.asarray(y, dtype=int)
    levels = np.unique(y)
    J = len(levels)
    cols = list(x.columns)
    p = len(cols)
    empty = pd.DataFrame(columns=["term", "chi2", "df", "pvalue"])
    if J < 3:
        return BrantResult(empty, f"{J} outcome level(s): proportional odds holds trivially")
    X = np.column_stack([np.ones(len(y)), x.to_numpy(dtype=float)])
    K = X.shape[1]
    betas, pis, infos, skipped = [], [], [], []
    for j in levels[:-1]:
        yj = (y > j).astype(float)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = sm.Logit(yj, X).fit(disp=0, maxiter=200)
            ok = bool(r.mle_retvals.get("converged", False))
        except (np.linalg.LinAlgError, PerfectSeparationError):
            ok = False
        if not ok:  # separation: some group never (or always) exceeds j
            skipped.append(int(j))
            continue
        pi = r.predict(X)
        betas.append(np.asarray(r.params))
        pis.append(pi)
        infos.append(np.linalg.pinv(X.T @ (X * (pi * (1 - pi))[:, None])))
    note = (
        f"cut-points above {', '.join(map(str, skipped))} left out, as some group never "
        "exceeds them"
        if skipped
        else ""
    )
    if len(betas) < 2:
        return BrantResult(empty, note or "fewer than two estimable cut-points")
    m = len(betas)
    V = np.zeros((m * K, m * K))
    for j in range(m):
        for k in range(j, m):
            w = pis[k] * (1 - pis[j])
            block = infos[j] @ (X.T @ (X * w[:, None])) @ infos[k]
            V[j * K : (j + 1) * K, k * K : (k + 1) * K] = block
            V[k * K : (k + 1) * K, j * K : (j + 1) * K] = block.T
    slopes = [j * K + c for j in range(m) for c in range(1, K)]
    b = np.concatenate([bj[1:] for bj in betas])
    Vs = V[np.ix_(slopes, slopes)]
    D = np.zeros(((m - 1) * p, m * p))
    for j in range(m - 1):
        D[j * p : (j + 1) * p, :p] = np.eye(p)
        D[j * p : (j + 1) * p, (j + 1) * p : (j + 2) * p] = -np.eye(p)

    def wald(rows: list[int]) -> float:
        Dr = D[rows]
        s = Dr @ b
        return float(s @ np.linalg.solve(Dr @ Vs @ Dr.T, s))

    out = []
    all_rows = list(range(D.shape[0]))
    chi = wald(all_rows)
    out.append({"term": "omnibus", "chi2": chi, "df": len(all_rows)})
    for c, name in enumerate(cols):
        rows = [j * p + c for j in range(m - 1)]
        out.append({"term": name, "chi2": wald(rows), "df": len(rows)})
    table = pd.DataFrame(out)
    table["pvalue"] = stats.chi2.sf(table["chi2"], table["df"])
    return BrantResult(table, note)


@dataclass(frozen=True)
class OrdinalFit:
    """Result of :func:`ordinal_regression`."""

    estimable: bool
    note: str
    n_obs: int
    n_clusters: int
    outcome_levels: list[int]
    coefficients: pd.DataFrame = field(repr=False)
    """Slopes (log cumulative odds of a *higher* outcome) with clustered SEs and ORs."""
    brant: BrantResult | None = None
    reference: str = ""
    """The factor level the category odds ratios compare with."""


def ordinal_regression(
    frame: pd.DataFrame,
    outcome: str,
    factor: str,
    covariates: Sequence[str] = (),
    cluster: str = "record_id",
    levels: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> OrdinalFit:
    """Proportional-odds regression of an ordinal ``outcome`` on ``factor`` and covariates.

    statsmodels ``OrderedModel`` (logit link, BFGS), covariance clustered by
    ``cluster``; positive coefficients mean higher outcome levels. Outcome levels that
    never occur are dropped (the thresholds around them are not identified). The
    Brant test uses the same design and model-based covariances.
    """
    lv = _check_inputs(frame, [outcome, factor, cluster, *covariates], factor, levels)
    d = frame.dropna(subset=[outcome, factor, cluster, *covariates])
    n_obs, n_clusters = len(d), int(d[cluster].nunique())
    observed = sorted(int(v) for v in pd.unique(d[outcome].astype(int))) if n_obs else []
    empty = pd.DataFrame(columns=_COEF_COLUMNS)
    note = ""
    if n_clusters < MIN_CLUSTERS:
        note = f"too few records ({n_clusters} < {MIN_CLUSTERS})"
    elif len(observed) < 2:
        note = "the outcome does not vary"
    elif len(lv) < 2:
        note = f"only one {factor} level present"
    if note:
        return OrdinalFit(False, note, n_obs, n_clusters, observed, empty)
    codes = np.searchsorted(observed, d[outcome].astype(int).to_numpy())
    x = _design(d, factor, lv, covariates)
    groups = pd.factorize(d[cluster])[0]
    model = OrderedModel(codes, x, distr="logit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit(
            method="bfgs",
            disp=False,
            maxiter=2000,
            cov_type="cluster",
            cov_kwds={"groups": groups},
        )
    if not res.mle_retvals.get("converged", False):
        return OrdinalFit(
            False, "did not converge", n_obs, n_clusters, observed, empty, None, lv[0]
        )
    k = x.shape[1]
    coef = _coef_frame(x.columns, np.asarray(res.params)[:k], np.asarray(res.bse)[:k], alpha)
    if not np.all(np.isfinite(coef["se"])):
        return OrdinalFit(
            False, "covariance not estimable", n_obs, n_clusters, observed, empty, None, lv[0]
        )
    return OrdinalFit(True, "", n_obs, n_clusters, observed, coef, brant_test(codes, x), lv[0])
