"""The layout check reads the LaTeX log: overfull boxes with where they come from, and the
scale of every table wrapped in ``\\htTable``.

The excerpts are real lines of the paper's build logs (``results/paper/build/main.log``,
and a build with ``\\htTable`` around the tables as they were), wraps at 79 characters
included. The last tests run pdflatex on the macro itself and on a producer's table.
"""

from __future__ import annotations

import shutil
import subprocess

import pandas as pd
import pytest

from harmtrace.moderate.tables import effects_tex
from harmtrace.report.latex import stack, to_booktabs
from harmtrace.report.latex_log import (
    TABLE_MACRO,
    check_layout,
    overfull_boxes,
    parse_overfull,
    scaled_tables,
    unwrap,
)

# results/paper/build/main.log: Table 4 (transfer) and the logit table run into the margin
OVERFULL_LOG = r"""LaTeX Warning: `h' float specifier changed to `ht'.

(./sections/grader_transfer.tex [3] (./tables/transfer--loso.tex)
Overfull \hbox (29.65463pt too wide) in paragraph at lines 1--36
 [][]
 []

[4] (./tables/relevance--refusal.tex) (./tables/refusal_transfer--loso.tex))
[5]
<figures/01_transitions--shares.pdf, id=160, 731.34068pt x 210.96236pt>
File: figures/01_transitions--shares.pdf Graphic file (type pdf)
<use figures/01_transitions--shares.pdf>
Package pdftex.def Info: figures/01_transitions--shares.pdf  used on input line
 252.
(pdftex.def)             Requested size: 483.41216pt x 139.44803pt.
 (./tables/01_transitions--shares.tex)
(./sections/asymmetry.tex [7] (./tables/02_category_asymmetry--rates.tex)
(./tables/02_category_asymmetry--ratios.tex)

LaTeX Warning: `h' float specifier changed to `ht'.

[8 <./figures/01_transitions--severity_matrix.pdf>]
(./tables/02_category_asymmetry--logit.tex)
Overfull \hbox (137.98122pt too wide) in paragraph at lines 1--103
 [][]
 []


LaTeX Warning: `h' float specifier changed to `ht'.

) (./sections/model_study.tex [18]
(./tables/07_model_study--refusal.tex)
 (./tables/07_model_study--paired.tex
Underfull \hbox (badness 1019) in paragraph at lines 6--6
[]\T1/ptm/m/n/10 answer sever-ity >= Medium on a
 []

)
"""

# a build with \htTable around each table, before the producers' layout changed
SCALE_LOG = r"""(./sections/grader_transfer.tex [3] (./tables/transfer--loso.tex)
HT-TABLE-SCALE tab:transfer natural=515.56679pt target=483.41216pt size=10pt fo
otnote=9pt
[4] (./tables/relevance--refusal.tex)
HT-TABLE-SCALE tab:refusal natural=396.60675pt target=483.41216pt size=10pt foo
tnote=9pt
(./tables/refusal_transfer--loso.tex)
HT-TABLE-SCALE tab:refusaltransfer natural=439.48674pt target=483.41216pt size=
10pt footnote=9pt
) [5]
(./tables/01_transitions--paired_hh.tex)
HT-TABLE-SCALE tab:paired natural=638.25797pt target=483.41216pt size=10.95pt f
ootnote=9pt
[14] (./tables/06_moderation_policy--effects.tex)
HT-TABLE-SCALE tab:moderation natural=984.91179pt target=483.41216pt size=10.95
pt footnote=9pt
<figures/06_moderation_policy--frontier.pdf, id=320, 707.29626pt x 217.68312pt>
"""


def test_unwrap_joins_lines_tex_wrapped_at_79_characters():
    lines = unwrap(SCALE_LOG)
    assert (
        "HT-TABLE-SCALE tab:transfer natural=515.56679pt target=483.41216pt size=10pt footnote=9pt"
    ) in lines
    assert "[4] (./tables/relevance--refusal.tex)" in lines  # a short line stays


def test_overfull_boxes_name_the_file_lines_and_the_table_before_them():
    boxes = overfull_boxes(OVERFULL_LOG)
    assert [pt for pt, _ in boxes] == [29.65463, 137.98122]
    transfer, logit = (where for _, where in boxes)
    assert "./sections/grader_transfer.tex, lines 1--36" in transfer
    assert "just after ./tables/transfer--loso.tex" in transfer
    assert "page 4 or later" in transfer  # [3] was the last page shipped
    assert "./sections/asymmetry.tex, lines 1--103" in logit
    assert "just after ./tables/02_category_asymmetry--logit.tex" in logit
    assert "page 9 or later" in logit
    # the underfull box is not an overfull one, and its content does not upset the files
    assert len(parse_overfull(OVERFULL_LOG)) == 2


def test_overfull_limit_and_box_text():
    small = (
        "(./sections/relevance.tex\n"
        "Overfull \\hbox (0.71pt too wide) in paragraph at lines 12--15\n"
        "[]\\T1/ptm/m/n/10.95 the cap-ping rule keeps every\n"
        " []\n\n"
        "Overfull \\hbox (21.00003pt too wide) in paragraph at lines 40--52\n"
        "\\T1/ptm/m/n/10.95 pro-mpts (\\T1/pcr/m/n/10.95 harmbench-behaviors\\T1/ptm/m/n/10.95 ) \n"
        " []\n\n)"
    )
    assert [pt for pt, _ in overfull_boxes(small)] == [21.00003]  # 0.71pt is under 1pt
    assert [pt for pt, _ in overfull_boxes(small, limit_pt=0.5)] == [0.71, 21.00003]
    ((_, where),) = overfull_boxes(small)
    assert "./sections/relevance.tex, lines 40--52" in where and "just after" not in where
    assert "harmbench-behaviors" in where  # the paragraph's words, font switches dropped


def test_scaled_tables_and_the_footnote_rule():
    tables = {t.label: t for t in scaled_tables(SCALE_LOG)}
    assert list(tables) == [
        "tab:transfer",
        "tab:refusal",
        "tab:refusaltransfer",
        "tab:paired",
        "tab:moderation",
    ]
    assert tables["tab:refusal"].factor == 1.0
    # a \small (10pt) table may shrink to 9/10 of its size, a normal-size one to 9/10.95
    transfer = tables["tab:transfer"]
    assert transfer.factor == pytest.approx(483.41216 / 515.56679)
    assert transfer.type_size == pytest.approx(9.376, abs=1e-3) and not transfer.too_small
    moderation = tables["tab:moderation"]
    assert moderation.type_size == pytest.approx(5.37, abs=0.01) and moderation.too_small
    assert tables["tab:paired"].too_small  # 0.757 * 10.95 = 8.29pt


def test_check_layout_reports_boxes_and_tables_in_words():
    problems = check_layout(OVERFULL_LOG + SCALE_LOG)
    assert len(problems) == 4
    assert problems[0].startswith("overfull \\hbox: ./sections/grader_transfer.tex")
    assert problems[0].endswith("(29.7pt too wide)")
    assert problems[2] == (
        "table tab:paired scaled by 0.76 to 8.3pt type, below footnote size 9pt "
        "(natural width 638.3pt, 483.4pt available at 10.95pt)"
    )
    assert "tab:moderation scaled by 0.49 to 5.4pt" in problems[3]
    fine = "\n".join(
        line for line in SCALE_LOG.splitlines() if "paired" not in line and "moderation" not in line
    )
    assert check_layout(fine) == []


requires_latex = pytest.mark.skipif(
    shutil.which("pdflatex") is None, reason="pdflatex (TeX Live) not installed"
)


def _build(tmp_path, body: str) -> str:
    doc = (
        "\\documentclass[11pt]{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{mathptmx}\n"
        "\\usepackage[margin=2.3cm]{geometry}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n"
        + TABLE_MACRO
        + "\\begin{document}\n"
        + body
        + "\n\\end{document}\n"
    )
    (tmp_path / "t.tex").write_text(doc)
    subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-file-line-error", "t.tex"],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
        check=False,
    )
    return (tmp_path / "t.log").read_text(errors="replace")


@pytest.mark.paper
@requires_latex
def test_the_macro_logs_scales_and_shrinks_only_wide_tables(tmp_path):
    narrow = to_booktabs(pd.DataFrame({"a": ["1"], "b": ["2"]}))
    wide = to_booktabs(
        pd.DataFrame({f"column number {i}": ["0.62 [0.55, 0.70]"] for i in range(9)})
    )
    log = _build(
        tmp_path,
        "\\begin{table}\\centering\\small\n\\htTable{tab:narrow}{" + narrow + "}\\end{table}\n"
        "\\begin{table}\\centering\\footnotesize\n\\htTable{tab:wide}{" + wide + "}\\end{table}\n",
    )
    narrow_t, wide_t = scaled_tables(log)
    assert (narrow_t.label, narrow_t.factor, narrow_t.size) == ("tab:narrow", 1.0, 10.0)
    assert (wide_t.label, wide_t.size, wide_t.footnote) == ("tab:wide", 9.0, 9.0)
    assert wide_t.natural > wide_t.target == pytest.approx(483.41216)
    assert overfull_boxes(log) == []  # the macro shrank it instead of running over
    assert check_layout(log) == [
        f"table tab:wide scaled by {wide_t.factor:.2f} to {wide_t.type_size:.1f}pt type, "
        f"below footnote size 9pt (natural width {wide_t.natural:.1f}pt, 483.4pt available "
        "at 9pt)"
    ]


@pytest.mark.paper
@requires_latex
def test_the_moderation_table_fits_at_small_without_scaling(tmp_path):
    """The widest table of the paper, with the real run's longest cells, fits the text
    width at \\small (it was 909pt wide and set in about 5pt type)."""
    ci = "100.0\\% [34.2\\%, 100.0\\%]"
    frame = pd.DataFrame(
        {
            "Sample": ["AIR-Bench (Llama-3-8B)", "HH-RLHF rejected"],
            "Policy": ["redact\\_medium\\_block\\_high", "block\\_medium"],
            "Escalations": ["219 $\\to$ 136", "219 $\\to$ 114"],
            "Removed [95\\% CI]": [ci, ci],
            "To Medium+": ["137", "137"],
            "Removed (Medium+) [95\\% CI]": [ci, ci],
            "Benign changed [95\\% CI]": [ci, ci],
            "Benign blocked": ["23.6\\%", "14.9\\%"],
            "Relevance lost [95\\% CI]": [ci, ci],
        }
    )
    log = _build(
        tmp_path,
        "\\begin{table}\\centering\\small\n\\htTable{tab:moderation}{"
        + effects_tex(frame)
        + "}\\end{table}\n"
        "\\begin{table}\\centering\\small\n\\htTable{tab:stack}{"
        + to_booktabs(pd.DataFrame({"x": ["1"]}), headers={"x": stack("a", "[b]")})
        + "}\\end{table}\n",
    )
    moderation, _ = scaled_tables(log)
    assert moderation.factor == 1.0 and moderation.natural < 483.41216
    assert check_layout(log) == []
    assert "! " not in log  # no LaTeX error (a '[' after '\\' would be one)
