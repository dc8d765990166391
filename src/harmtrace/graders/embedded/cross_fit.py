"""Cross-fitting: out-of-fold scores, so no training record is judged by a model that saw
its label, and the training run that saves them beside the model.

Folds are stratified by each record's rarest known-positive category (and by dataset when
there are several), so the scarce positives spread evenly. Each fold model depends only
on its inputs, so fitting the folds in worker processes gives the same bytes as one
process.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from harmtrace.graders.base import as_texts
from harmtrace.graders.embedded.model import EmbeddedGrader
from harmtrace.graders.embedded.persistence import text_digest
from harmtrace.graders.features import (
    DEFAULT_EXTRACTOR,
    EmbeddingCache,
    embedding_parts,
    encoder_id,
    make_extractor,
)
from harmtrace.graders.labels import category_targets
from harmtrace.graders.refusal import RefusalDetector
from harmtrace.taxonomy import CATEGORIES


def fold_strata(records: pd.DataFrame) -> np.ndarray:
    """Stratum per record: its rarest known-positive category, else ``"none"``.

    Rarity is the positive count in ``records``; stratifying on it spreads the scarce
    positives (self-harm, violence) evenly over the folds.
    """
    targets = category_targets(records)
    positives = {c: int(targets[c].fillna(False).sum()) for c in CATEGORIES}
    order = sorted(CATEGORIES, key=lambda c: (positives[c], CATEGORIES.index(c)))
    strata = np.full(len(records), "none", dtype=object)
    for cat in reversed(order):  # rarest written last, so it wins
        strata[targets[cat].fillna(False).to_numpy(dtype=bool)] = cat
    return strata


def fold_assignments(records: pd.DataFrame, n_splits: int = 5, seed: int = 0) -> np.ndarray:
    """Fold index (0..n_splits-1) per record, stratified by :func:`fold_strata` (and by
    dataset, when the records come from several)."""
    strata = fold_strata(records)
    if "dataset" in records and records["dataset"].nunique() > 1:
        names = records["dataset"].astype("string").fillna("").to_numpy(dtype=object)
        strata = np.array([f"{d}|{s}" for d, s in zip(names, strata, strict=True)], dtype=object)
    folds = np.full(len(records), -1, dtype=np.int64)
    skf = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tiny strata in small test sets
        for k, (_, test) in enumerate(skf.split(np.zeros(len(records)), strata)):
            folds[test] = k
    return folds


def _fold_scores(
    records: pd.DataFrame,
    folds: np.ndarray,
    k: int,
    extractor: str,
    seed: int,
    text_column: str,
    source_weights: dict[str, float] | None,
    grader_params: dict[str, Any],
) -> pd.DataFrame:
    """Scores of fold ``k`` by a model fitted on the other folds (a process-pool task)."""
    train = np.flatnonzero(folds != k)
    test = np.flatnonzero(folds == k)
    texts = as_texts(records[text_column])
    model = EmbeddedGrader(extractor=extractor, seed=seed, relevance=False, **grader_params)
    model.fit(records.iloc[train], text_column=text_column, source_weights=source_weights)
    part = model.score([texts[i] for i in test])
    part.index = test
    part.insert(0, "fold", k)
    return part


def _submit_folds(
    records: pd.DataFrame, n_splits: int, seed: int, n_jobs: int, args: tuple
) -> list[Any]:
    """The fold tasks: futures of a process pool with ``n_jobs`` > 1,
    else deferred calls. Each fold model depends only on its inputs, so the scores are
    the same bytes either way."""
    folds = fold_assignments(records, n_splits=n_splits, seed=seed)
    if n_jobs <= 1:
        return [partial(_fold_scores, records, folds, k, *args) for k in range(n_splits)]
    from joblib.externals.loky import get_reusable_executor

    pool = get_reusable_executor(max_workers=min(n_jobs, n_splits))
    return [pool.submit(_fold_scores, records, folds, k, *args) for k in range(n_splits)]


def _gather_folds(records: pd.DataFrame, text_column: str, tasks: list[Any]) -> pd.DataFrame:
    parts = [t.result() if hasattr(t, "result") else t() for t in tasks]
    texts = as_texts(records[text_column])
    out = pd.concat(parts).sort_index()
    out.insert(0, "record_id", records["record_id"].astype("string").to_numpy())
    out.insert(1, "text_sha256", [text_digest(t) for t in texts])
    return out.reset_index(drop=True)


def oof_scores(
    records: pd.DataFrame,
    extractor: str = DEFAULT_EXTRACTOR,
    n_splits: int = 5,
    seed: int = 0,
    text_column: str = "prompt",
    source_weights: dict[str, float] | None = None,
    n_jobs: int = 1,
    **grader_params: Any,
) -> pd.DataFrame:
    """Out-of-fold scores: each record scored by a model fitted on the other folds.

    Every record gets a score, including those whose label is unknown in some category
    (they are simply not training rows of that category). Each fold model picks its own
    thresholds, so severity is also out-of-fold. Returns ``record_id``, ``fold`` and the
    :func:`score_columns`. ``n_jobs`` > 1 fits the folds in that many processes.
    """
    args = (extractor, seed, text_column, source_weights, grader_params)
    tasks = _submit_folds(records, n_splits, seed, n_jobs, args)
    return _gather_folds(records, text_column, tasks)


def training_frame(record_sets: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """One training frame from several record tables (each keeps its ``dataset`` column).

    Columns are the union (a dataset's label columns are missing, i.e. unknown, on the
    others' rows). Record ids must be unique across the sets.
    """
    if not record_sets:
        raise ValueError("no record sets given")
    for i, frame in enumerate(record_sets):
        if "dataset" not in frame or "record_id" not in frame:
            raise ValueError(f"record set {i} lacks the 'dataset' or 'record_id' column")
    out = pd.concat(list(record_sets), ignore_index=True, sort=False)
    dup = out["record_id"].duplicated()
    if dup.any():
        raise ValueError(
            f"{int(dup.sum())} record ids occur in more than one record set, e.g. "
            f"{out.loc[dup, 'record_id'].head(3).tolist()}; give each dataset once"
        )
    return out


def with_embeddings(
    extractor: str, texts: Sequence[str], grader_params: dict[str, Any]
) -> dict[str, Any]:
    """``grader_params`` whose ``embedding_caches`` hold every text's vector for each
    stateless part of ``extractor``, embedded here once: the fold models (in other
    processes) and the full model then read the same vectors, so the bytes do not depend
    on how the folds were spread over processes."""
    caches = dict(grader_params.get("embedding_caches") or {})
    for part in embedding_parts(extractor):
        if part not in caches:
            ex = make_extractor(part)
            caches[part] = EmbeddingCache(part, encoder=encoder_id(ex))
        caches[part].lookup(list(dict.fromkeys(texts)), make_extractor(part).transform)
    return {**grader_params, "embedding_caches": caches} if caches else grader_params


def train_grader(
    records: pd.DataFrame,
    directory: str | Path,
    extractor: str = DEFAULT_EXTRACTOR,
    seed: int = 0,
    n_splits: int = 5,
    source_weights: dict[str, float] | None = None,
    refusal: RefusalDetector | None = None,
    n_jobs: int = 1,
    **grader_params: Any,
) -> EmbeddedGrader:
    """Fit on ``records``, cross-fit out-of-fold scores for them, save both to ``directory``.

    ``records`` may join several record sets (:func:`training_frame`); ``source_weights``
    weights each dataset's records; ``refusal`` is the fitted refusal detector relevance
    uses; ``n_jobs`` processes fit the fold models. This is what ``harmtrace train-grader``
    runs. Grade
    the training records themselves with ``grade_records(model, records,
    prompt_scores=stored_oof_scores(directory, records))`` so that none of them is judged
    by a model that saw its label.
    """
    grader_params = with_embeddings(extractor, as_texts(records["prompt"]), grader_params)
    args = (extractor, seed, "prompt", source_weights, grader_params)
    # with n_jobs > 1 the fold models are fitted in worker processes while this one fits
    # the full model: the training job's time on the DAG's critical path drops by about half
    tasks = _submit_folds(records, n_splits, seed, n_jobs, args)
    model = EmbeddedGrader(extractor=extractor, seed=seed, **grader_params)
    model.fit(records, source_weights=source_weights, refusal=refusal)
    oof = _gather_folds(records, "prompt", tasks)
    params = {"n_splits": n_splits, "seed": seed, "source_weights": dict(source_weights or {})}
    model.save(directory, oof=oof, oof_params=params)
    return model
