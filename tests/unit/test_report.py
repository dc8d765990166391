from __future__ import annotations

import os
import shutil
import subprocess

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from harmtrace.report.figures import save_figure, set_style
from harmtrace.report.latex import escape, to_booktabs
from harmtrace.report.macros import (
    MacroError,
    Number,
    ci,
    collect_macros,
    count,
    fmt_ci,
    fmt_int,
    fmt_p,
    fmt_pct,
    macro_name,
    pct,
    pvalue,
    read_numbers,
    real,
    render,
    text,
    write_numbers,
)
from harmtrace.report.paper import (
    PaperError,
    build_paper,
    collect_assets,
    git_stamp,
    missing_inputs,
)


def test_macro_name_is_letters_only():
    assert macro_name("01_transitions", "deescalate share hh-rlhf") == (
        "HtZeroOneTransitionsDeescalateShareHhRlhf"
    )
    assert macro_name("grader", "auprc self_harm") == "HtGraderAuprcSelfHarm"


def test_formatters():
    assert fmt_int(4624) == "4{,}624"
    assert fmt_pct(0.6104) == "61.0\\%"
    assert fmt_p(0.00001) == "$<$0.001" and fmt_p(0.0456) == "0.046"
    assert fmt_ci(0.1, 0.25) == "[10.0\\%, 25.0\\%]"
    assert fmt_pct(float("nan")) == "n/a"


def test_numbers_render_per_target():
    assert render(count(4624)) == "4{,}624" and render(count(4624), "plain") == "4,624"
    assert render(pct(0.6104)) == "61.0\\%" and render(pct(0.6104, 0), "plain") == "61%"
    assert render(pvalue(0.00001)) == "$<$\\,0.001" and render(pvalue(0.0456), "plain") == "= 0.046"
    assert render(ci(0.1, 0.25)) == "[10.0\\%, 25.0\\%]"
    assert render(ci(-0.12, 0.0, pct=False, digits=2), "plain") == "[-0.12, 0.00]"
    assert render(real(float("nan"))) == "n/a"
    assert render(text("my_set & 50%")) == "my\\_set \\& 50\\%"
    assert render(text("my_set"), "plain") == "my_set"


def test_numbers_round_trip_raw_values(tmp_path):
    values = {"a": pct(0.25), "b": ci(0.1, float("nan")), "c": text("x_y"), "d": count(3)}
    write_numbers(values, tmp_path / "n.json", "prod")
    producer, back = read_numbers(tmp_path / "n.json")
    assert producer == "prod" and back["a"] == Number(0.25, "pct", 1)
    assert back["c"].value == "x_y" and back["d"].value == 3
    assert render(back["b"]) == "[10.0\\%, n/a]"
    # the raw JSON holds values, not LaTeX
    assert "\\" not in (tmp_path / "n.json").read_text()


def test_collect_macros_and_clash(tmp_path):
    write_numbers({"n records": count(1680)}, tmp_path / "a.json", "grader")
    write_numbers({"share": pct(0.03)}, tmp_path / "b.json", "transitions")
    tex = collect_macros([tmp_path / "b.json", tmp_path / "a.json"])
    assert "\\newcommand{\\HtGraderNRecords}{1{,}680}" in tex
    assert tex.index("HtGraderNRecords") < tex.index("HtTransitionsShare")
    write_numbers({"n-records": count(2)}, tmp_path / "c.json", "grader")
    with pytest.raises(MacroError, match="clashes"):
        collect_macros([tmp_path / "a.json", tmp_path / "c.json"])
    with pytest.raises(MacroError, match="Number values"):
        write_numbers({"x": "0.5"}, tmp_path / "d.json", "p")  # type: ignore[dict-item]


def test_booktabs_escapes_text_but_not_raw_columns():
    df = pd.DataFrame({"cat_name": ["self_harm & co"], "ci": ["[1\\%, 2\\%]"]})
    tex = to_booktabs(df, raw_columns=("ci",))
    assert "cat\\_name" in tex and "self\\_harm \\& co" in tex and "[1\\%, 2\\%]" in tex
    assert tex.startswith("\\begin{tabular}{lr}") and "\\bottomrule" in tex
    assert escape("50%_#") == "50\\%\\_\\#"


def test_figures_are_byte_stable(tmp_path):
    set_style()
    digests = []
    for run in ("a", "b"):
        fig, ax = plt.subplots()
        ax.bar(["x", "y"], [1, 2])
        pdf, png = save_figure(fig, tmp_path / run / "fig")
        digests.append((pdf.read_bytes(), png.read_bytes()))
    assert digests[0] == digests[1]


def test_git_stamp_outside_git(tmp_path):
    assert git_stamp(tmp_path) == ("unknown", 0)


def test_git_stamp_marks_dirty(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git missing")
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@t",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@t",
    )

    def run(*args: str) -> None:
        subprocess.run(
            ["git", "-C", str(tmp_path), *args], check=True, env=env, capture_output=True
        )

    run("init", "-q")
    (tmp_path / "f").write_text("1")
    run("add", "f")
    run("commit", "-qm", "x")
    commit, when = git_stamp(tmp_path)
    assert len(commit) == 12 and when > 0
    (tmp_path / "f").write_text("2")
    assert git_stamp(tmp_path)[0] == commit + "-dirty"


needs_latex = pytest.mark.skipif(
    shutil.which("latexmk") is None and not os.environ.get("CI"), reason="latexmk not installed"
)


@needs_latex
@pytest.mark.paper
def test_build_paper_uses_numbers_and_stamps_commit(tmp_path):
    src = tmp_path / "paper"
    src.mkdir()
    (src / "main.tex").write_text(
        "\\documentclass{article}\\input{numbers.tex}\\input{buildinfo.tex}"
        "\\begin{document}Value \\HtXY{} at \\HtGitCommit.\\input{tables/t.tex}\\end{document}\n"
    )
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "t.tex").write_text("Table here.")
    write_numbers({"y": count(42)}, tmp_path / "n.json", "x")
    (tmp_path / "numbers.tex").write_text(collect_macros([tmp_path / "n.json"]))
    out = build_paper(
        src,
        tmp_path / "numbers.tex",
        collect_assets([tmp_path / "tables"]),
        tmp_path / "out" / "paper.pdf",
        tmp_path / "build",
        repo=tmp_path,
    )
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True).stdout
    assert "Value 42 at unknown." in text and "Table here." in text


@needs_latex
@pytest.mark.paper
def test_build_paper_reports_latex_errors(tmp_path):
    src = tmp_path / "paper"
    src.mkdir()
    (src / "main.tex").write_text(
        "\\documentclass{article}\\begin{document}\\undefinedmacro\\end{document}\n"
    )
    (tmp_path / "numbers.tex").write_text("")
    with pytest.raises(PaperError, match="Undefined control sequence"):
        build_paper(src, tmp_path / "numbers.tex", {}, tmp_path / "p.pdf", tmp_path / "b")


def _paper_using(tmp_path, body: str):
    src = tmp_path / "paper"
    (src / "sections").mkdir(parents=True)
    (src / "main.tex").write_text(
        "\\documentclass{article}\\input{numbers.tex}\n\\begin{document}\n"
        "\\input{sections/s}\n\\end{document}\n"
    )
    (src / "sections" / "s.tex").write_text(body)
    write_numbers({"y": count(42)}, tmp_path / "n.json", "x")
    (tmp_path / "numbers.tex").write_text(collect_macros([tmp_path / "n.json"]))
    return src


def test_missing_numbers_and_assets_are_listed_with_where_they_are_used(tmp_path):
    src = _paper_using(
        tmp_path,
        "Have \\HtXY{} at \\HtGitCommit.\n"
        "Lack \\HtXZ{} and \\HtDataGoneRecords.\n"
        "% commented out: \\HtNotUsed\n"
        "50\\% of \\HtAlsoGone\n"
        "\\input{tables/t.tex} \\input{tables/u}\n"
        "\\includegraphics[width=2cm]{figures/f.pdf}\n",
    )
    have = {"tables/t.tex": tmp_path / "t.tex", "tables/u.tex": tmp_path / "u.tex"}
    problems = missing_inputs(src, tmp_path / "numbers.tex", have)
    where = src / "sections" / "s.tex"
    assert problems == [
        f"{where}:2: \\HtXZ is not in {tmp_path / 'numbers.tex'}",
        f"{where}:2: \\HtDataGoneRecords is not in {tmp_path / 'numbers.tex'}",
        f"{where}:4: \\HtAlsoGone is not in {tmp_path / 'numbers.tex'}",
        f"{where}:6: figures/f.pdf was not produced",
    ]
    have["figures/f.pdf"] = tmp_path / "f.pdf"
    (src / "sections" / "s.tex").write_text("\\HtXY{} \\input{tables/t.tex}\n")
    assert missing_inputs(src, tmp_path / "numbers.tex", have) == []


def test_build_paper_lists_every_missing_number_before_running_latex(tmp_path, monkeypatch):
    src = _paper_using(tmp_path, "\\HtOne{} \\HtTwo{}\n")
    # no latexmk needed: the check comes first and names both macros at once
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(PaperError) as err:
        build_paper(src, tmp_path / "numbers.tex", {}, tmp_path / "p.pdf", tmp_path / "b")
    message = str(err.value)
    assert "2 number(s)" in message and "\\HtOne" in message and "\\HtTwo" in message
    assert "config/config.yaml" in message and "latexmk" not in message
    # the check reads the rendered text in the build folder, and names where it is
    assert f"{tmp_path / 'b' / 'sections' / 's.tex'}:1" in message
    assert not (tmp_path / "b" / "main.pdf").exists()


def test_a_section_the_templates_leave_out_needs_no_numbers(tmp_path, monkeypatch):
    import json

    src = _paper_using(tmp_path, "<% if ran('x') %>\\HtOne{}<% endif %>\\HtXY{}\n")
    study = tmp_path / "study.json"
    study.write_text(
        json.dumps({"study": {"datasets": [], "grader": "g"}, "datasets": {}, "graders": ["g"]})
    )
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(PaperError, match="latexmk not found"):
        build_paper(
            src,
            tmp_path / "numbers.tex",
            {},
            tmp_path / "p.pdf",
            tmp_path / "b",
            study=study,
            numbers_dir=tmp_path,
        )
    assert (tmp_path / "b" / "sections" / "s.tex").read_text() == "\\HtXY{}\n"


def test_percentage_points_render_and_round_trip(tmp_path):
    from harmtrace.report.macros import pp

    assert render(pp(0.053)) == "5.3\\,pp" and render(pp(0.053), "plain") == "5.3 pp"
    assert render(pp(-0.021)) == "$-$2.1\\,pp" and render(pp(-0.021), "plain") == "-2.1 pp"
    assert render(ci(-0.007, 0.055, points=True)) == "[$-$0.7, 5.5\\,pp]"
    assert render(ci(-0.007, 0.055, points=True), "plain") == "[-0.7, 5.5 pp]"
    assert render(pp(float("nan"))) == "n/a"
    write_numbers({"d": pp(0.1), "c": ci(0.0, 0.2, points=True)}, tmp_path / "n.json", "p")
    _, back = read_numbers(tmp_path / "n.json")
    assert back["d"] == pp(0.1) and back["c"].kind == "ci_pp"


def test_booktabs_refuses_unknown_raw_columns_and_escapes_headers():
    df = pd.DataFrame({"a_b": ["x"], "$n$": ["1"]})
    tex = to_booktabs(df, raw_header=("$n$",))
    assert "a\\_b & $n$ \\\\" in tex
    with pytest.raises(ValueError, match="not in the table"):
        to_booktabs(df, raw_columns=("missing",))
    with pytest.raises(ValueError):
        to_booktabs(pd.DataFrame())


def test_collect_assets_flattens_producer_folders_and_refuses_clashes(tmp_path):
    (tmp_path / "tables" / "02_x").mkdir(parents=True)
    (tmp_path / "tables" / "02_x" / "02_x--a.tex").write_text("a")
    (tmp_path / "tables" / "grader--b.tex").write_text("b")
    (tmp_path / "figures" / "02_x").mkdir(parents=True)
    (tmp_path / "figures" / "02_x" / "02_x--f.png").write_bytes(b"png")
    assets = collect_assets(
        [
            tmp_path / "tables" / "02_x",
            tmp_path / "tables" / "grader--b.tex",
            tmp_path / "figures" / "02_x",
        ]
    )
    assert sorted(assets) == ["figures/02_x--f.png", "tables/02_x--a.tex", "tables/grader--b.tex"]
    # Snakemake's timestamp files in directory outputs are not assets (two folders clash)
    (tmp_path / "figures" / "02_x" / ".snakemake_timestamp").write_text("")
    (tmp_path / "figures" / "03_y").mkdir()
    (tmp_path / "figures" / "03_y" / ".snakemake_timestamp").write_text("")
    more = collect_assets([tmp_path / "figures" / "02_x", tmp_path / "figures" / "03_y"])
    assert sorted(more) == ["figures/02_x--f.png"]
    (tmp_path / "tables" / "other").mkdir()
    (tmp_path / "tables" / "other" / "grader--b.tex").write_text("clash")
    with pytest.raises(PaperError, match="would both be tables/grader--b.tex"):
        collect_assets([tmp_path / "tables" / "grader--b.tex", tmp_path / "tables" / "other"])
    with pytest.raises(PaperError, match="under a tables/ or figures/ folder"):
        collect_assets([tmp_path / "elsewhere.tex"])


def test_collect_assets_skips_hidden_files_of_two_notebook_folders(tmp_path):
    for stem in ("01_a", "06_b"):
        folder = tmp_path / "figures" / stem
        folder.mkdir(parents=True)
        (folder / f"{stem}--f.pdf").write_bytes(b"pdf")
        (folder / ".snakemake_timestamp").write_text("")
    assets = collect_assets([tmp_path / "figures" / "01_a", tmp_path / "figures" / "06_b"])
    assert sorted(assets) == ["figures/01_a--f.pdf", "figures/06_b--f.pdf"]
