"""No number in the paper is typed by hand: digits in paper/main.tex must be structural."""

from __future__ import annotations

import re
from pathlib import Path

PAPER = Path(__file__).resolve().parents[2] / "paper" / "main.tex"

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
    text = re.sub(r"(?<!\\)%.*", "", text)  # comments
    return text[text.index(r"\begin{document}") :]


def test_every_number_in_the_paper_is_a_macro():
    body = _body(PAPER.read_text(encoding="utf-8"))
    for pattern in ALLOWED:
        body = re.sub(pattern, "", body)
    stray = [m.group(0) for m in re.finditer(r".{0,30}\d.{0,30}", body)]
    assert not stray, f"hand-typed numbers in paper/main.tex: {stray}"


def test_checker_catches_a_typed_number():
    body = _body(r"\begin{document} we find that 61\% de-escalate \end{document}")
    for pattern in ALLOWED:
        body = re.sub(pattern, "", body)
    assert re.search(r"\d", body)
