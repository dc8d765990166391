"""Judgments of records by a fitted embedded grader.

The prompt side is scored by the model (or by stored out-of-fold scores for training
records), reading earlier dialogue turns; the response side is scored on what the
response conveys, beside its relevance and refusal. Prior shift, when asked for, adjusts
each side's category probabilities before severities are assigned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from harmtrace.errors import HarmtraceError
from harmtrace.graders.base import as_texts, judgment_columns, judgment_dtypes
from harmtrace.graders.dialogue import turn_index
from harmtrace.graders.embedded.columns import (
    GRADER_NAME,
    HARM_COLUMN,
    HARM_FLAG,
    score_columns,
)
from harmtrace.graders.embedded.model import EmbeddedGrader
from harmtrace.graders.prior_shift import shift_scores
from harmtrace.taxonomy import CATEGORIES


def _side_columns(side: str, scores: pd.DataFrame) -> dict[str, Any]:
    cols: dict[str, Any] = {}
    for c in CATEGORIES:
        cols[f"{side}_prob_{c}"] = scores[f"prob_{c}"]
        cols[f"{side}_severity_{c}"] = scores[f"severity_{c}"]
        cols[f"{side}_confidence_{c}"] = scores[f"confidence_{c}"]
    cols[f"{side}_prob_harmful"] = scores[HARM_COLUMN]
    cols[f"{side}_harmful"] = scores[HARM_FLAG]
    return cols


def _prompt_scores(
    model: EmbeddedGrader,
    records: pd.DataFrame,
    record_ids: np.ndarray,
    prompt_scores: pd.DataFrame | None,
    partial: bool,
) -> pd.DataFrame:
    """Prompt-side scores in record order: ``prompt_scores`` where they have the record,
    the model's elsewhere (only allowed when ``partial``)."""
    if prompt_scores is None:
        return model.score(as_texts(records["prompt"]))
    indexed = prompt_scores.set_index(prompt_scores["record_id"].astype("string"))
    if indexed.index.duplicated().any():
        raise ValueError("prompt_scores has duplicate record_id values")
    missing = pd.Index(record_ids).difference(indexed.index)
    if len(missing) and not partial:
        raise ValueError(f"prompt_scores lacks {len(missing)} of the records")
    have = pd.Index(record_ids).isin(indexed.index)
    pieces = []
    if have.any():
        part = indexed.loc[record_ids[have], score_columns()]
        part.index = np.flatnonzero(have)
        pieces.append(part)
    if (~have).any():
        part = model.score(as_texts(records["prompt"].iloc[np.flatnonzero(~have)]))
        part.index = np.flatnonzero(~have)
        pieces.append(part)
    return pd.concat(pieces).sort_index().reset_index(drop=True)


def _response_scores(
    model: EmbeddedGrader,
    records: pd.DataFrame,
    response_text: Literal["conveyed", "whole"],
    prior_shift: bool,
) -> tuple[np.ndarray, pd.DataFrame | None, pd.DataFrame | None]:
    """Rows with a response, their relevance and their scores (None without responses)."""
    if "response" in records:
        has_resp = records["response"].notna().to_numpy()
    else:
        has_resp = np.zeros(len(records), dtype=bool)
    idx = np.flatnonzero(has_resp)
    responses = as_texts(records["response"].iloc[idx]) if len(idx) else []
    rel = None
    if len(idx) and model.relevance_ is not None:
        contexts = as_texts(records["context"].iloc[idx]) if "context" in records else None
        rel = model.relevance_.score(as_texts(records["prompt"].iloc[idx]), responses, contexts)
    r_scores = None
    if len(idx) and response_text == "conveyed":
        if rel is None:
            raise HarmtraceError(
                "response_text=conveyed needs the grader's refusal detector, and this "
                "model has none: train it with relevance, or set response_text: whole"
            )
        r_scores = score_conveyed(model, list(rel["conveyed"]))
    elif len(idx):
        r_scores = model.score(responses)
    if prior_shift and r_scores is not None:
        r_scores = shift_scores(model, r_scores)
    return idx, rel, r_scores


def _add_response_columns(
    out: pd.DataFrame,
    idx: np.ndarray,
    rel: pd.DataFrame | None,
    r_scores: pd.DataFrame | None,
) -> None:
    """The response side, relevance and refusal of ``out``: null on rows without a response."""
    n = len(out)
    response_cols = [
        (f"{kind}_{c}", kind) for c in CATEGORIES for kind in ("prob", "severity", "confidence")
    ]
    response_cols += [(HARM_COLUMN, "prob"), (HARM_FLAG, "flag")]
    for col, kind in response_cols:
        dtype = {"severity": "Int8", "flag": "boolean"}.get(kind, "Float64")
        arr = pd.array([pd.NA] * n, dtype=dtype)
        if r_scores is not None:
            arr[idx] = pd.array(r_scores[col].to_numpy(), dtype=dtype)
        out[f"response_{col}"] = arr
    relevance = pd.array([pd.NA] * n, dtype="Int8")
    refusal = pd.array([pd.NA] * n, dtype="boolean")
    if rel is not None:
        relevance[idx] = rel["relevance"].array
        refusal[idx] = rel["refusal"].array
    out["relevance"] = relevance
    out["refusal"] = refusal


def grade_records(
    model: EmbeddedGrader,
    records: pd.DataFrame,
    prompt_scores: pd.DataFrame | None = None,
    partial: bool = False,
    prior_shift: bool = False,
    response_text: Literal["conveyed", "whole"] = "conveyed",
    prompt_text: Literal["dialogue", "last_turn"] = "dialogue",
) -> pd.DataFrame:
    """Judgments for ``records`` (columns: :func:`harmtrace.graders.base.judgment_columns`).

    ``prompt_scores`` replaces the model's prompt-side scores, e.g. :func:`oof_scores` for
    the records the model was trained on; it is matched on ``record_id`` and must cover
    every record unless ``partial`` is set (then records it lacks are scored by the
    model, e.g. with :func:`oof_for_texts`). Responses that are null get null response
    columns, relevance and refusal. With ``prior_shift`` the category probabilities of
    each side are adjusted to this dataset's own category priors
    (:mod:`harmtrace.graders.prior_shift`) before severities are assigned.

    ``response_text="conveyed"`` scores each response on what it conveys
    (:func:`harmtrace.graders.relevance.analyse_refusal`): a refusal that names the harm
    it declines, a sign-off or a crisis line is not that harm, and a response that
    conveys nothing gets probability 0 and severity 0. ``"whole"`` scores the full text.

    ``prompt_text="dialogue"`` grades the prompt side of a record with earlier turns in
    ``context`` by the highest probability over its turns (:mod:`harmtrace.graders.dialogue`);
    ``prompt_scope`` says which reading each row got and ``prompt_last_turn_severity``
    keeps the last turn's own overall severity. Records graded by ``prompt_scores``
    (out-of-fold) keep the last-turn reading.
    """
    n = len(records)
    record_ids = records["record_id"].astype("string").to_numpy()
    p_scores = _prompt_scores(model, records, record_ids, prompt_scores, partial)
    last_turn = overall_severity(p_scores)
    scope = np.full(n, "last_turn", dtype=object)
    if prompt_text == "dialogue" and "context" in records:
        p_scores, in_dialogue = dialogue_scores(model, records, p_scores, prompt_scores)
        scope[in_dialogue] = "dialogue"
    if prior_shift:
        p_scores = shift_scores(model, p_scores)
    out = pd.DataFrame({"record_id": record_ids})
    out["prompt_scope"] = pd.array(scope, dtype="string")
    out["prompt_last_turn_severity"] = pd.array(last_turn, dtype="Int8")
    for col, values in _side_columns("prompt", p_scores).items():
        out[col] = np.asarray(values)
    _add_response_columns(out, *_response_scores(model, records, response_text, prior_shift))
    out["status"] = "ok"
    out["error"] = pd.NA
    out["grader"] = GRADER_NAME
    out["grader_version"] = model.version
    out = out[judgment_columns()]
    return out.astype(judgment_dtypes())


def overall_severity(scores: pd.DataFrame) -> np.ndarray:
    """Highest category severity per row (the record-level severity of the analyses)."""
    cols = [f"severity_{c}" for c in CATEGORIES]
    return scores[cols].astype("float64").max(axis=1).to_numpy()


def dialogue_scores(
    model: EmbeddedGrader,
    records: pd.DataFrame,
    p_scores: pd.DataFrame,
    prompt_scores: pd.DataFrame | None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Prompt scores of records with earlier turns replaced by the dialogue reading (the
    highest probability per head over the turns and the last turn), and which rows
    changed reading. Rows scored out-of-fold keep their scores."""
    contexts = as_texts(records["context"])
    turns, owner = turn_index(contexts)
    has_turns = np.zeros(len(records), dtype=bool)
    has_turns[owner] = True
    if prompt_scores is not None:
        oof_ids = set(prompt_scores["record_id"].astype("string"))
        has_turns &= ~records["record_id"].astype("string").isin(oof_ids).to_numpy()
    rows = np.flatnonzero(has_turns)
    if not len(rows):
        return p_scores, has_turns
    keep = [i for i, o in enumerate(owner) if has_turns[o]]
    turn_texts = [turns[i] for i in keep]
    turn_owner = np.array([owner[i] for i in keep])
    probs = model.predict(as_texts(records["prompt"].iloc[rows]) + turn_texts)
    where = np.concatenate([rows, turn_owner])
    best = probs.groupby(where, sort=True).max()  # NaN heads stay NaN
    scored = model.add_severity(best.reset_index(drop=True))
    out = p_scores.copy()
    for col in p_scores.columns:
        if col in scored:
            column = out[col].array.copy()
            column[rows] = scored[col].to_numpy()
            out[col] = column
    return out, has_turns


def score_conveyed(model: EmbeddedGrader, conveyed: Sequence[str]) -> pd.DataFrame:
    """:meth:`EmbeddedGrader.score` of what each response conveys; nothing conveyed (a
    bare refusal) is probability 0 on every head, so severity 0, rather than whatever the
    classifiers make of an empty text."""
    texts = as_texts(conveyed)
    empty = np.array([not t.strip() for t in texts], dtype=bool)
    probs = model.predict(texts)
    for col in [c for c in probs.columns if "prob" in c]:
        probs.loc[empty & probs[col].notna().to_numpy(), col] = 0.0  # a NaN head stays unused
    return model.add_severity(probs)


def grade_texts(
    model: EmbeddedGrader, texts: Sequence[str], ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """Score loose texts (no record schema): ``id`` plus :func:`score_columns`."""
    scores = model.score(as_texts(texts))
    scores.insert(0, "id", list(ids) if ids is not None else [str(i) for i in range(len(texts))])
    scores["grader"] = GRADER_NAME
    scores["grader_version"] = model.version
    return scores
