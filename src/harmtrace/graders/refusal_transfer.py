"""Refusal detection across sources: in source (out-of-fold) and out of source.

A refusal detector learned from one kind of answers must also read another model
family's refusal style (a terse "I can't", a lecture, a redirection, an answer about
something else). Every dataset whose records carry refusal labels is a *source*:

* ``pyr_refusal``: PyRIT's human labels (1 = refused, or answered something else);
* ``air_judge_score``: the AIR-Bench GPT-4 judge (1 refused; 0.5 partial and 0 complied
  count as not refused, as in :mod:`harmtrace.analysis.validity`).

Method (:func:`refusal_transfer`). For each source S, two detectors
(:class:`~harmtrace.graders.refusal.RefusalDetector`, same lexicon and seed):

* **in source**: fitted on S alone; its 5-fold out-of-fold decisions on S (each fold
  model with the threshold chosen on the out-of-fold probabilities);
* **out of source**: fitted on every other source pooled; its decisions on S;
* **deployed**: the detector the DAG uses, fitted on the sources named ``train``
  (``grader.embedded.refusal.labels``) pooled; out-of-fold on its own training responses
  (each read by the fold model that did not see it), out of source on the others.

Agreement with the labels is Cohen's kappa (for two levels the quadratic weights of
:func:`~harmtrace.stats.ordinal_agreement` give the unweighted kappa) with a percentile
bootstrap interval over responses, and recall and false-positive rate. The DAG's own
detector trains on ``grader.embedded.refusal.labels``; the relevance check's dataset
(AIR-Bench) is never training data there, so its out-of-source row is the figure that
the workflow's relevance numbers rest on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harmtrace.errors import HarmtraceError
from harmtrace.graders.base import as_texts
from harmtrace.graders.refusal import RefusalDetector, agreement
from harmtrace.stats import ordinal_agreement

__all__ = ["RefusalTransfer", "refusal_labels", "refusal_transfer"]

LABEL = "refused"
"""Column of the unified refusal label in :func:`refusal_labels`."""


FLOATS = ("kappa", "kappa_lo", "kappa_hi", "recall", "false_positive_rate", "accuracy")
"""Metric columns (nullable: a kappa is undefined when one side never varies)."""


class RefusalTransferError(HarmtraceError):
    """Refusal-labelled sources that cannot be compared."""


def refusal_labels(records: pd.DataFrame) -> pd.DataFrame:
    """``record_id``, ``dataset``, ``response`` and the boolean ``refused`` of every
    record with a response and a refusal label (``pyr_refusal`` or the AIR-Bench judge)."""
    if "pyr_refusal" in records.columns and records["pyr_refusal"].notna().any():
        label = records["pyr_refusal"].astype("boolean")
    elif "air_judge_score" in records.columns and records["air_judge_score"].notna().any():
        score = records["air_judge_score"].astype("Float64")
        label = (score == 1.0).astype("boolean").mask(score.isna())
    else:
        name = records["dataset"].iloc[0] if len(records) else "?"
        raise RefusalTransferError(
            f"{name}: no refusal labels (a 'pyr_refusal' or 'air_judge_score' column)"
        )
    keep = label.notna() & records["response"].notna()
    return pd.DataFrame(
        {
            "record_id": records.loc[keep, "record_id"].astype("string").to_numpy(),
            "dataset": records.loc[keep, "dataset"].astype("string").to_numpy(),
            "response": records.loc[keep, "response"].to_numpy(),
            LABEL: label[keep].astype(bool).to_numpy(),
        }
    )


@dataclass(frozen=True)
class RefusalTransfer:
    """Per source and evaluation (``oof`` in source, ``loso`` out of source, ``deployed``
    the DAG's detector)."""

    metrics: pd.DataFrame = field(repr=False)
    decisions: pd.DataFrame = field(repr=False)
    """record_id, dataset, evaluation, refused (label), flag."""


def _row(
    source: str,
    evaluation: str,
    y: np.ndarray,
    flag: np.ndarray,
    trained_on: list[str],
    alpha: float,
    n_resamples: int,
    seed: int,
) -> dict[str, object]:
    agr = ordinal_agreement(
        y.astype(int), flag.astype(int), [0, 1], alpha=alpha, n_resamples=n_resamples, seed=seed
    )
    stats = agreement(y, flag)
    return {
        "dataset": source,
        "evaluation": evaluation,
        "trained_on": ", ".join(trained_on),
        "n": len(y),
        "n_refused": int(y.sum()),
        "n_flagged": int(flag.sum()),
        "kappa": agr.kappa_quadratic,
        "kappa_lo": agr.kappa_lo,
        "kappa_hi": agr.kappa_hi,
        "recall": stats["recall"],
        "false_positive_rate": stats["false_positive_rate"],
        "accuracy": stats["accuracy"],
    }


def refusal_transfer(
    lexicon: pd.DataFrame,
    sources: Mapping[str, pd.DataFrame],
    train: list[str] | None = None,
    seed: int = 0,
    n_splits: int = 5,
    alpha: float = 0.05,
    n_resamples: int = 2000,
) -> RefusalTransfer:
    """In-source and out-of-source refusal agreement for each labelled source (see the
    module doc); ``sources`` maps a name to its :func:`refusal_labels` frame, ``train``
    names the deployed detector's sources (None: no deployed rows)."""
    if len(sources) < 2:
        raise RefusalTransferError(
            f"need at least two refusal-labelled sources to hold one out, got {sorted(sources)}"
        )
    unknown = sorted(set(train or []) - set(sources))
    if unknown:
        raise RefusalTransferError(
            f"deployed detector's sources {unknown} are not among the sources {sorted(sources)}"
        )

    def fit(frame: pd.DataFrame) -> RefusalDetector:
        return RefusalDetector(seed=seed, n_splits=n_splits).fit(lexicon, frame, LABEL)

    deployed = None
    if train:
        pooled = pd.concat([sources[n] for n in sorted(train)], ignore_index=True)
        deployed = fit(pooled)
    rows, decisions = [], []
    for name in sorted(sources):
        own = sources[name].reset_index(drop=True)
        y = own[LABEL].to_numpy(bool)
        inside = fit(own)
        oof = inside.in_source_["flag"].to_numpy(bool)
        others = sorted(n for n in sources if n != name)
        outside = fit(pd.concat([sources[n] for n in others], ignore_index=True))
        loso = outside.detect(as_texts(own["response"]))
        runs = [("oof", oof, [name]), ("loso", loso, others)]
        if deployed is not None:
            runs.append(("deployed", deployed.detect(as_texts(own["response"])), sorted(train)))
        for evaluation, flag, trained in runs:
            rows.append(_row(name, evaluation, y, flag, trained, alpha, n_resamples, seed))
            decisions.append(
                pd.DataFrame(
                    {
                        "record_id": own["record_id"].astype("string"),
                        "dataset": name,
                        "evaluation": evaluation,
                        LABEL: y,
                        "flag": flag,
                    }
                )
            )
    metrics = pd.DataFrame(rows).astype(
        {
            **{c: "string" for c in ("dataset", "evaluation", "trained_on")},
            **{c: "Int64" for c in ("n", "n_refused", "n_flagged")},
            **{c: "Float64" for c in FLOATS},
        }
    )
    return RefusalTransfer(metrics, pd.concat(decisions, ignore_index=True))
