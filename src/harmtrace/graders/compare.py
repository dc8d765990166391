"""Compare feature extractors for the embedded grader by repeated out-of-fold evaluation.

For each extractor and each seed, the records are split into ``n_splits`` stratified folds
(:func:`harmtrace.graders.embedded.fold_assignments`). In each fold the extractor is fitted
on the training texts only, one :class:`~harmtrace.graders.calibration.CalibratedLinear`
per category is trained on the training records with a known label (``C`` and Platt
scaling chosen on inner folds), and the held-out fold is scored. Per seed and category,
the pooled held-out predictions give AUROC, average precision (AUPRC) and F1 at the
threshold each fold model chose inside its own training data (``t_mid``, maximum F1 on
inner out-of-fold predictions). Throughput is the number of held-out texts divided by the
time spent featurising them and computing the four category probabilities.

``embedding_caches`` (from ``harmtrace embed-texts``) supply precomputed embeddings of
stateless extractors, also inside stacks such as ``tfidf+minilm``, so each text is
embedded once; throughput is then not measured (``texts_per_s`` is NaN) because a cache
lookup says nothing about speed: take it from ``benchmarks/bench_embedded_grader.py``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from harmtrace.graders.base import as_texts
from harmtrace.graders.calibration import CalibratedLinear
from harmtrace.graders.embedded import fold_assignments
from harmtrace.graders.features import COMPARED_EXTRACTORS, make_extractor
from harmtrace.graders.labels import category_targets
from harmtrace.graders.severity import best_fbeta_threshold
from harmtrace.taxonomy import CATEGORIES


def evaluate_extractor(
    records: pd.DataFrame,
    extractor: str,
    n_splits: int = 5,
    seeds: Sequence[int] = (0, 1, 2),
    inner_splits: int = 5,
    text_column: str = "prompt",
    extractor_params: dict[str, Any] | None = None,
    embedding_caches: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Per-seed, per-category out-of-fold metrics for one extractor (see module docstring)."""
    texts = as_texts(records[text_column])
    targets = category_targets(records)
    caches = embedding_caches or None

    def new() -> Any:
        return make_extractor(extractor, caches=caches, **(extractor_params or {}))

    probe = new()
    cached = probe.fit(texts).transform(texts) if probe.stateless else None
    rows = []
    for seed in seeds:
        folds = fold_assignments(records, n_splits=n_splits, seed=seed)
        prob = {c: np.full(len(records), np.nan) for c in CATEGORIES}
        flag = {c: np.zeros(len(records), dtype=bool) for c in CATEGORIES}
        scored_texts, scoring_seconds = 0, 0.0
        started = time.perf_counter()
        for k in range(n_splits):
            train = np.flatnonzero(folds != k)
            test = np.flatnonzero(folds == k)
            ex = new()
            ex.fit([texts[i] for i in train])
            x_train = (
                cached[train] if cached is not None else ex.transform([texts[i] for i in train])
            )
            models: dict[str, CalibratedLinear] = {}
            t_mid: dict[str, float] = {}
            for cat in CATEGORIES:
                known = targets[cat].iloc[train].notna().to_numpy()
                y = targets[cat].iloc[train].to_numpy(dtype=bool, na_value=False)[known]
                models[cat] = CalibratedLinear(
                    c_grid=ex.c_grid, standardise=ex.dense, inner_splits=inner_splits, seed=seed
                ).fit(x_train[np.flatnonzero(known)], y)
                t_mid[cat] = best_fbeta_threshold(y, models[cat].oof_prob_, beta=1.0)
            t0 = time.perf_counter()
            x_test = ex.transform([texts[i] for i in test])
            test_prob = {cat: models[cat].predict_proba(x_test) for cat in CATEGORIES}
            scoring_seconds += time.perf_counter() - t0
            scored_texts += len(test)
            for cat in CATEGORIES:
                prob[cat][test] = test_prob[cat]
                flag[cat][test] = test_prob[cat] >= t_mid[cat]
        elapsed = time.perf_counter() - started
        for cat in CATEGORIES:
            known = targets[cat].notna().to_numpy()
            y = targets[cat].to_numpy(dtype=bool, na_value=False)[known]
            p = prob[cat][known]
            rows.append(
                {
                    "extractor": extractor,
                    "seed": int(seed),
                    "category": cat,
                    "n_known": int(known.sum()),
                    "n_positive": int(y.sum()),
                    "auroc": float(roc_auc_score(y, p)),
                    "auprc": float(average_precision_score(y, p)),
                    "f1": float(f1_score(y, flag[cat][known])),
                    "texts_per_s": float("nan") if caches else scored_texts / scoring_seconds,
                    "cv_seconds": elapsed,
                }
            )
    return pd.DataFrame(rows)


def summarize_comparison(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds per extractor and category (tidy, one row per pair)."""
    grouped = per_seed.groupby(["extractor", "category"], sort=False)
    summary = grouped.agg(
        n_known=("n_known", "first"),
        n_positive=("n_positive", "first"),
        n_seeds=("seed", "nunique"),
        auroc_mean=("auroc", "mean"),
        auroc_sd=("auroc", "std"),
        auprc_mean=("auprc", "mean"),
        auprc_sd=("auprc", "std"),
        f1_mean=("f1", "mean"),
        f1_sd=("f1", "std"),
        texts_per_s=("texts_per_s", "median"),
    ).reset_index()
    return summary


def compare_extractors(
    records: pd.DataFrame,
    extractors: Sequence[str] = COMPARED_EXTRACTORS,
    n_splits: int = 5,
    seeds: Sequence[int] = (0, 1, 2),
    inner_splits: int = 5,
    text_column: str = "prompt",
    per_seed: bool = False,
    embedding_caches: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Tidy comparison table: extractor, category, AUROC / AUPRC / F1 mean and sd over
    seeds, texts/s. With ``per_seed=True`` the unaggregated per-seed rows are returned."""
    frames = [
        evaluate_extractor(
            records,
            name,
            n_splits=n_splits,
            seeds=seeds,
            inner_splits=inner_splits,
            text_column=text_column,
            embedding_caches=embedding_caches,
        )
        for name in extractors
    ]
    rows = pd.concat(frames, ignore_index=True)
    return rows if per_seed else summarize_comparison(rows)


def loso_comparison(
    records: pd.DataFrame,
    extractors: Sequence[str],
    sources: Sequence[str],
    seed: int = 0,
    inner_splits: int = 3,
    embedding_caches: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Leave-one-source-out AUROC of the harm head per extractor and held-out prompt source
    (:mod:`harmtrace.graders.transfer`): a complete grader fitted without the source
    scores it, each extractor with its own ``C`` grid."""
    from harmtrace.graders.transfer import loso_scores, transfer_metrics

    rows = []
    for name in extractors:
        scores = loso_scores(
            records,
            sources,
            extractor=name,
            seed=seed,
            inner_splits=inner_splits,
            embedding_caches=embedding_caches,
        )
        metrics = transfer_metrics(records, scores, "loso", sources)
        for r in metrics.itertuples():
            rows.append({"extractor": name, "dataset": r.dataset, "auroc": float(r.auroc)})
    return pd.DataFrame(rows, columns=["extractor", "dataset", "auroc"])


def choose_default_extractor(summary: pd.DataFrame, loso: pd.DataFrame) -> str:
    """The rule, fixed before any figure was seen: the extractor with the highest
    leave-one-source-out AUROC averaged over the held-out prompt sources (to 2 decimals);
    ties go to the higher out-of-fold AUPRC on the moderation texts averaged over the
    four categories (to 3 decimals), then to the extractor listed first; with no held-out
    prompt set (``loso`` empty) the AUPRC decides. No timing enters:
    speed is measured by ``make bench`` and reported, never used to choose."""
    order = list(dict.fromkeys(summary["extractor"]))
    auprc = summary.groupby("extractor", sort=False)["auprc_mean"].mean()
    if loso.empty:  # no prompt set among the training data: out-of-fold AUPRC alone
        loso = pd.DataFrame({"extractor": order, "dataset": "", "auroc": 0.0})
    auroc = loso.groupby("extractor", sort=False)["auroc"].mean().fillna(0.0)
    missing = sorted(set(order) - set(auroc.index))
    if missing:
        raise ValueError(f"no leave-one-source-out AUROC for extractor(s) {missing}")
    ranked = sorted(
        order,
        key=lambda e: (-round(float(auroc[e]), 2), -round(float(auprc[e]), 3), order.index(e)),
    )
    return ranked[0]
