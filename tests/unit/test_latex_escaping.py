"""Labels from data or config reach LaTeX tables escaped, end to end (issue 7, item 11).

A dataset named with every LaTeX special character goes through the transition, asymmetry,
relevance and validity table writers; the tables must hold the escaped name, the file
names must stay safe to ``\\input``, and, where latexmk exists, a document holding the
tables must compile and show the name as written.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from harmtrace.analysis.asymmetry import analyse_asymmetry
from harmtrace.analysis.asymmetry_tables import write_asymmetry_tables
from harmtrace.analysis.load import sample_labels
from harmtrace.analysis.relevance import analyse_relevance
from harmtrace.analysis.relevance_tables import write_relevance_tables
from harmtrace.analysis.transition_report import analyse
from harmtrace.analysis.transition_tables import write_transition_tables
from harmtrace.analysis.validity import analyse_validity
from harmtrace.analysis.validity_tables import write_validity_tables
from harmtrace.report.latex import escape, file_stem
from harmtrace.report.macros import escape_latex
from tests.unit.test_asymmetry import DATASET, synthetic_frames

NASTY = "my_set & 50% $x$ #1 {a} \\b ~c ^d"
ESCAPED = (
    "my\\_set \\& 50\\% \\$x\\$ \\#1 \\{a\\} \\textbackslash{}b "
    "\\textasciitilde{}c \\textasciicircum{}d"
)


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    from harmtrace.analysis.transition_report import merge_judged

    rec, jud = synthetic_frames()
    rec["dataset"] = NASTY
    df = merge_judged(rec, jud)
    out = tmp_path_factory.mktemp("tables")
    labels = sample_labels(df["sample"].unique())
    paths = []
    paths += write_transition_tables(analyse(df, n_resamples=50), {}, out, "01_transitions")
    paths += write_asymmetry_tables(analyse_asymmetry(df, n_resamples=50), labels, out, "02")
    paths += write_relevance_tables(analyse_relevance(df, n_resamples=50), labels, out, "03")
    paths += write_validity_tables(analyse_validity(df, n_resamples=50), labels, out, "04")
    return out, paths


def test_escape_covers_every_special():
    assert escape(NASTY) == ESCAPED == escape_latex(NASTY)
    assert file_stem(NASTY) == "my_set___50___x___1__a___b__c__d"
    assert file_stem("hh-rlhf-harmless:chosen") == "hh-rlhf-harmless_chosen"
    assert DATASET != NASTY


def test_every_table_holds_the_escaped_name(tables):
    out, paths = tables
    holding = [p for p in paths if ESCAPED in p.read_text()]
    # every table with a sample/dataset column shows the name escaped, never raw
    assert len(holding) >= 6
    for p in paths:
        body = p.read_text()
        assert NASTY not in body
        assert "my_set" not in body.replace("my\\_set", "")
    # a sample's name enters file names only through file_stem
    assert (out / f"01_transitions--asymmetry_{file_stem(NASTY)}.tex") in paths
    assert all(set(p.name) <= set("abcdefghijklmnopqrstuvwxyz0123456789_-.") for p in paths)


@pytest.mark.paper
@pytest.mark.skipif(
    shutil.which("latexmk") is None and not os.environ.get("CI"), reason="latexmk not installed"
)
def test_tables_compile_with_latex(tables, tmp_path):
    _, paths = tables
    inputs = "\n".join(f"\\input{{{p.name}}}\\par" for p in paths)
    doc = tmp_path / "doc.tex"
    doc.write_text(
        "\\documentclass{article}\\usepackage[T1]{fontenc}\\usepackage{booktabs}"
        "\\usepackage[margin=1cm,landscape]{geometry}\\begin{document}\\tiny\n"
        f"{inputs}\n\\end{{document}}\n"
    )
    for p in paths:
        shutil.copy(p, tmp_path / p.name)
    res = subprocess.run(
        ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stdout[-2000:]
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", str(tmp_path / "doc.pdf"), "-"], capture_output=True, text=True
        ).stdout
        assert "my_set & 50% $x$ #1 {a}" in text


def test_write_tables_names_files_for_the_producer_and_keeps_math_headers(tmp_path):
    import pandas as pd

    from harmtrace.report.latex import write_tables

    frame = pd.DataFrame({"Sample & set": ["a_b"], "$\\geq$ 2": ["1"]})
    paths = write_tables({"one": (frame, ("$\\geq$ 2",), "ll")}, tmp_path, "prod")
    assert [p.name for p in paths] == ["prod--one.tex"]
    tex = paths[0].read_text()
    assert "Sample \\& set" in tex and "a\\_b" in tex  # text escaped
    assert "$\\geq$ 2" in tex  # math header kept as LaTeX
