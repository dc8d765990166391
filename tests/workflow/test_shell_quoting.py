"""Config values reach the shell as data, never as code (Snakemake's ``:q`` everywhere).

Every free-text config value is set to a string full of shell syntax with a unique tag.
Each planned shell command is then run with ``printf`` in place of the program: had any
value been pasted unquoted, its ``$(touch ...)`` would create a tagged file.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.workflow.helpers import edit_config, env_for, snakemake

pytestmark = pytest.mark.workflow


def hostile(tag: str) -> str:
    return f"x y$(touch PWNED_{tag})`touch PWNED2_{tag}`;'\"&|<>* ~%{{}}"


def test_every_config_string_is_one_shell_word(project, mirror):
    user_file = hostile("file") + ".csv"
    (project / user_file).write_text(f"{hostile('pcol')},{hostile('rcol')}\nhi,hello\n")
    values = {
        "data": {
            "mirror": hostile("mirror"),
            "raw_dir": hostile("raw"),
            "user_datasets": {
                "mine": {
                    "path": user_file,
                    "prompt_column": hostile("pcol"),
                    "response_column": hostile("rcol"),
                    "response_source": hostile("source"),
                }
            },
        },
        "grader": {"embedded": {"model_dir": hostile("model")}},
        "analysis": {"transitions": {"parameters": {"label": hostile("param")}}},
    }
    edit_config(project, values)
    res = snakemake(project, "-n", "-p", "--cores", "1", mirror=mirror)
    commands = re.findall(r"^Shell command: (.+)$", res.stdout + res.stderr, flags=re.M)
    assert len(commands) > 10
    seen = 0
    for cmd in commands:
        _program, _, rest = cmd.partition(" ")
        args = rest.rsplit(" > ", 1)[0]  # drop the log redirect
        out = subprocess.run(
            f"printf '%s\\n' {args}",
            shell=True,
            cwd=project,
            env=env_for(project),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        seen += sum(hostile(t) in out for t in ("mirror", "raw", "model", "pcol", "source"))
    assert not list(project.glob("PWNED*")), "a config value was executed by the shell"
    assert seen >= 5  # the values did reach the commands, intact


def test_a_hostile_user_file_runs_through_normalize(project, mirror):
    user_file = hostile("file") + ".csv"
    (project / user_file).write_text("q,a\nhow do I bake bread,Knead the dough.\n")
    mine = {"path": user_file, "prompt_column": "q", "response_column": "a"}
    edit_config(project, {"data": {"user_datasets": {"mine": mine}}})
    snakemake(project, "--cores", "1", "results/records/mine.parquet", mirror=mirror)
    assert (project / "results" / "records" / "mine.parquet").is_file()
    assert not list(project.glob("PWNED*"))
