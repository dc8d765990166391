"""Relevance tables (notebook 03): cells formatted for the paper, labels escaped once.

The results come from the hand-built frame of ``test_relevance_analysis``; shares are
counted from its specification and intervals checked against statsmodels.
"""

from __future__ import annotations

from statsmodels.stats.proportion import proportion_confint

from harmtrace.analysis.relevance import analyse_relevance
from harmtrace.analysis.relevance_tables import (
    compliance_table,
    relevance_table,
    write_relevance_tables,
)
from tests.unit.test_relevance_analysis import SPEC, _frame


def pct(x: float) -> str:
    return f"{100 * x:.1f}\\%"


def wilson(k: int, n: int) -> str:
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    return f"[{pct(lo)}, {pct(hi)}]"


def test_relevance_table_by_hand():
    res = analyse_relevance(_frame(SPEC), n_resamples=100)
    tab = relevance_table(res, {"s": "Sample S"}).set_index("Severity")
    assert list(tab.columns) == ["Sample", "n", "Rel. 1", "Rel. 2", "Rel. 3", "Rel. 3 CI"]
    assert set(tab["Sample"]) == {"Sample S"}
    # safe responses: 30 refusals (relevance 1) and 15 answers (relevance 3)
    assert tab.loc["Safe"].tolist()[1:] == [
        "45",
        pct(30 / 45),
        pct(0),
        pct(15 / 45),
        wilson(15, 45),
    ]
    # medium: 4 escalations from a benign prompt (relevance 2), 12 answers (relevance 3)
    assert tab.loc["Medium"].tolist()[1:] == [
        "16",
        pct(0),
        pct(4 / 16),
        pct(12 / 16),
        wilson(12, 16),
    ]
    assert tab.loc["High", "Rel. 3"] == pct(1)


def test_empty_levels_and_samples_say_n_a():
    res = analyse_relevance(_frame([(5, 0, 0, 3, False)]), n_resamples=50)
    tab = relevance_table(res, {}).set_index("Severity")
    assert tab.loc["High"].tolist() == ["s", "0", "n/a", "n/a", "n/a", "n/a"]
    comp = compliance_table(res, {})
    assert comp.iloc[0].tolist() == ["s", "0", "0", "n/a", "n/a", "n/a"]


def test_compliance_table_by_hand():
    res = analyse_relevance(_frame(SPEC), n_resamples=100)
    comp = compliance_table(res, {})
    # 6 compliance-escalations (2 -> 3), one cell each, every one fully relevant
    assert comp.iloc[0].tolist() == ["s", "6", "6", pct(0), pct(0), pct(1)]


def test_write_relevance_tables(tmp_path):
    res = analyse_relevance(_frame(SPEC), n_resamples=100)
    paths = write_relevance_tables(res, {"s": "my_set & co"}, tmp_path, "03_relevance")
    assert [p.name for p in paths] == [
        "03_relevance--by_severity.tex",
        "03_relevance--compliance.tex",
    ]
    by_sev, comp = (p.read_text() for p in paths)
    assert by_sev.startswith("\\begin{tabular}{llrrrrl}")
    assert comp.startswith("\\begin{tabular}{lrrrrr}")
    # the label is escaped, the formatted cells are not escaped a second time
    assert f"my\\_set \\& co & Medium & 16 & {pct(0)} & {pct(0.25)} & {pct(0.75)} &" in by_sev
    assert f"my\\_set \\& co & 6 & 6 & {pct(0)} & {pct(0)} & {pct(1)} \\\\" in comp
