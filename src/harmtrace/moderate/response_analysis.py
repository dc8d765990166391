"""Stage 1 of the moderation flow: the safety analysis every policy starts from.

Records are joined to their judgments (the whole-response scores the rest of the workflow
uses), each response is split into sentences (:mod:`harmtrace.moderate.sentences`) and
every sentence is scored in one batch. This is the costly part and does not depend on the
policy, so the policy simulation runs it once and applies every policy to the result.
The judgments must come from the scorer's grader, so that whole-response scores, sentence
scores and re-scored outputs are comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harmtrace.errors import HarmtraceError
from harmtrace.graders.base import as_texts
from harmtrace.moderate.backends import Scorer
from harmtrace.moderate.sentences import Span, split_many
from harmtrace.taxonomy import CATEGORIES

RECORD_COLUMNS = ("record_id", "dataset", "item_id", "prompt", "context", "response")


class ModerationError(HarmtraceError):
    """Inputs to the moderation flow do not fit together."""


@dataclass
class ResponseAnalysis:
    """Everything the flow knows about the responses before a policy is applied.

    ``items`` has one row per record with a response, in input order (record columns,
    prompt and response severities per category, relevance, refusal). Sentences of item
    ``i`` are rows ``offsets[i]:offsets[i+1]`` of ``sentence_scores``.
    """

    items: pd.DataFrame
    spans: list[list[Span]]
    offsets: np.ndarray
    sentence_scores: pd.DataFrame
    scorer_name: str
    scorer_version: str
    judgments_version: str
    n_records: int
    n_without_response: int

    @property
    def n_items(self) -> int:
        return len(self.items)

    def response_values(self, kind: str) -> np.ndarray:
        """(items x categories) array of whole-response ``prob`` or ``severity``."""
        cols = [f"response_{kind}_{c}" for c in CATEGORIES]
        return self.items[cols].to_numpy(dtype=float, na_value=np.nan)

    def sentence_values(self, kind: str) -> np.ndarray:
        cols = [f"{kind}_{c}" for c in CATEGORIES]
        return self.sentence_scores[cols].to_numpy(dtype=float, na_value=np.nan)

    def sentence_item(self) -> np.ndarray:
        """Item position of every sentence row."""
        return np.repeat(np.arange(self.n_items), np.diff(self.offsets))


def _judged_items(records: pd.DataFrame, judgments: pd.DataFrame) -> pd.DataFrame:
    missing_cols = [c for c in RECORD_COLUMNS if c not in records.columns]
    if missing_cols:
        raise ModerationError(f"records lack column(s) {missing_cols}")
    if records["record_id"].duplicated().any():
        dup = records.loc[records["record_id"].duplicated(), "record_id"].iloc[0]
        raise ModerationError(f"records hold duplicate record_id values, e.g. {dup}")
    need = [
        "record_id",
        "status",
        "relevance",
        "refusal",
        "grader_version",
        *(f"prompt_severity_{c}" for c in CATEGORIES),
        *(f"response_{k}_{c}" for c in CATEGORIES for k in ("prob", "severity", "confidence")),
    ]
    lacking = [c for c in need if c not in judgments.columns]
    if lacking:
        raise ModerationError(f"judgments lack column(s) {lacking}")
    known = set(judgments["record_id"])
    unjudged = [r for r in records["record_id"] if r not in known]
    if unjudged:
        raise ModerationError(
            f"{len(unjudged)} record(s) have no judgment, e.g. {unjudged[:3]}; "
            "grade the records again so records and judgments match"
        )
    rec = records[[*RECORD_COLUMNS, *(["response_source"] if "response_source" in records else [])]]
    items = rec.merge(judgments[need], on="record_id", how="left", validate="one_to_one")
    if "response_source" not in items:
        items["response_source"] = pd.NA
    return items


def analyse_responses(
    records: pd.DataFrame, judgments: pd.DataFrame, scorer: Scorer, workers: int = 1
) -> ResponseAnalysis:
    """Join, split and score: the policy-independent part of the flow.

    The judgments must come from the same grader as ``scorer`` (same version string), so
    that whole-response scores, sentence scores and re-scored outputs are comparable.
    ``workers`` processes split sentences (see :func:`~harmtrace.moderate.sentences.split_many`).
    """
    items = _judged_items(records, judgments)
    versions = sorted(set(items["grader_version"].dropna().astype(str)))
    if len(versions) > 1:
        raise ModerationError(f"judgments mix grader versions {versions}; grade again")
    if versions and not (
        versions[0] == scorer.version or versions[0].startswith(f"{scorer.version}/")
    ):
        raise ModerationError(
            f"judgments were graded by {versions[0]!r} but the scorer is {scorer.version!r}; "
            "pass the model the judgments were graded with, or grade again"
        )
    has_response = items["response"].notna().to_numpy()
    n_records = len(items)
    items = items.loc[has_response].reset_index(drop=True)
    failed = (items["status"].astype(str) != "ok").to_numpy()
    if failed.any():
        raise ModerationError(
            f"{int(failed.sum())} response(s) have failed judgments (status != ok), e.g. "
            f"record {items.loc[failed, 'record_id'].iloc[0]}; grade them again"
        )
    unscored = items[[f"response_severity_{c}" for c in CATEGORIES]].isna().any(axis=1)
    if unscored.any():
        raise ModerationError(
            f"{int(unscored.sum())} response(s) have no response severity in the judgments, "
            f"e.g. record {items.loc[unscored, 'record_id'].iloc[0]}; grade them again"
        )
    responses = as_texts(items["response"])
    spans = split_many(responses, workers=workers)
    counts = np.array([len(s) for s in spans], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    sentence_texts = [sp.text for group in spans for sp in group]
    scores = scorer.score(sentence_texts).reset_index(drop=True)
    if len(scores) != len(sentence_texts):
        raise ModerationError(
            f"scorer {scorer.version} returned {len(scores)} rows for {len(sentence_texts)} texts"
        )
    return ResponseAnalysis(
        items=items,
        spans=spans,
        offsets=offsets,
        sentence_scores=scores,
        scorer_name=scorer.name,
        scorer_version=scorer.version,
        judgments_version=versions[0] if versions else scorer.version,
        n_records=n_records,
        n_without_response=int((~has_response).sum()),
    )
