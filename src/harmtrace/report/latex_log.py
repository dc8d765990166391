"""The paper's layout, checked from the LaTeX log of its build.

A referee read found tables running into the margin (overfull boxes of 30--40 pt) and
tables shrunk by ``\\resizebox`` to about 5 pt type. Neither stops pdflatex, so the build
has to read its own log: no overfull box wider than ``limit_pt`` (1 pt), and no table
scaled below the body's footnote size.

A scale factor is not in the log by itself, so the paper wraps each table in
:data:`TABLE_MACRO`'s ``\\htTable{<label>}{<tabular>}``. It sets the tabular at the
current size (``\\small`` in a table float), shrinks it to ``\\linewidth`` only when it is
wider, and writes one line per table::

    HT-TABLE-SCALE tab:moderation natural=595.2pt target=483.41216pt size=10pt footnote=9pt

The rule: a table's type after scaling, ``factor * size`` with
``factor = min(1, target / natural)``, must not fall below the footnote size of the
document (9 pt in an 11 pt article). A ``\\small`` table (10 pt) may thus shrink to 0.9, a
``\\footnotesize`` one not at all. Both sizes come from the log, so the rule holds for any
class option and any size a table is set in.

TeX wraps its log at ``max_print_line`` (79 characters); lines of exactly that length are
joined to the next before parsing, which restores the wrapped ``HT-TABLE-SCALE`` lines and
file names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TABLE_MACRO = r"""% Tables that fit (harmtrace.report.latex_log): \htTable{<label>}{<tabular>} sets
% the tabular at the current size, shrinks it to \linewidth only when it is wider, and
% logs "HT-TABLE-SCALE <label> natural=.. target=.. size=.. footnote=.." for the check.
\makeatletter
\newsavebox\htTableBox
\newcommand\htTable[2]{%
  \sbox\htTableBox{#2}%
  {\footnotesize\xdef\htFootnoteSize{\f@size}}%
  \typeout{HT-TABLE-SCALE #1 natural=\the\wd\htTableBox\space
    target=\the\linewidth\space size=\f@size pt footnote=\htFootnoteSize pt}%
  \ifdim\wd\htTableBox>\linewidth
    \resizebox{\linewidth}{!}{\usebox\htTableBox}%
  \else
    \usebox\htTableBox
  \fi}
\makeatother
"""
"""Preamble text defining ``\\htTable`` (needs graphicx for ``\\resizebox``)."""

MAX_PRINT_LINE = 79
"""TeX Live's default log line width; a line this long continues on the next."""

_OVERFULL = re.compile(
    r"^Overfull \\([hv])box \((\d+(?:\.\d+)?)pt too (?:wide|high)\) "
    r"(?:in paragraph at lines (\d+)--(\d+)|in alignment at lines (\d+)--(\d+)"
    r"|detected at line (\d+)|has occurred while \\output is active)"
)
_SCALE = re.compile(
    r"HT-TABLE-SCALE (\S+) natural=(\d+(?:\.\d+)?)pt target=(\d+(?:\.\d+)?)pt "
    r"size=(\d+(?:\.\d+)?)pt footnote=(\d+(?:\.\d+)?)pt"
)
_FILE = re.compile(r"\(((?:\.{1,2})?/[^\s()\[\]{}]+)")
"""A file TeX opens: ``(`` and a path (``./x.tex``, ``/usr/share/...``), so ``(Font)``
and ``(pdftex.def)`` are not files."""
_PAGE = re.compile(r"\[(\d+)(?=[\s\]<{]|$)")


def unwrap(log_text: str, width: int = MAX_PRINT_LINE) -> list[str]:
    """The log's lines with TeX's hard wraps undone (a line of exactly ``width``
    characters continues on the next)."""
    lines: list[str] = []
    current = ""
    for line in log_text.splitlines():
        current += line
        if len(line) != width:
            lines.append(current)
            current = ""
    if current:
        lines.append(current)
    return lines


@dataclass(frozen=True)
class Overfull:
    """One overfull box: how far over, in which file and lines, near which page."""

    pt: float
    kind: str
    file: str
    lines: str
    after: str
    page: int
    text: str

    @property
    def where(self) -> str:
        parts = [f"{self.file or 'main file'}, {self.lines}"]
        if self.after:
            parts.append(f"just after {self.after}")
        parts.append(f"page {self.page} or later")
        if self.text:
            parts.append(f"text: {self.text!r}")
        return "; ".join(parts)


def _box_text(content: list[str]) -> str:
    """The readable words of an overfull box's content lines (font switches dropped)."""
    text = " ".join(content)
    text = re.sub(r"\\[A-Z0-9]+/\S+/\S+/\S+/[\d.]+ ?", "", text)
    text = re.sub(r"\[\]|\$\[\]\$", " ", text)
    return " ".join(text.split())[:60]


def parse_overfull(log_text: str) -> list[Overfull]:
    """Every overfull box in the log, with the input file open when TeX reported it.

    Files are tracked by TeX's parentheses (``(./tables/x.tex`` ... ``)``); the lines
    after an overfull message hold the box's content and are not counted. ``after`` names
    a file closed just before the message (a table ``\\input`` whose tabular overflowed).
    """
    lines = unwrap(log_text)
    stack: list[str | None] = []
    boxes: list[Overfull] = []
    page = 0
    last_closed = ""
    quiet = True  # nothing but file closings since last_closed
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _OVERFULL.match(line)
        if m:
            g = m.groups()
            if g[2]:
                where = f"lines {g[2]}--{g[3]}"
            elif g[4]:
                where = f"alignment at lines {g[4]}--{g[5]}"
            elif g[6]:
                where = f"line {g[6]}"
            else:
                where = "output routine"
            content = []
            i += 1
            while i < len(lines) and lines[i].strip():
                content.append(lines[i])
                i += 1
            files = [f for f in stack if f]
            boxes.append(
                Overfull(
                    pt=float(g[1]),
                    kind=f"\\{g[0]}box",
                    file=files[-1] if files else "",
                    lines=where,
                    after=last_closed if quiet else "",
                    page=page + 1,
                    text=_box_text(content),
                )
            )
            quiet = False
            continue
        if line.startswith(("Underfull \\", "Overfull \\")):  # content lines: skip
            i += 1
            while i < len(lines) and lines[i].strip():
                i += 1
            quiet = False
            continue
        pos = 0
        while pos < len(line):
            ch = line[pos]
            if ch == "(":
                fm = _FILE.match(line, pos)
                stack.append(fm.group(1) if fm else None)
                if fm:
                    pos = fm.end()
                    quiet = False
                    continue
            elif ch == ")":
                if stack:
                    closed = stack.pop()
                    if closed:
                        last_closed, quiet = closed, True
            elif ch == "[":
                pm = _PAGE.match(line, pos)
                if pm:
                    page = int(pm.group(1))
                    quiet = False
            elif not ch.isspace():
                quiet = False
            pos += 1
        i += 1
    return boxes


def overfull_boxes(log_text: str, limit_pt: float = 1.0) -> list[tuple[float, str]]:
    """``(pt, where)`` for every overfull box more than ``limit_pt`` over, in log order."""
    return [(b.pt, f"{b.kind}: {b.where}") for b in parse_overfull(log_text) if b.pt > limit_pt]


@dataclass(frozen=True)
class TableScale:
    """One ``\\htTable`` as logged: its natural width, the width it had to fit, the font
    size it was set in and the document's footnote size (all in pt)."""

    label: str
    natural: float
    target: float
    size: float
    footnote: float

    @property
    def factor(self) -> float:
        """The scale ``\\htTable`` applied: 1 when the table fits, else target/natural."""
        return min(1.0, self.target / self.natural) if self.natural > 0 else 1.0

    @property
    def type_size(self) -> float:
        """The table's type size after scaling, in pt."""
        return self.factor * self.size

    @property
    def too_small(self) -> bool:
        return self.type_size < self.footnote - 1e-6


def scaled_tables(log_text: str) -> list[TableScale]:
    """Every ``HT-TABLE-SCALE`` line of the log (one per ``\\htTable``), in log order."""
    return [
        TableScale(m[1], float(m[2]), float(m[3]), float(m[4]), float(m[5]))
        for line in unwrap(log_text)
        for m in _SCALE.finditer(line)
    ]


def check_layout(log_text: str, limit_pt: float = 1.0) -> list[str]:
    """Layout problems in human-readable form (empty when the layout is fine): every
    overfull box more than ``limit_pt`` over, and every table whose scaled type is below
    the footnote size."""
    problems = [
        f"overfull {where} ({pt:.1f}pt too wide)"
        for pt, where in overfull_boxes(log_text, limit_pt)
    ]
    for t in scaled_tables(log_text):
        if t.too_small:
            problems.append(
                f"table {t.label} scaled by {t.factor:.2f} to {t.type_size:.1f}pt type, below "
                f"footnote size {t.footnote:g}pt (natural width {t.natural:.1f}pt, "
                f"{t.target:.1f}pt available at {t.size:g}pt)"
            )
    return problems
