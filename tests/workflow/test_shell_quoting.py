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


def hostile(tag: str, braces: bool = True) -> str:
    """Shell syntax with a tag; output folders may not hold braces (Snakemake wildcards)."""
    value = f"x y$(touch PWNED_{tag})`touch PWNED2_{tag}`;'\"&|<>* ~%"
    return value + "{}" if braces else value


def test_every_config_string_is_one_shell_word(project, mirror):
    user_file = hostile("file") + ".csv"
    (project / user_file).write_text(f"{hostile('pcol')},{hostile('rcol')}\nhi,hello\n")
    values = {
        "data": {
            "mirror": hostile("mirror"),
            "raw_dir": hostile("raw", braces=False),
            "user_datasets": {
                "mine": {
                    "path": user_file,
                    "prompt_column": hostile("pcol"),
                    "response_column": hostile("rcol"),
                    "response_source": hostile("source"),
                }
            },
        },
        "study": {"datasets": ["mine"]},
        "grader": {"embedded": {"model_dir": hostile("model", braces=False)}},
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
        seen += sum(hostile(t) in out for t in ("mirror", "pcol", "source"))
        seen += sum(hostile(t, braces=False) in out for t in ("raw", "model"))
    assert not list(project.glob("PWNED*")), "a config value was executed by the shell"
    assert seen >= 5  # the values did reach the commands, intact


def test_a_hostile_user_file_runs_through_normalize(project, mirror):
    user_file = hostile("file") + ".csv"
    (project / user_file).write_text("q,a\nhow do I bake bread,Knead the dough.\n")
    mine = {"path": user_file, "prompt_column": "q", "response_column": "a"}
    edit_config(
        project, {"data": {"user_datasets": {"mine": mine}}, "study": {"datasets": ["mine"]}}
    )
    snakemake(project, "--cores", "1", "results/records/mine.parquet", mirror=mirror)
    assert (project / "results" / "records" / "mine.parquet").is_file()
    assert not list(project.glob("PWNED*"))


def test_braces_in_output_folders_are_refused_with_the_key(project, mirror):
    edit_config(project, {"data": {"raw_dir": "data/{x}"}})
    res = snakemake(project, "-n", "--cores", "1", mirror=mirror, check=False)
    assert res.returncode != 0 and "raw_dir" in res.stdout + res.stderr
