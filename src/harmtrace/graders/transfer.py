"""Honest transfer evaluation: does the grader work on a prompt source it never saw?

Leave-one-source-out (LOSO): for every held-out source ``S`` a complete grader is fitted
on all other training sources (same extractor, weights and seed) and scores ``S``.
Pooling these scores gives every record a score from a model that saw nothing of its
source. The same metrics are computed on the cross-fitted (out-of-fold) scores of the
full training set, the in-source reference, so the two can be reported side by side.

Metrics per source (:func:`transfer_metrics`), with the prompt-level score ``s`` the harm
head's ``prob_harmful`` (:mod:`harmtrace.graders.embedded`; scores without it fall back on
the highest of the four category probabilities):

* ``auroc`` -- positives are the source's prompts harmful in one of the four categories
  (``positives == "four categories"``); a source with fewer than ``min_positives`` such
  prompts uses all its harmful prompts instead (``"harmful, any category"``). Negatives are
  the benign prompts of *all* sources (each scored out of its own source), since most
  prompt sets are harmful-only.
* ``auroc_categories`` -- the same contrast scored by ``max over the four categories of
  prob_<cat>``: what a reader who thresholds the category probabilities gets.
* ``f1`` -- F1 of "some category at severity >= 2" on the same positives and negatives.
* ``fpr`` -- share of the source's own benign prompts at severity >= 2 in some category.
* ``category_auroc`` -- mean over categories of the within-source AUROC of
  ``prob_<cat>`` (categories with at least ``min_positives`` known positives and negatives
  in the source), i.e. whether the grader names the right category.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, roc_auc_score

from harmtrace.graders.base import as_texts
from harmtrace.graders.embedded import HARM_COLUMN, EmbeddedGrader
from harmtrace.graders.features import DEFAULT_EXTRACTOR
from harmtrace.graders.labels import category_targets, harm_targets
from harmtrace.taxonomy import CATEGORIES

MIN_POSITIVES = 10


def loso_scores(
    records: pd.DataFrame,
    holdout: Sequence[str],
    extractor: str = DEFAULT_EXTRACTOR,
    seed: int = 0,
    source_weights: dict[str, float] | None = None,
    text_column: str = "prompt",
    **grader_params: Any,
) -> pd.DataFrame:
    """Scores of each held-out source's records by a grader fitted without that source.

    Returns ``record_id``, ``dataset`` and the grader's score columns for the records of
    ``holdout`` (each a value of ``records["dataset"]``).
    """
    names = records["dataset"].astype("string")
    unknown = sorted(set(holdout) - set(names.unique()))
    if unknown:
        raise ValueError(f"hold-out sources {unknown} are not among the training records")
    parts = []
    for source in holdout:
        test = (names == source).to_numpy(dtype=bool)
        model = EmbeddedGrader(extractor=extractor, seed=seed, relevance=False, **grader_params)
        model.fit(records[~test], text_column=text_column, source_weights=source_weights)
        part = model.score(as_texts(records.loc[test, text_column]))
        part.insert(0, "dataset", source)
        part.insert(0, "record_id", records.loc[test, "record_id"].astype("string").to_numpy())
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def prompt_labels(records: pd.DataFrame) -> pd.DataFrame:
    """Per record: ``any4`` (harmful in one of the four categories, three-valued),
    ``harmful`` (any harm) and ``benign`` (not harmful and no category positive)."""
    cats = category_targets(records)
    harm = harm_targets(records)
    any_true = cats.fillna(False).any(axis=1).to_numpy()
    all_false = cats.eq(False).fillna(False).all(axis=1).to_numpy()
    any4 = pd.array([pd.NA] * len(records), dtype="boolean")
    any4[any_true] = True
    any4[all_false & ~any_true] = False
    benign = harm.eq(False).fillna(False).to_numpy() & ~any_true
    return pd.DataFrame(
        {
            "record_id": records["record_id"].astype("string").to_numpy(),
            "dataset": records["dataset"].astype("string").to_numpy(),
            "any4": any4,
            "harmful": harm.to_numpy(),
            "benign": benign,
        }
    ).join(cats.reset_index(drop=True))


def _auroc(y: np.ndarray, s: np.ndarray) -> float:
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")


def transfer_metrics(
    records: pd.DataFrame,
    scores: pd.DataFrame,
    evaluation: str,
    sources: Sequence[str] | None = None,
    min_positives: int = MIN_POSITIVES,
) -> pd.DataFrame:
    """One row per source: AUROC (harm score and highest category), F1 and FPR at severity
    >= 2, category AUROC (see the module docstring). ``scores`` holds ``record_id``,
    ``prob_<cat>``, ``severity_<cat>`` and, from the embedded grader, ``prob_harmful`` for
    the records (LOSO or out-of-fold); ``evaluation`` labels them."""
    labels = prompt_labels(records)
    s = scores.set_index(scores["record_id"].astype("string"))
    have = labels["record_id"].isin(s.index).to_numpy()
    labels = labels[have].reset_index(drop=True)
    sc = s.loc[labels["record_id"]].reset_index(drop=True)
    prob = sc[[f"prob_{c}" for c in CATEGORIES]].to_numpy(dtype=float)
    top4 = prob.max(axis=1)
    top = top4
    if HARM_COLUMN in sc and sc[HARM_COLUMN].notna().all():
        top = sc[HARM_COLUMN].to_numpy(dtype=float)
    flagged = (sc[[f"severity_{c}" for c in CATEGORIES]].to_numpy(dtype=float) >= 2).any(axis=1)
    benign = labels["benign"].to_numpy(dtype=bool)
    rows = []
    for source in sources or sorted(labels["dataset"].unique()):
        mine = (labels["dataset"] == source).to_numpy()
        if not mine.any():
            continue
        pos4 = mine & labels["any4"].fillna(False).to_numpy(dtype=bool)
        kind = "four categories"
        if pos4.sum() < min_positives:
            pos4 = mine & labels["harmful"].fillna(False).to_numpy(dtype=bool)
            kind = "harmful, any category"
        keep = pos4 | benign
        y, score, flag = pos4[keep], top[keep], flagged[keep]
        score4 = top4[keep]
        has_both = 0 < y.sum() < len(y)
        own_benign = mine & benign
        cat_aucs = []
        for j, cat in enumerate(CATEGORIES):
            t = labels[cat].to_numpy(dtype=float, na_value=np.nan)
            known = mine & ~np.isnan(t)
            yc = t[known] == 1
            if yc.sum() >= min_positives and (~yc).sum() >= min_positives:
                cat_aucs.append(_auroc(yc, prob[known, j]))
        rows.append(
            {
                "evaluation": evaluation,
                "dataset": source,
                "n": int(mine.sum()),
                "n_positive": int(pos4.sum()),
                "positives": kind if pos4.any() else "none",
                "n_benign": int(own_benign.sum()),
                "auroc": _auroc(y, score) if pos4.any() else float("nan"),
                "auroc_categories": _auroc(y, score4) if pos4.any() else float("nan"),
                "f1": float(f1_score(y, flag, zero_division=0))
                if has_both and pos4.any()
                else float("nan"),
                "recall": float(flagged[pos4].mean()) if pos4.any() else float("nan"),
                "fpr": float(flagged[own_benign].mean()) if own_benign.any() else float("nan"),
                "category_auroc": float(np.mean(cat_aucs)) if cat_aucs else float("nan"),
                "n_categories": len(cat_aucs),
            }
        )
    return pd.DataFrame(rows)
