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
    reference_table,
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


def test_reference_table_reports_agreement_with_the_reference_grader(tmp_path):
    """Kappa from scikit-learn, alpha from krippendorff, on a reference that disagrees."""
    import krippendorff
    from sklearn.metrics import cohen_kappa_score

    _, air, _ = validity_frames()
    ref = air.copy()
    col = "prompt_severity_violence"
    ref[col] = ref[col].astype("Int64").map(lambda v: min(int(v) + 1, 3)).astype("Int64")
    ref.loc[ref.index[:3], col] = air.loc[air.index[:3], col]
    res = analyse_validity(air, reference=ref, n_resamples=50)
    tab = reference_table(res, {"air": "AIR & co"}).set_index(["Side", "Category"])
    assert len(tab) == 9 and set(tab["Dataset"]) == {"AIR & co"}
    a, b = air[col].astype(int).to_numpy(), ref[col].astype(int).to_numpy()
    kappa = cohen_kappa_score(a, b, weights="quadratic", labels=[0, 1, 2, 3])
    alpha = krippendorff.alpha(
        reliability_data=[a, b], level_of_measurement="ordinal", value_domain=[0, 1, 2, 3]
    )
    row = tab.loc[("Prompt", "Violence")]
    assert row["Weighted $\\kappa$ [CI]"].startswith(f"{kappa:.2f} [")
    assert row["Ordinal $\\alpha$ [CI]"].startswith(f"{alpha:.2f} [")
    assert row["Exact"] == pct((a == b).mean())
    assert tab.loc[("Prompt", "Hate"), "Weighted $\\kappa$ [CI]"] == "no variation"
    paths = write_validity_tables(res, {"air": "AIR & co"}, tmp_path, "04_grader_validity")
    assert paths[-1].name == "04_grader_validity--reference.tex"
    assert "AIR \\& co & Prompt & Violence & 10 &" in paths[-1].read_text()
