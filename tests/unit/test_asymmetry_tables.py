"""Category-asymmetry tables (notebook 02): cells formatted for the paper, notes escaped.

The results come from the synthetic file of ``test_asymmetry``, whose counts are known by
hand; intervals are checked against statsmodels' Wilson interval, not the code under test.
"""

from __future__ import annotations

import dataclasses
import re

import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from harmtrace.analysis.asymmetry import analyse_asymmetry
from harmtrace.analysis.asymmetry_tables import (
    NOTE_WIDTH,
    asymmetry_tex,
    logit_table,
    rates_table,
    ratios_table,
    write_asymmetry_tables,
)
from harmtrace.analysis.transition_report import merge_judged
from tests.unit.test_asymmetry import DATASET, synthetic_frames

LABELS = {DATASET: "my_set & co"}
ESCAPED = "my\\_set \\& co"


def pct(x: float) -> str:
    return f"{100 * x:.1f}\\%"


def wilson_cell(k: int, n: int) -> str:
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    return f"{pct(k / n)} [{pct(lo)}, {pct(hi)}]"


@pytest.fixture(scope="module")
def judged() -> pd.DataFrame:
    return merge_judged(*synthetic_frames())


@pytest.fixture(scope="module")
def res(judged):
    return analyse_asymmetry(judged, n_resamples=200, seed=1)


@pytest.fixture(scope="module")
def res_no_self_harm(judged):
    # without self-harm (every cell de-escalates: separation) the logit is estimable
    return analyse_asymmetry(
        judged, categories=("hate", "sexual", "violence"), n_resamples=200, seed=1
    )


def test_rates_table_by_hand(res):
    tab = rates_table(res, LABELS).set_index("Category")
    assert list(tab.columns) == [
        "Sample",
        "Non-zero prompts",
        "Failure",
        "Persistence",
        "Drift up",
    ]
    assert set(tab["Sample"]) == {"my_set & co"}  # labels are escaped by the writer, not here
    # sexual: prompt > 0 in A (30, 2 -> 2) and B (10, 2 -> 0); no zero prompt drifts up
    assert tab.loc["Sexual", "Non-zero prompts"] == "40"
    assert tab.loc["Sexual", "Failure"] == wilson_cell(30, 40)
    assert tab.loc["Sexual", "Persistence"] == wilson_cell(30, 40)
    assert tab.loc["Sexual", "Drift up"] == wilson_cell(0, 90)
    # hate: C (10, 2 -> 0), D (10, 1 -> 1), H (4, 2 -> 2); G (8, 0 -> 1) drifts up
    assert tab.loc["Hate", "Failure"] == wilson_cell(14, 24)
    assert tab.loc["Hate", "Drift up"] == wilson_cell(8, 106)
    # violence: E (30, 3 -> 1), F (5, 1 -> 2) fails without persisting; H's cell 0 -> 1
    assert tab.loc["Violence", "Failure"] == wilson_cell(5, 35)
    assert tab.loc["Violence", "Persistence"] == wilson_cell(0, 35)
    assert tab.loc["Violence", "Drift up"] == wilson_cell(4, 95)
    # pooled over cells: 49 failures of 102 (its interval is a cluster bootstrap)
    assert tab.loc["Pooled", "Non-zero prompts"] == "102"
    assert tab.loc["Pooled", "Failure"].startswith(pct(49 / 102) + " [")


def test_ratios_table_gives_words_where_there_is_no_ratio(res):
    tab = ratios_table(res, {}).set_index(["Rate", "Comparison"])
    row = tab.loc[("Failure", "Sexual / Hate")]
    assert row["Cells"] == "40 / 24"
    assert row["Ratio [CI]"].startswith(f"{(30 / 40) / (14 / 24):.2f} [")
    assert tab.loc[("Failure", "Sexual / Violence"), "Ratio [CI]"].startswith(
        f"{(30 / 40) / (5 / 35):.2f} ["
    )
    # no persistence in violence: the denominator is 0, the cell says so
    assert tab.loc[("Persistence", "Sexual / Violence"), "Ratio [CI]"] == (
        "no persistence in violence"
    )
    # a note is words from the analysis: escaped here, because the column is written raw
    noted = dataclasses.replace(
        res[DATASET], ratios=res[DATASET].ratios.assign(note="too_few & small")
    )
    cells = ratios_table({DATASET: noted}, {})["Ratio [CI]"]
    assert set(cells) == {"too\\_few \\& small"}


def test_logit_table_contrasts_and_notes(res, res_no_self_harm):
    # not estimable: one row holding the reason, escaped
    tab = logit_table(res, {})
    assert len(tab) == 1
    assert tab["Contrast"].iloc[0] == "" and tab["Holm p"].iloc[0] == ""
    assert tab["Odds ratio [CI]"].iloc[0].startswith("separation: self\\_harm")
    # estimable: one row per pair of categories, formatted from the fitted contrasts
    tab = logit_table(res_no_self_harm, LABELS)
    c = res_no_self_harm[DATASET].logit.contrasts
    assert tab["Contrast"].tolist() == ["Hate vs Sexual", "Hate vs Violence", "Sexual vs Violence"]
    assert tab["Odds ratio [CI]"].tolist() == [
        f"{r.odds_ratio:.2f} [{r.or_lo:.2f}, {r.or_hi:.2f}]" for r in c.itertuples()
    ]
    assert all(re.fullmatch(r"0\.\d{3}|1\.000|\$<\$0\.001", p) for p in tab["Holm p"])
    # a sample without a model (models=False) has no row
    assert logit_table({DATASET: dataclasses.replace(res[DATASET], logit=None)}, {}).empty


def test_write_asymmetry_tables(res, tmp_path):
    paths = write_asymmetry_tables(res, LABELS, tmp_path, "02_category_asymmetry")
    assert [p.name for p in paths] == [
        "02_category_asymmetry--rates.tex",
        "02_category_asymmetry--ratios.tex",
        "02_category_asymmetry--logit.tex",
    ]
    rates, ratios, logit = (p.read_text() for p in paths)
    # rates and logit: one block per sample, its label once above its rows
    assert rates.startswith("\\begin{tabular}{lrlll}")
    assert ratios.startswith("\\begin{tabular}{lllrl}")
    assert logit.startswith("\\begin{tabular}{llr}")
    # the count's header on two lines, the same words
    assert "Category & \\begin{tabular}[b]{@{}c@{}}Non-zero \\\\ prompts\\end{tabular} &" in rates
    # labels from data are escaped once; formatted cells are written as they are
    assert f"\\multicolumn{{5}}{{@{{}}l}}{{\\emph{{{ESCAPED}}}}} \\\\\n" in rates
    assert f"\nSexual & 40 & {wilson_cell(30, 40)} &" in rates
    assert f"{ESCAPED} & Failure & Sexual / Hate &" in ratios
    assert "my_set" not in rates.replace("my\\_set", "")
    assert "\\textbackslash{}" not in rates + ratios + logit
    assert f"\\multicolumn{{3}}{{@{{}}l}}{{\\emph{{{ESCAPED}}}}} \\\\\n &" in logit
    assert " & separation: self\\_harm" in logit


def test_logit_note_wraps_inside_its_column():
    note = (
        "separation: hate (all events in 8), violence (all events in 11), "
        "self\\_harm (all events in 2)"
    )
    frame = pd.DataFrame(
        {
            "Sample": ["air-bench-2024", "hh"],
            "Contrast": ["", "Hate vs Sexual"],
            "Odds ratio [CI]": [note, "0.74 [0.53, 1.03]"],
            "Holm p": ["", "0.417"],
        }
    )
    tex = asymmetry_tex("logit", frame)
    cell = tex.split("\n")[5].split(" & ")[1]
    assert cell.startswith("\\begin{tabular}[t]{@{}l@{}}separation:")
    lines = cell.removeprefix("\\begin{tabular}[t]{@{}l@{}}").removesuffix("\\end{tabular}")
    lines = lines.split(" \\\\ ")
    assert len(lines) == 3 and all(len(x) <= NOTE_WIDTH for x in lines)
    assert " ".join(lines) == note  # wrapped, every word kept
    assert "0.74 [0.53, 1.03] & 0.417 \\\\" in tex  # short cells stay on one line
