"""No number in the paper is typed by hand: digits in the paper templates (paper/**/*.tex)
must be structural. Template tags (``<% %>``, ``<< >>``, ``<# #>``) are not typeset text:
they choose wording and print macros or names from the manifest, never a result."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAPER_DIR = Path(__file__).resolve().parents[2] / "paper"
SOURCES = sorted(PAPER_DIR.rglob("*.tex"))

# Digits that are names or definitions, not results.
ALLOWED = [
    r"\\(?:ref|label|htTable|cite[pt]?|input|includegraphics|bibliography\w*)(?:\[[^\]]*\])?\{[^}]*\}",
    r"\\usepackage(?:\[[^\]]*\])?\{[^}]*\}",
    r"\\documentclass(?:\[[^\]]*\])?\{[^}]*\}",
    r"\$[^$]*\$",  # inline maths: thresholds and scale definitions
    r"\b[0-3]--[0-3]\b",  # the severity and relevance scales
    r"\b(?:[Ss]everity|[Rr]elevance) [0-3]\b",
    r"\b[0-3] \((?:Safe|Low|Medium|High)\)",
    r"\b[123] (?:is|an?) ",  # relevance level definitions
    r"capped at 2",
    r"(?:above|at|from a prompt at) (?:severity )?0\b",
    r"Llama-3-8B|SHA-256|F[12]\b|\\air\{\} 2024|level-2",
    r"width=0\.\d+",
]
# Jinja2 tags of the templates (harmtrace.report.paper_render), comments first.
TEMPLATE_TAGS = [r"<#.*?#>", r"<%.*?%>", r"<<.*?>>"]


def _body(text: str) -> str:
    """The typeset text: template tags and comments dropped; a main file from its document
    body on."""
    for tag in TEMPLATE_TAGS:
        text = re.sub(tag, "", text, flags=re.DOTALL)
    text = re.sub(r"(?<!\\)%.*", "", text)
    start = text.find(r"\begin{document}")
    return text[start:] if start >= 0 else text


def _stray(body: str) -> list[str]:
    for pattern in ALLOWED:
        body = re.sub(pattern, "", body)
    return [m.group(0) for m in re.finditer(r".{0,30}\d.{0,30}", body)]


def test_the_paper_has_sources():
    assert PAPER_DIR / "main.tex" in SOURCES
    assert len(SOURCES) >= 8  # main.tex and the seven sections


def test_the_sources_are_templates():
    assert "<% if" in (PAPER_DIR / "main.tex").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "path", SOURCES, ids=[p.relative_to(PAPER_DIR).as_posix() for p in SOURCES]
)
def test_every_number_in_the_paper_is_a_macro(path: Path):
    stray = _stray(_body(path.read_text(encoding="utf-8")))
    assert not stray, f"hand-typed numbers in {path.name}: {stray}"


def test_checker_catches_a_typed_number():
    assert _stray(_body(r"\begin{document} we find that 61\% de-escalate \end{document}"))
    # a number next to a template tag is still typeset text
    assert _stray(_body(r"<% if ran('x') %>we find 61\% <% endif %>"))
    # ... but a tag's own content is not
    assert not _stray(_body(r"<% if num('x', 'k') < 0.1 %>rarely<% endif %>"))
