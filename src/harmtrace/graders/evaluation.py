"""How well the grader agrees with human labels, measured only on out-of-fold scores.

These numbers go into the paper's validity section, so they are computed from
the same out-of-fold scores that grade the training set, never from in-sample
predictions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from harmtrace.graders.labels import category_targets, severe_targets
from harmtrace.proportions import wilson_interval
from harmtrace.taxonomy import CATEGORIES


def _wilson(k: int, n: int) -> tuple[float, float]:
    """The project's 95% Wilson interval for one group (NaN when empty)."""
    (lo,), (hi,) = wilson_interval(k, n, 0.05)
    return (float(lo), float(hi))


def oof_metrics(records: pd.DataFrame, oof: pd.DataFrame) -> pd.DataFrame:
    """Per category: known/positive counts, AUROC, AUPRC, F1 and recall of severity >= 2.

    ``oof`` holds ``record_id``, ``prob_<cat>`` and ``severity_<cat>`` for every
    record (e.g. :func:`harmtrace.graders.embedded.oof_scores`). Records whose
    label is unknown in a category are left out of that category's metrics.
    """
    scores = oof.set_index("record_id").loc[records["record_id"]].reset_index(drop=True)
    targets = category_targets(records).reset_index(drop=True)
    rows = []
    for cat in CATEGORIES:
        known = targets[cat].notna().to_numpy()
        y = targets[cat][known].astype(bool).to_numpy()
        p = scores[f"prob_{cat}"].to_numpy(dtype=float)[known]
        flagged = scores[f"severity_{cat}"].to_numpy(dtype=float)[known] >= 2
        both = 0 < y.sum() < len(y)
        tp = int((flagged & y).sum())
        lo, hi = _wilson(tp, int(y.sum()))
        rows.append(
            {
                "category": cat,
                "n_known": int(known.sum()),
                "n_positive": int(y.sum()),
                "base_rate": float(y.mean()) if len(y) else np.nan,
                "auroc": float(roc_auc_score(y, p)) if both else np.nan,
                "auprc": float(average_precision_score(y, p)) if both else np.nan,
                "f1": float(f1_score(y, flagged, zero_division=0)) if both else np.nan,
                "recall": tp / y.sum() if y.sum() else np.nan,
                "recall_lo": float(lo),
                "recall_hi": float(hi),
                "precision": tp / flagged.sum() if flagged.sum() else np.nan,
            }
        )
    return pd.DataFrame(rows)


def severe_agreement(records: pd.DataFrame, oof: pd.DataFrame) -> pd.DataFrame:
    """How often severity 3 coincides with the human severe sub-label (H2, S3, V2)."""
    scores = oof.set_index("record_id").loc[records["record_id"]].reset_index(drop=True)
    severe = severe_targets(records).reset_index(drop=True)
    rows = []
    for cat in severe.columns:
        known = severe[cat].notna().to_numpy()
        y = severe[cat][known].astype(bool).to_numpy()
        high = scores[f"severity_{cat}"].to_numpy(dtype=float)[known] == 3
        rows.append(
            {
                "category": cat,
                "n_known": int(known.sum()),
                "n_severe": int(y.sum()),
                "n_predicted_3": int(high.sum()),
                "recall_3": (high & y).sum() / y.sum() if y.sum() else np.nan,
                "precision_3": (high & y).sum() / high.sum() if high.sum() else np.nan,
            }
        )
    return pd.DataFrame(rows)


def flag_rates(judgments: pd.DataFrame, side: str = "prompt") -> pd.DataFrame:
    """Share of texts at severity >= 1 and >= 2, per category and for any category.

    On benchmarks whose prompts are all harmful by construction this is a
    transfer check: how much of the known harm the grader's thresholds,
    chosen on the moderation texts, still catch.
    """
    rows = []
    sev = {c: judgments[f"{side}_severity_{c}"].astype("Float64") for c in CATEGORIES}
    known = pd.concat(sev.values(), axis=1).notna().all(axis=1)
    top = pd.concat(sev.values(), axis=1).max(axis=1)
    for name, values in [*sev.items(), ("any", top)]:
        v = values[known].astype(float)
        for level in (1, 2):
            k, n = int((v >= level).sum()), len(v)
            lo, hi = _wilson(k, n)
            rows.append(
                {
                    "category": name,
                    "level": level,
                    "k": k,
                    "n": n,
                    "share": k / n if n else np.nan,
                    "ci_lo": float(lo),
                    "ci_hi": float(hi),
                }
            )
    return pd.DataFrame(rows)
