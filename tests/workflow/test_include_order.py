"""Rules state their inputs: the stage files may be included in any order (after
common.smk, the one shared layer) and the workflow plans the same jobs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.workflow.helpers import snakemake

pytestmark = pytest.mark.workflow

UNIT = re.compile(
    r'(?:if \w+:\n\n[ \t]+)?include: "workflow/rules/(?!common)[\w]+\.smk"'
    r"|for \w+ in BACKEND_RULES:\n\n[ \t]+include: \w+"
)
"""One stage's include (with its ``if`` guard), or the loop over the trained grader's
own rule files."""


def reversed_includes(snakefile: str) -> str:
    """The Snakefile with its stage includes (each with its ``if`` guard) in reverse."""
    units = list(UNIT.finditer(snakefile))
    assert len(units) >= 8, "expected one include per stage"
    start, end = units[0].start(), units[-1].end()
    body = "\n\n\n".join(u.group(0) for u in reversed(units))
    return snakefile[:start] + body + snakefile[end:]


def planned_commands(project: Path, mirror: Path) -> list[str]:
    """Every job's command line, sorted (forced, so jobs past the checkpoints are listed)."""
    res = snakemake(project, "-n", "--forceall", "--printshellcmds", "--cores", "1", mirror=mirror)
    out = res.stdout + res.stderr
    prefix = "Shell command:"
    return sorted(ln.split(prefix, 1)[1].strip() for ln in out.splitlines() if prefix in ln)


def test_stage_files_plan_the_same_jobs_in_any_include_order(built, mirror):
    forward = planned_commands(built, mirror)
    snakefile = built / "Snakefile"
    text = snakefile.read_text()
    try:
        snakefile.write_text(reversed_includes(text))
        backward = planned_commands(built, mirror)
    finally:
        snakefile.write_text(text)
    # the paper's macros read every producer's numbers: the order-sensitive registry
    assert any(c.startswith("harmtrace numbers ") for c in forward)
    assert forward == backward


def test_the_reordering_keeps_every_include():
    text = (Path(__file__).resolve().parents[2] / "Snakefile").read_text()
    out = reversed_includes(text)
    assert sorted(UNIT.findall(out)) == sorted(UNIT.findall(text))
    assert out.index("common.smk") < out.index("paper.smk") < out.index("data.smk")
