"""Transition tables (notebook 01): cells formatted for the paper, written as booktabs.

The results come from the hand-built frame of ``test_transition_report``; every expected
cell is counted from its specification, never copied from the code under test.
"""

from __future__ import annotations

import pandas as pd
import pytest

from harmtrace.analysis.transition_report import analyse, merge_judged
from harmtrace.analysis.transition_tables import (
    asymmetry_table,
    paired_deescalation_table,
    paired_table,
    shares_table,
    write_transition_tables,
)
from harmtrace.taxonomy import CATEGORIES
from tests.unit.test_transition_report import (
    AIR,
    HH,
    LABELS,
    SAMPLES,
    expected_pairs,
    make_records_and_judgments,
    wilson_cell,
)


@pytest.fixture(scope="module")
def judged() -> pd.DataFrame:
    return merge_judged(*make_records_and_judgments())


@pytest.fixture(scope="module")
def res(judged):
    return analyse(judged, alpha=0.05, seed=0)


def test_shares_table_formats_share_and_wilson_ci(res):
    tab = shares_table(res.shares_positive, LABELS)
    assert list(tab.columns) == ["Sample", "Category", "n", "De-escalate", "Preserve", "Escalate"]
    row = tab.loc[(tab["Sample"] == "AIR-Bench") & (tab["Category"] == "Overall")].iloc[0]
    assert row["n"] == "4"
    assert row["De-escalate"] == wilson_cell(2, 4)
    assert row["De-escalate"].startswith("50.0\\% [")
    assert row["Escalate"] == wilson_cell(0, 4)
    assert set(tab["Category"]) == {"Hate", "Sexual", "Violence", "Self-harm", "Overall"}
    # unlabelled samples keep their own name
    raw = shares_table(res.shares, {})
    assert set(raw["Sample"]) == set(SAMPLES)
    assert len(raw) == len(SAMPLES) * (len(CATEGORIES) + 1)


def test_asymmetry_table_counts_failures_per_category(res):
    tab = asymmetry_table(res.asymmetry[AIR]).set_index("Comparison")
    # AIR failures to de-escalate (prompt > 0, response >= prompt): hate a2 of a1, a2;
    # sexual a2 and a4; violence none of a6; self-harm none of a4 (a7 has no response)
    assert tab.loc["Hate / Sexual", "Failures (a)"] == "1/2"
    assert tab.loc["Hate / Sexual", "Failures (b)"] == "2/2"
    assert tab.loc["Violence / Self-harm", ["Failures (a)", "Failures (b)"]].tolist() == [
        "0/1",
        "0/1",
    ]
    assert len(tab) == len(CATEGORIES) * (len(CATEGORIES) - 1) // 2
    assert tab.loc["Hate / Sexual", "Risk ratio [95% CI]"].startswith("0.50 [")
    assert all(p == "1.000" for p in tab["Holm p"])


def test_paired_tables_count_pairs_by_hand(res):
    sev = paired_table(res.paired).set_index("Category")
    # overall chosen vs rejected: pairs 1, 2, 3 chosen lower, pair 4 chosen higher
    assert sev.loc["Overall", ["Pairs", "Untied"]].tolist() == ["4", "4"]
    assert sev.loc["Overall", ["Chosen lower", "Equal", "Chosen higher"]].tolist() == [
        "75.0\\%",
        "0.0\\%",
        "25.0\\%",
    ]
    assert sev.loc["Overall", "Holm p"] == ""  # the overall test is not in a family
    de = paired_deescalation_table(res.paired).set_index("Category")
    # prompt-positive pairs 1, 3, 4: chosen de-escalates in 1 and 4, rejected only in 4
    assert de.loc["Overall", ["Pairs", "Chosen", "Rejected"]].tolist() == [
        "3",
        "66.7\\%",
        "33.3\\%",
    ]
    diff = de.loc["Overall", "Difference, pp [95% CI]"]
    assert diff.startswith("33.3 [$-$")  # percentage points, LaTeX minus sign
    assert "\\,pp" not in diff and "%" not in diff
    # no pair has a self-harm prompt: words, not numbers
    assert de.loc["Self-harm", "Difference, pp [95% CI]"] == "n/a"


def test_write_transition_tables_writes_every_table(res, tmp_path):
    paths = write_transition_tables(res, LABELS, tmp_path, "transitions")
    expected = {
        "transitions--shares.tex",
        "transitions--shares_prompt_positive.tex",
        f"transitions--asymmetry_{AIR}.tex",
        f"transitions--asymmetry_{HH}_chosen.tex",
        f"transitions--asymmetry_{HH}_rejected.tex",
        "transitions--paired_hh.tex",
        "transitions--paired_hh_deescalation.tex",
    }
    assert {p.name for p in paths} == expected
    assert {p.name for p in tmp_path.iterdir()} == expected
    shares = (tmp_path / "transitions--shares_prompt_positive.tex").read_text()
    # one block per sample: its label once, above its rows, so five columns remain
    assert shares.startswith("\\begin{tabular}{lrlll}")
    assert "\\multicolumn{5}{@{}l}{\\emph{AIR-Bench}} \\\\\nHate & " in shares
    # cells are LaTeX already: not escaped a second time
    assert f"\nOverall & 4 & {wilson_cell(2, 4)} &" in shares
    body_rows = [ln for ln in shares.splitlines() if ln.endswith("\\\\")]
    # one row per (sample, category) holding at least one prompt with severity > 0
    groups = [
        (s, c)
        for s in SAMPLES
        for c in (*CATEGORIES, "overall")
        if any(p > 0 for p, _ in expected_pairs(s, c))
    ]
    blocks = {s for s, _ in groups}
    assert len(body_rows) == 1 + len(blocks) + len(groups)
    assert shares.count("\\addlinespace") == len(blocks) - 1
    assert len(groups) < len(SAMPLES) * (len(CATEGORIES) + 1)  # hh self-harm has none
    paired = (tmp_path / "transitions--paired_hh.tex").read_text()
    assert paired.startswith("\\setlength{\\tabcolsep}{4pt}\n\\begin{tabular}{lrrrrrlllll}")
    header = paired.splitlines()[3]
    # the same header words, on two lines
    for words in ("Chosen \\\\ lower", "Rank-biserial \\\\ {}[95\\% CI]", "Wilcoxon \\\\ p"):
        assert words in header
    # the rank-biserial interval sits under its estimate, the numbers as formatted
    sev = paired_table(res.paired).set_index("Category")
    est, ci = sev.loc["Overall", "Rank-biserial [95% CI]"].split(" [")
    assert f"\\begin{{tabular}}[t]{{@{{}}l@{{}}}}{est} \\\\ {{}}[{ci}\\end{{tabular}}" in paired


def test_write_transition_tables_without_pairs(judged, tmp_path):
    res = analyse(judged.loc[judged["dataset"] == AIR])
    names = {p.name for p in write_transition_tables(res, {}, tmp_path, "t")}
    assert names == {"t--shares.tex", "t--shares_prompt_positive.tex", f"t--asymmetry_{AIR}.tex"}
