"""The human grader: judgments from a dataset's own labelled columns."""

from __future__ import annotations

import pandas as pd
import pytest

from harmtrace.graders import make_grader, validate_judgments
from harmtrace.graders.human import HumanLabelError
from harmtrace.taxonomy import CATEGORIES


def labelled(prefix: str = "user_", n: int = 4) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "record_id": pd.array([f"{i:016x}" for i in range(n)], dtype="string"),
            "prompt": pd.array([f"p{i}" for i in range(n)], dtype="string"),
            "response": pd.array([f"r{i}" for i in range(n)], dtype="string"),
        }
    )
    for j, c in enumerate(CATEGORIES):
        frame[f"{prefix}prompt_severity_{c}"] = [(i + j) % 4 for i in range(n)]
        frame[f"{prefix}response_severity_{c}"] = [str((i * j) % 4) for i in range(n)]
    frame[f"{prefix}relevance"] = [1 + i % 3 for i in range(n)]
    frame[f"{prefix}refusal"] = [("yes", "no", "true", "0")[i % 4] for i in range(n)]
    return frame


@pytest.mark.parametrize("prefix", ["user_", ""])
def test_labels_become_judgments(prefix):
    recs = labelled(prefix)
    out = make_grader("human").grade(recs)
    validate_judgments(out)
    for j, c in enumerate(CATEGORIES):
        assert out[f"prompt_severity_{c}"].tolist() == [(i + j) % 4 for i in range(4)]
        assert out[f"response_severity_{c}"].tolist() == [(i * j) % 4 for i in range(4)]
    assert out["relevance"].tolist() == [1, 2, 3, 1]
    assert out["refusal"].tolist() == [True, False, True, False]
    assert (out["status"] == "ok").all() and out["grader"].eq("human").all()
    assert out["prompt_prob_hate"].isna().all()


@pytest.mark.parametrize(
    ("column", "value", "what"),
    [
        ("user_prompt_severity_violence", 4, "severity"),
        ("user_response_severity_hate", -1, "severity"),
        ("user_prompt_severity_sexual", 1.5, "severity"),
        ("user_prompt_severity_self_harm", "high", "severity"),
        ("user_relevance", 0, "relevance level"),
    ],
)
def test_out_of_range_names_record_and_column(column, value, what):
    recs = labelled()
    recs[column] = recs[column].astype(object)
    recs.loc[2, column] = value
    with pytest.raises(HumanLabelError) as err:
        make_grader("human").grade(recs)
    message = str(err.value)
    assert f"column {column!r}" in message and "record 0000000000000002" in message
    assert repr(value) in message and what in message


def test_bad_refusal_flag_and_counts_of_bad_values():
    recs = labelled()
    recs["user_refusal"] = ["yes", "perhaps", "no", "no"]
    with pytest.raises(HumanLabelError, match="record 0000000000000001: 'perhaps'"):
        make_grader("human").grade(recs)
    recs = labelled()
    recs["user_prompt_severity_hate"] = [9, 9, 0, 9]
    with pytest.raises(HumanLabelError, match="record 0000000000000000.*2 more bad value"):
        make_grader("human").grade(recs)


def test_missing_prompt_label_fails_the_row_with_the_column_named():
    recs = labelled()
    recs["user_prompt_severity_hate"] = pd.array([0, None, 2, 3], dtype="Int64")
    recs["user_response_severity_sexual"] = pd.array(["1", None, "1", "1"], dtype="string")
    out = make_grader("human").grade(recs)
    validate_judgments(out)
    assert out["status"].tolist() == ["ok", "failed", "ok", "ok"]
    assert out["error"].iloc[1] == "no human label in user_prompt_severity_hate"
    assert pd.isna(out["response_severity_sexual"].iloc[1])


def test_missing_or_ambiguous_columns():
    recs = labelled().drop(columns=["user_prompt_severity_violence"])
    with pytest.raises(HumanLabelError, match="no column 'prompt_severity_violence'"):
        make_grader("human").grade(recs)
    recs = labelled()
    recs["prompt_severity_hate"] = 0
    with pytest.raises(HumanLabelError, match="both 'user_prompt_severity_hate'"):
        make_grader("human").grade(recs)
    # prompt-only data needs no response labels, relevance or refusal
    recs = labelled()[["record_id", "prompt"] + [f"user_prompt_severity_{c}" for c in CATEGORIES]]
    out = make_grader("human").grade(recs)
    validate_judgments(out)
    assert out["relevance"].isna().all() and out["response_severity_hate"].isna().all()
    # responses without response labels are an error
    recs["response"] = pd.array(["r"] * 4, dtype="string")
    with pytest.raises(HumanLabelError, match="response_severity_hate"):
        make_grader("human").grade(recs)
