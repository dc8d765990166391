"""A calibrated linear classifier: logistic regression + cross-validated Platt scaling.

:class:`CalibratedLinear` does, on one binary target:

1. For each inverse-regularisation value ``C`` in a small grid, out-of-fold decision
   scores from a stratified ``inner_splits``-fold split (class-balanced logistic
   regression; dense features standardised inside each fold).
2. Keeps the ``C`` with the highest out-of-fold average precision (smallest ``C`` on ties).
3. Fits Platt's sigmoid ``p = 1 / (1 + exp(-(a * s + b)))`` to those out-of-fold scores
   (with Platt's smoothed targets), then refits the regression on all rows.

The out-of-fold calibrated probabilities are kept (``oof_prob_``) so thresholds can be
chosen on predictions the model made without seeing the rows. This is the same recipe as
scikit-learn's ``CalibratedClassifierCV(method="sigmoid", ensemble=False)``, written out so
that model selection, calibration and threshold choice share one set of folds.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.model_selection import StratifiedKFold


def platt_fit(
    scores: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
) -> tuple[float, float]:
    """Platt (1999) sigmoid parameters ``(a, b)`` with smoothed targets, slope ``a >= 0``.

    The slope is kept non-negative: when out-of-fold scores carry no signal they can be
    slightly anti-correlated with the labels (leaving a positive out of training lowers
    its own score), and an unconstrained fit would then invert the ranking of the final
    model. With ``a = 0`` every text gets the (smoothed) base rate instead. With
    ``sample_weight`` each row's log-likelihood term counts that many times.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y, dtype=bool)
    w = np.ones(len(s)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    target = np.where(y, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] * s + theta[1]
        # log(1 + exp(z)) - t * z, the negative log-likelihood, computed stably
        nll = np.logaddexp(0.0, z) - target * z
        resid = w * (1.0 / (1.0 + np.exp(-z)) - target)
        return float(np.dot(w, nll)), np.array([np.dot(resid, s), resid.sum()])

    prior = np.log((n_neg + 1.0) / (n_pos + 1.0))
    res = minimize(
        loss,
        x0=np.array([1.0, -prior]),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None), (None, None)],
    )
    return float(res.x[0]), float(res.x[1])


def sigmoid(z: np.ndarray) -> np.ndarray:
    out = np.empty_like(z, dtype=np.float64)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


class _Standardiser:
    """Column centring and scaling learned in :meth:`fit` (``mean_``, ``scale_``)."""

    def fit(self, x: Any) -> _Standardiser:
        self.mean_ = np.asarray(x.mean(axis=0), dtype=np.float64).ravel()
        std = np.asarray(x.std(axis=0), dtype=np.float64).ravel()
        self.scale_ = np.where(std > 0, std, 1.0)
        return self

    def __call__(self, x: Any) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.mean_) / self.scale_


def _fit_lr(
    x: Any, y: np.ndarray, c: float, seed: int, sample_weight: np.ndarray | None = None
) -> LogisticRegression:
    # liblinear's dual coordinate descent is several times faster than lbfgs on wide sparse
    # TF-IDF matrices; lbfgs suits the narrow dense embeddings. Both are deterministic.
    if sp.issparse(x):
        model = LogisticRegression(
            C=c,
            class_weight="balanced",
            solver="liblinear",
            dual=True,
            max_iter=3000,
            random_state=seed,
        )
    else:
        model = LogisticRegression(
            C=c, class_weight="balanced", solver="lbfgs", max_iter=3000, random_state=seed
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y, sample_weight=sample_weight)
    return model


class CalibratedLinear:
    """Logistic regression with CV-chosen ``C`` and cross-validated Platt calibration."""

    def __init__(
        self,
        c_grid: tuple[float, ...] = (1.0,),
        standardise: bool = False,
        inner_splits: int = 5,
        seed: int = 0,
    ) -> None:
        if not c_grid:
            raise ValueError("c_grid must not be empty")
        self.c_grid = tuple(float(c) for c in c_grid)
        self.standardise = bool(standardise)
        self.inner_splits = int(inner_splits)
        self.seed = int(seed)

    def _prep(self, x: Any, scaler: _Standardiser | None) -> Any:
        if scaler is None:
            return x
        return scaler(x.toarray() if sp.issparse(x) else x)

    def _fit_one(
        self, x: Any, y: np.ndarray, c: float, w: np.ndarray | None = None
    ) -> tuple[LogisticRegression, Any]:
        scaler = _Standardiser().fit(x) if self.standardise else None
        return _fit_lr(self._prep(x, scaler), y, c, self.seed, w), scaler

    def fit(
        self, x: Any, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> CalibratedLinear:
        """Fit on rows ``x`` with labels ``y``; ``sample_weight`` (per row, e.g. per data
        source) weights the regression, the choice of ``C`` and the Platt fit alike."""
        y = np.asarray(y, dtype=bool)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        n_pos, n_neg = int(y.sum()), int((~y).sum())
        if min(n_pos, n_neg) < 2:
            raise ValueError(
                f"need at least 2 positive and 2 negative rows, got {n_pos} and {n_neg}"
            )
        k = min(self.inner_splits, n_pos, n_neg)
        folds = list(
            StratifiedKFold(n_splits=k, shuffle=True, random_state=self.seed).split(
                np.zeros(len(y)), y
            )
        )
        best: tuple[float, float, np.ndarray] | None = None  # (ap, c, oof scores)
        self.cv_average_precision_: dict[str, float] = {}
        for c in self.c_grid:
            oof = np.empty(len(y), dtype=np.float64)
            for train, test in folds:
                w_train = None if w is None else w[train]
                model, scaler = self._fit_one(x[train], y[train], c, w_train)
                oof[test] = model.decision_function(self._prep(x[test], scaler))
            ap = float(average_precision_score(y, oof, sample_weight=w))
            self.cv_average_precision_[repr(c)] = ap
            if best is None or ap > best[0]:
                best = (ap, c, oof)
        assert best is not None
        _, self.c_, oof_scores = best
        self.a_, self.b_ = platt_fit(oof_scores, y, w)
        self.oof_prob_ = sigmoid(self.a_ * oof_scores + self.b_)
        self.inner_folds_ = k
        self.n_train_ = len(y)
        self.n_positive_ = n_pos
        self.prior_ = float(np.average(y, weights=w))
        model, scaler = self._fit_one(x, y, self.c_, w)
        coef = model.coef_.ravel().astype(np.float64)
        intercept = float(model.intercept_[0])
        if scaler is not None:  # fold the standardisation into the linear map
            coef = coef / scaler.scale_
            intercept = intercept - float(np.dot(coef, scaler.mean_))
        self.coef_ = coef
        self.intercept_ = intercept
        return self

    def decision_function(self, x: Any) -> np.ndarray:
        return np.asarray(x @ self.coef_, dtype=np.float64).ravel() + self.intercept_

    def predict_proba(self, x: Any) -> np.ndarray:
        """Calibrated probability of the positive class (1-d)."""
        return sigmoid(self.a_ * self.decision_function(x) + self.b_)

    def summary(self) -> dict[str, Any]:
        return {
            "C": self.c_,
            "c_grid": list(self.c_grid),
            "cv_average_precision": self.cv_average_precision_,
            "platt_a": self.a_,
            "platt_b": self.b_,
            "inner_folds": self.inner_folds_,
            "n_train": self.n_train_,
            "n_positive": self.n_positive_,
            "standardise": self.standardise,
            "prior": getattr(self, "prior_", None),
        }

    def fingerprint(self) -> bytes:
        h = hashlib.sha256(self.coef_.tobytes())
        h.update(np.array([self.intercept_, self.a_, self.b_, self.c_]).tobytes())
        return h.digest()
