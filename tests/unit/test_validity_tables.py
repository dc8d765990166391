"""Grader-validity tables (notebook 04): cells formatted for the paper, labels escaped.

The results come from the hand-built frames of ``test_validity``; every expected cell is
counted from their specification (intervals from statsmodels and the stats module).
"""

from __future__ import annotations

import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from harmtrace.analysis.validity import analyse_validity
from harmtrace.analysis.validity_tables import (
    detection_table,
    moderation_table,
    preference_table,
    write_validity_tables,
)
from harmtrace.stats import newcombe_paired_diff_ci
from tests.unit.test_validity import validity_frames


def pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f}\\%"


def wilson(k: int, n: int, digits: int = 1) -> str:
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    return f"[{pct(lo, digits)}, {pct(hi, digits)}]"


def points(x: float) -> str:
    s = f"{100 * x:.1f}"
    return "$-$" + s[1:] if s.startswith("-") else s


@pytest.fixture(scope="module")
def res():
    mod, air, hh = validity_frames()
    return analyse_validity(pd.concat([mod, air, hh], ignore_index=True), n_resamples=100)


def test_moderation_table_by_hand(res):
    tab = moderation_table(res, {"mod": "Moderation"}).set_index("Category")
    # hate: 6 known labels, 3 positive; flagged (probability >= .5) the first two
    hate = tab.loc["Hate"]
    assert hate["Dataset"] == "Moderation"
    assert hate[["Known", "Positive", "AUROC", "F1"]].tolist() == ["6", "3", "0.89", "0.80"]
    assert hate["Recall [CI]"] == f"{pct(2 / 3, 0)} {wilson(2, 3, 0)}"
    assert tab.loc["Sexual", "AUROC"] == "n/a"  # no labels: no figure
    # datasets without category labels have no rows
    assert set(tab["Dataset"]) == {"Moderation"}


def test_preference_table_by_hand(res):
    tab = preference_table(res, {}).set_index("Category")
    # four pairs used (one left out, its context differs): rejected >= chosen in three,
    # rejected above chosen in one, tied in two
    row = tab.loc["Overall"]
    assert row["Pairs"] == "4"
    assert row["Rejected $\\geq$ chosen [CI]"] == f"{pct(3 / 4)} {wilson(3, 4)}"
    assert row["Rejected $>$ chosen"] == pct(1 / 4)
    assert row["Tied"] == pct(2 / 4)


def test_detection_table_by_hand():
    _, air, _ = validity_frames()
    res = analyse_validity(air, reference=air.copy(), n_resamples=50)
    tab = detection_table(res, {}).set_index("Positives")
    bench = tab.loc["benchmark labels"]
    # prompts flagged in 6 of 10; responses of the 5 complied records flagged in 2
    assert bench["Prompt sens."] == f"{pct(0.6)} (6/10)"
    assert bench["Response sens."] == f"{pct(0.4)} (2/5)"
    # complied records: both 1, prompt only 2, response only 1, neither 1
    diff, lo, hi = newcombe_paired_diff_ci(1, 2, 1, 1, 0.05)
    assert bench["Paired diff. [CI]"] == f"{points(diff)} [{points(lo)}, {points(hi)}] pp"
    assert bench["Paired diff. [CI]"].startswith("20.0 [$-$")
    assert bench["McNemar p"] == "1.000"
    # the reference grader's own flags leave too few paired positives: words, no p-value
    ref = tab.loc["reference grader"]
    assert (ref["Paired diff. [CI]"], ref["McNemar p"]) == ("too few records", "")


def test_write_validity_tables(res, tmp_path):
    paths = write_validity_tables(res, {"hh": "my_set & co"}, tmp_path, "04_grader_validity")
    assert [p.name for p in paths] == [
        "04_grader_validity--moderation.tex",
        "04_grader_validity--preferences.tex",
        "04_grader_validity--detection.tex",
        "04_grader_validity--response_harm.tex",
        "04_grader_validity--labelled_refusal.tex",
    ]
    prefs = (tmp_path / "04_grader_validity--preferences.tex").read_text()
    assert prefs.startswith("\\begin{tabular}{llrlrr}")
    assert "my\\_set \\& co & Overall & 4 &" in prefs  # labels from data are escaped
    assert "Rejected $\\geq$ chosen" in prefs  # LaTeX headers kept
    assert f"{pct(3 / 4)} {wilson(3, 4)}" in prefs  # cells are not escaped twice
    detection = (tmp_path / "04_grader_validity--detection.tex").read_text()
    assert "air & benchmark labels & 60.0\\% (6/10) &" in detection
