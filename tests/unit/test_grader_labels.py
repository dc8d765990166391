"""Three-valued label logic for the category targets."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from harmtrace.graders.labels import (
    category_targets,
    kleene_any,
    label_counts,
    severe_targets,
    training_fingerprint,
)
from tests.devdata import mirror_records, mirror_root

VALUES = [True, False, pd.NA]


def _expected_or(a, b):
    if a is True or b is True:
        return True
    if a is False and b is False:
        return False
    return pd.NA


def test_kleene_any_truth_table():
    pairs = list(itertools.product(VALUES, VALUES))
    frame = pd.DataFrame(
        {
            "x": pd.array([a for a, _ in pairs], dtype="boolean"),
            "y": pd.array([b for _, b in pairs], dtype="boolean"),
        }
    )
    got = kleene_any(frame, ["x", "y"])
    assert str(got.dtype) == "boolean"
    for (a, b), value in zip(pairs, got, strict=True):
        want = _expected_or(a, b)
        if want is pd.NA:
            assert value is pd.NA, (a, b)
        else:
            assert value == want, (a, b)


def test_missing_column_counts_as_unknown():
    frame = pd.DataFrame({"label_H": pd.array([False, True], dtype="boolean")})
    got = category_targets(frame)
    # hate = H or H2; H2 absent, so a known False H is not enough to call the text non-hateful
    assert got["hate"].iloc[0] is pd.NA
    assert bool(got["hate"].iloc[1]) is True
    assert got["self_harm"].isna().all()


def test_category_and_severe_targets():
    frame = pd.DataFrame(
        {
            "label_S": pd.array([False, False, pd.NA], dtype="boolean"),
            "label_S3": pd.array([False, True, pd.NA], dtype="boolean"),
            "label_SH": pd.array([pd.NA, False, True], dtype="boolean"),
        }
    )
    cats = category_targets(frame)
    assert list(cats.columns) == ["hate", "sexual", "violence", "self_harm"]
    assert cats["sexual"].tolist() == [False, True, pd.NA]
    assert cats["self_harm"].tolist() == [pd.NA, False, True]
    sev = severe_targets(frame)
    assert sev["sexual"].tolist() == [False, True, pd.NA]


def test_fingerprint_sees_unknown_versus_false():
    frame = pd.DataFrame(
        {"prompt": ["a", "b"], "label_SH": pd.array([False, True], dtype="boolean")}
    )
    other = frame.copy()
    other.loc[0, "label_SH"] = pd.NA
    assert training_fingerprint(frame) != training_fingerprint(other)
    assert training_fingerprint(frame) == training_fingerprint(frame.copy())


@pytest.mark.skipif(
    not (mirror_root() / "openai-moderation").is_dir(), reason="dataset mirror not available"
)
def test_counts_on_the_moderation_file_match_its_documentation():
    counts = label_counts(mirror_records("openai-moderation"))
    # documented in the mirror's README (a missing key is unknown, not 0)
    assert counts["hate"] == {"known": 760, "positive": 162}
    assert counts["sexual"] == {"known": 981, "positive": 237}
    assert counts["violence"] == {"known": 1447, "positive": 94}
    assert counts["self_harm"] == {"known": 1447, "positive": 51}
