"""No number in the paper is typed by hand: digits in paper/**/*.tex must be structural."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAPER_DIR = Path(__file__).resolve().parents[2] / "paper"
SOURCES = sorted(PAPER_DIR.rglob("*.tex"))

# Digits that are names or definitions, not results.
ALLOWED = [
    r"\\(?:ref|label|cite[pt]?|input|includegraphics|bibliography\w*)(?:\[[^\]]*\])?\{[^}]*\}",
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


def _body(text: str) -> str:
    """The typeset text: comments dropped; a main file from its document body on."""
    text = re.sub(r"(?<!\\)%.*", "", text)
    start = text.find(r"\begin{document}")
    return text[start:] if start >= 0 else text


def test_the_paper_has_sources():
    assert PAPER_DIR / "main.tex" in SOURCES


@pytest.mark.parametrize(
    "path", SOURCES, ids=[p.relative_to(PAPER_DIR).as_posix() for p in SOURCES]
)
def test_every_number_in_the_paper_is_a_macro(path: Path):
    body = _body(path.read_text(encoding="utf-8"))
    for pattern in ALLOWED:
        body = re.sub(pattern, "", body)
    stray = [m.group(0) for m in re.finditer(r".{0,30}\d.{0,30}", body)]
    assert not stray, f"hand-typed numbers in {path.name}: {stray}"


def test_checker_catches_a_typed_number():
    body = _body(r"\begin{document} we find that 61\% de-escalate \end{document}")
    for pattern in ALLOWED:
        body = re.sub(pattern, "", body)
    assert re.search(r"\d", body)
