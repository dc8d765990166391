"""Harm-benefit tables (notebook 05): the F1 table in the seed's layout, the weights and
the steering rates, formatted for the paper from small hand-built inputs."""

from __future__ import annotations

import pandas as pd

from harmtrace.report.latex import to_booktabs
from harmtrace.trees import report
from harmtrace.trees.tables import (
    NOT_RUN,
    f1_table,
    f1_table_tex,
    steering_rates_table,
    weights_table,
    write_f1_table,
)
from tests.unit.test_tree_evaluation import hand_f1_results
from tests.unit.test_tree_report import tree_inputs


def test_f1_table_keeps_unavailable_datasets_as_not_run():
    ours = hand_f1_results()
    frame = f1_table(ours)
    mine = frame.set_index("System").loc["Mine"]
    assert mine["WGT Vani."] == NOT_RUN and mine["SORRY-Bench"] == NOT_RUN
    assert mine["SimpST"] == f"{100 * 2 * 0.9 / 1.9:.1f}" and mine["AIR-Bench"] == "100.0"
    f1s = [100 * 2 * 0.9 / 1.9, 100 * 2 * 0.5 / 1.5, 100.0]
    assert mine["Average"] == "--" and mine["Avg. (3 run here)"] == f"{sum(f1s) / 3:.1f}"
    partial = frame.set_index("System").loc["Partial"]
    assert partial["SimpST"] == NOT_RUN and partial["Avg. (3 run here)"] == "--"
    sa = frame.set_index("System").loc["SafetyAnalyst"]
    assert sa["Average"] == "81.2" and sa["Avg. (3 run here)"] == f"{(88.8 + 96.1 + 88.9) / 3:.1f}"
    assert frame.set_index("System").loc["Llama-Guard", "SORRY-Bench"] == "--"  # not published
    assert frame["Source"].tolist()[-2:] == ["this work", "this work"]
    tex = f1_table_tex(frame)
    assert "\\multicolumn{2}{c}{WildGuardTest}" in tex and "\\textit{not run}" in tex
    # rows end in \\ (two header rows and one per system); the last header is a
    # two-line stack and the gaps are narrower, so nine columns fit the page at \small
    assert len([ln for ln in tex.splitlines() if ln.endswith(" \\\\")]) == 2 + len(frame)
    assert "& \\begin{tabular}[b]{@{}c@{}}Avg. \\\\ (3 here)\\end{tabular} \\\\" in tex
    assert tex.startswith("\\setlength{\\tabcolsep}{4pt}\n")
    # the cited rows and ours are set apart by a rule
    assert tex.count("\\midrule") == 2


def test_write_f1_table_over_the_harmful_datasets(tmp_path):
    inputs = tree_inputs()
    ev = report.evaluate(inputs, ["harmbench"], ["b"])
    labels = {"embedded": "Aggregation & (proxy)"}
    frame = write_f1_table(ev, ["harmbench"], tmp_path / "f1.tex", labels)
    assert "Aggregation & (proxy)" in set(frame["System"])
    assert (frame["SORRY-Bench"] == NOT_RUN).sum() == 2  # the grader and the aggregation
    mine = frame.set_index("System").loc["Aggregation & (proxy)"]
    assert mine["HarmBench"] == f"{100 * 2 * 0.5 / 1.5:.1f}"
    tex = (tmp_path / "f1.tex").read_text()
    assert tex.count("not run") == 10
    # escaped once; a name longer than SYSTEM_WIDTH wraps at a space, every word kept
    cell = "\\begin{tabular}[t]{@{}l@{}}Aggregation \\& \\\\ (proxy)\\end{tabular}"
    assert f"\n{cell} & \\textit{{not run}} &" in tex
    assert "Mine" not in tex and "\\begin{tabular}[t]{@{}l@{}}SafetyAnalyst" not in tex


def test_weights_table_marks_unused_weights():
    wt = weights_table(tree_inputs().ci["embedded"]).set_index("weight")
    assert wt.loc["action.harm:Privacy"].tolist() == ["1.20", "[0.90, 1.50]", "10"]
    assert wt.loc["action.harm:Self-harm", "95% interval"] == "not identified"
    ci = pd.DataFrame(
        {
            "weight": ["w"],
            "estimate": [1234.5],
            "lo": [0.5],
            "hi": [2.25],
            "n_effects": pd.array([pd.NA], dtype="Int64"),
        }
    )
    # digits as asked, no effect count where the fit did not record one
    assert weights_table(ci, digits=1).iloc[0].tolist() == ["w", "1234.5", "[0.5, 2.2]", ""]
    # data in the weight names is escaped by the writer ('%' in the header too)
    assert "95\\% interval" in to_booktabs(weights_table(tree_inputs().ci["embedded"]))


def test_steering_rates_table_one_column_per_profile():
    tables = tree_inputs().tables["embedded"]
    rates = report.steering_table(tables, ["fitted", "strict"], ("dataset",))
    wide = steering_rates_table(rates, "dataset")
    assert list(wide.columns) == ["dataset", "fitted", "strict"]
    long = rates.set_index(["dataset", "profile"])["rate"]
    for r in wide.itertuples(index=False):
        assert r.fitted == round(long[(r.dataset, "fitted")], 3)
        assert r.strict == round(long[(r.dataset, "strict")], 3)
    assert wide.set_index("dataset").loc["b", "fitted"] == 0.667  # 2 of 3, three decimals
    by_risk = report.steering_table(tables, ["fitted", "strict"], ("dataset", "primary_risk"))
    wide = steering_rates_table(by_risk, ["dataset", "primary_risk"])
    assert list(wide.columns) == ["dataset", "primary_risk", "fitted", "strict"]
    assert len(wide) == len(by_risk) // 2
