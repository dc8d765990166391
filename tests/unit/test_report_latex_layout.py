"""Layout helpers of the booktabs writer: a table narrows by stacking header words,
setting intervals under their estimates, wrapping long names and writing a sample's label
once per block. Layout only: every word and number of a cell is kept."""

from __future__ import annotations

import pandas as pd
import pytest

from harmtrace.report.latex import ci_below, stack, to_booktabs, wrap


def test_stack_sets_lines_in_a_nested_tabular():
    assert stack("one") == "one"
    assert stack("Chosen", "lower") == (
        "\\begin{tabular}[b]{@{}c@{}}Chosen \\\\ lower\\end{tabular}"
    )
    # a line opening with '[' would be read as \\'s optional skip: guarded with {}
    assert stack("0.62", "[0.55, 0.70]", align="r", top=True) == (
        "\\begin{tabular}[t]{@{}r@{}}0.62 \\\\ {}[0.55, 0.70]\\end{tabular}"
    )


def test_ci_below_keeps_the_numbers_and_the_percent_sign_once():
    assert ci_below("16.7\\% [3.0\\%, 56.4\\%]") == (
        "\\begin{tabular}[t]{@{}r@{}}16.7\\% \\\\ {}[3.0, 56.4]\\end{tabular}"
    )
    assert ci_below("-0.27 [-0.34, -0.20]", align="l") == (
        "\\begin{tabular}[t]{@{}l@{}}-0.27 \\\\ {}[-0.34, -0.20]\\end{tabular}"
    )
    assert ci_below("n/a") == "n/a"


def test_wrap_breaks_at_spaces_or_after_underscores():
    assert wrap("short", 20) == "short"
    assert wrap("Embedded grader (flag: severity 2+)", 20) == (
        "\\begin{tabular}[t]{@{}l@{}}Embedded grader \\\\ (flag: severity 2+)\\end{tabular}"
    )
    assert wrap("redact\\_medium\\_block\\_high", 16, align="c", top=False) == (
        "\\begin{tabular}[b]{@{}c@{}}redact\\_medium\\_ \\\\ block\\_high\\end{tabular}"
    )
    assert wrap("block\\_medium", 16) == "block\\_medium"


def test_to_booktabs_groups_rows_under_their_label():
    frame = pd.DataFrame(
        {
            "Sample": ["A & B", "A & B", "C"],
            "Category": ["Hate", "Sexual", "Hate"],
            "Share": ["1.0\\% [0.5\\%, 2.0\\%]", "n/a", "3.0\\% [2.0\\%, 4.0\\%]"],
        }
    )
    tex = to_booktabs(
        frame,
        align="lr",
        raw_columns=("Share",),
        group_by="Sample",
        ci_columns=("Share",),
        headers={"Share": stack("Share", "[95\\% CI]")},
        tabcolsep="4pt",
    )
    assert tex.splitlines() == [
        "\\setlength{\\tabcolsep}{4pt}",
        "\\begin{tabular}{lr}",
        "\\toprule",
        "Category & \\begin{tabular}[b]{@{}c@{}}Share \\\\ {}[95\\% CI]\\end{tabular} \\\\",
        "\\midrule",
        "\\multicolumn{2}{@{}l}{\\emph{A \\& B}} \\\\",
        "Hate & \\begin{tabular}[t]{@{}r@{}}1.0\\% \\\\ {}[0.5, 2.0]\\end{tabular} \\\\",
        "Sexual & n/a \\\\",
        "\\addlinespace",
        "\\multicolumn{2}{@{}l}{\\emph{C}} \\\\",
        "Hate & \\begin{tabular}[t]{@{}r@{}}3.0\\% \\\\ {}[2.0, 4.0]\\end{tabular} \\\\",
        "\\bottomrule",
        "\\end{tabular}",
    ]


def test_to_booktabs_refuses_layout_for_unknown_columns():
    frame = pd.DataFrame({"a": ["1"]})
    for kwargs in ({"group_by": "b"}, {"ci_columns": ("b",)}, {"wrap_columns": {"b": 3}}):
        with pytest.raises(ValueError, match="not in the table"):
            to_booktabs(frame, **kwargs)
