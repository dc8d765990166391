"""The same-bytes test's helpers (tests/workflow/rerun.py) on a throwaway project: the
restore after a failed rerun, and the job choice by bytes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.workflow.rerun import Job, _bytes, restored_on_failure


def _project(tmp_path: Path) -> tuple[Path, list[Job]]:
    project = tmp_path / "project"
    (project / "results" / "shards" / "a").mkdir(parents=True)
    (project / "results" / "shards" / "a" / "0.parquet").write_bytes(b"shard")
    (project / "results" / "t.json").write_text("built")
    for path in (
        project / "results" / "shards" / "a" / "0.parquet",
        project / "results" / "t.json",
    ):
        os.utime(path, (1, 1))
    jobs = [
        Job("shard", (), ("results/shards/a",), "true"),
        Job("table", (), ("results/t.json", "results/never-built.json"), "true"),
    ]
    return project, jobs


def test_outputs_come_back_with_their_bytes_and_mtimes_when_the_rerun_fails(tmp_path):
    project, jobs = _project(tmp_path)
    keep = tmp_path / "keep"
    with (
        pytest.raises(RuntimeError, match="rerun failed"),
        restored_on_failure(project, jobs, keep),
    ):
        (project / "results" / "t.json").write_text("half-written")
        shutil.rmtree(project / "results" / "shards" / "a")
        (project / "results" / "never-built.json").write_text("new")
        raise RuntimeError("rerun failed")
    table = project / "results" / "t.json"
    shard = project / "results" / "shards" / "a" / "0.parquet"
    assert table.read_text() == "built" and table.stat().st_mtime == 1
    assert shard.read_bytes() == b"shard" and shard.stat().st_mtime == 1
    # an output that did not exist before the rerun is left as the rerun wrote it
    assert (project / "results" / "never-built.json").read_text() == "new"


def test_a_successful_rerun_keeps_what_it_wrote(tmp_path):
    project, jobs = _project(tmp_path)
    with restored_on_failure(project, jobs, tmp_path / "keep"):
        (project / "results" / "t.json").write_text("rewritten")
    assert (project / "results" / "t.json").read_text() == "rewritten"


def test_a_job_is_as_large_as_the_files_of_its_outputs(tmp_path):
    project, _ = _project(tmp_path)
    assert _bytes(project / "results" / "shards" / "a") == len(b"shard")
    assert _bytes(project / "results" / "t.json") == len("built")
