"""Moderation-policy tables (notebook 06): every cell and header is LaTeX, so text from
data (sample labels, policy names) is escaped by the table functions themselves.

The simulation is the hand-countable one of ``test_moderate_simulation``.
"""

from __future__ import annotations

import pytest
from statsmodels.stats.proportion import proportion_confint

from harmtrace.moderate.tables import (
    effects_table,
    needs_table,
    write_moderation_tables,
)
from tests.unit.test_moderate_simulation import POLICIES, toy_analysis, toy_simulation


def pct(x: float) -> str:
    return f"{100 * x:.1f}\\%"


def wilson_cell(k: int, n: int) -> str:
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    return f"{pct(k / n)} [{pct(lo)}, {pct(hi)}]"


@pytest.fixture(scope="module")
def res():
    return toy_simulation(*toy_analysis())


def test_effects_table_by_hand(res):
    tab = effects_table(res.effects, {"toy": "Toy set"})
    assert tab["Policy"].tolist() == [
        "observe",
        "block\\_high",
        "redact\\_medium\\_block\\_high",
    ]
    assert set(tab["Sample"]) == {"Toy set"}
    bh = tab.set_index("Policy").loc["block\\_high"]
    # three escalations, block_high removes one; two reach Medium+, one of them removed
    assert bh["Escalations"] == "3 $\\to$ 2"
    assert bh["Removed [95\\% CI]"] == wilson_cell(1, 3)
    assert bh["To Medium+"] == "2"
    assert bh["Removed (Medium+) [95\\% CI]"] == wilson_cell(1, 2)
    # the one benign response is left alone; blocking row 1 loses one of three relevant
    assert bh["Benign changed [95\\% CI]"] == wilson_cell(0, 1)
    assert bh["Benign blocked"] == pct(0)
    assert bh["Relevance lost [95\\% CI]"] == wilson_cell(1, 3)


def test_needs_table_escapes_policy_names(res):
    tab = needs_table(res.needs, POLICIES, {"toy": "Toy & set"})
    assert list(tab.columns) == [
        "Sample",
        "Category",
        "To Medium+",
        "observe",
        "block\\_high",
        "redact\\_medium\\_block\\_high",
        "Needed",
    ]
    assert set(tab["Sample"]) == {"Toy \\& set"}
    violence = tab.set_index("Category").loc["Violence"]
    assert violence[["To Medium+", "observe", "block\\_high"]].tolist() == ["2", pct(0), pct(0.5)]
    assert violence["Needed"] == "redact\\_medium\\_block\\_high"
    hate = tab.set_index("Category").loc["Hate"]  # no harmful hate escalation
    assert (hate["observe"], hate["Needed"]) == ("n/a", "none")


def test_write_moderation_tables(res, tmp_path):
    paths = write_moderation_tables(res, POLICIES, {"toy": "Toy_1"}, tmp_path, "06_moderation")
    assert [p.name for p in paths] == ["06_moderation--effects.tex", "06_moderation--needs.tex"]
    effects, needs = (p.read_text() for p in paths)
    # one block per sample (its label once, above its rows), narrower gaps
    assert effects.startswith("\\setlength{\\tabcolsep}{4pt}\n\\begin{tabular}{lrlrllrl}\n")
    assert needs.startswith("\\begin{tabular}{lrrrrl}")
    assert "\\multicolumn{8}{@{}l}{\\emph{Toy\\_1}} \\\\\n" in effects
    assert "\\multicolumn{6}{@{}l}{\\emph{Toy\\_1}} \\\\\n" in needs
    # escaped once, by the table functions: headers and cells are written as they are;
    # a header keeps its words on two or three lines
    assert "Removed \\\\ (Medium+) \\\\ {}[95\\% CI]" in effects
    # an interval sits under its share, the percent sign on the share only
    lo, hi = proportion_confint(1, 3, alpha=0.05, method="wilson")
    interval = f"[{pct(lo)[:-2]}, {pct(hi)[:-2]}]"  # no percent sign
    removed = f"\\begin{{tabular}}[t]{{@{{}}l@{{}}}}{pct(1 / 3)} \\\\ {{}}{interval}"
    assert f"\nblock\\_high & 3 $\\to$ 2 & {removed}\\end{{tabular}} &" in effects
    # a long policy name breaks after an underscore, in cells and headers
    assert (
        "\\begin{tabular}[t]{@{}l@{}}redact\\_medium\\_ \\\\ block\\_high\\end{tabular} &"
        in effects
    )
    assert (
        "& \\begin{tabular}[b]{@{}c@{}}redact\\_medium\\_ \\\\ block\\_high\\end{tabular} &"
        in needs
    )
    assert "\\textbackslash{}" not in effects + needs
    assert "& block\\_high & " in needs.splitlines()[2]
    assert needs.splitlines()[2].endswith("& Needed \\\\")
