"""Run chosen jobs of a built project again, by the shell commands Snakemake plans for them.

Asking Snakemake to force a few jobs also reruns every job between them and the targets
("input files updated by another job"): forcing the grader's training and the macros
rebuilds most of the DAG. Here each chosen job runs on its own against the inputs already
built, in dependency order among the chosen ones (a job never reads an output another
chosen job is rewriting).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.workflow.helpers import env_for, snakemake


@dataclass(frozen=True)
class Job:
    rule: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    command: str
    checkpoint: bool = False


def _files(line: str) -> tuple[str, ...]:
    return tuple(f.strip() for f in line.split(",") if f.strip())


def _plan(project: Path, mirror: Path, targets: list[str]) -> list[Job]:
    res = snakemake(
        project, "-n", "--cores", "2", "--printshellcmds", "--force", *targets, mirror=mirror
    )
    jobs, head, fields = [], None, {}
    for line in (res.stdout + res.stderr).splitlines():
        if m := re.match(r"^(?:local)?(rule|checkpoint) (\w+):$", line):
            kind, head, fields = m.group(1), m.group(2), {}
        elif head and (m := re.match(r"^\s+(input|output): (.*)$", line)):
            fields[m.group(1)] = _files(m.group(2))
        elif head and line.startswith("Shell command: "):
            jobs.append(Job(
                head, fields.get("input", ()), fields.get("output", ()), line[15:].strip(),
                checkpoint=kind == "checkpoint",
            ))  # fmt: skip
            head = None
    return [job for job in jobs if set(job.outputs) & set(targets)]


def planned_jobs(project: Path, mirror: Path, targets: Iterable[str]) -> list[Job]:
    """The jobs that make ``targets``, as a forced dry run prints them (rule, input,
    output, shell command); jobs Snakemake would add between them are left out.

    A job downstream of a checkpoint that would run again (forced, or fed by a forced job)
    is planned on the checkpoint's output until the checkpoint has run: ``<TBD>`` among
    its inputs, ``gather-answers`` on the respond plan instead of the shards it lists.
    Those jobs are planned again on their own, against the checkpoint's output as built
    (which its rerun writes again byte for byte)."""
    targets = list(targets)
    jobs = _plan(project, mirror, targets)
    for _ in range(3):
        pending = [job for job in jobs if "<TBD>" in job.inputs]
        if not pending:
            return jobs
        again = [out for job in pending for out in job.outputs if out in targets]
        jobs = [job for job in jobs if job not in pending] + _plan(project, mirror, again)
    pytest.fail(f"still planned on a checkpoint's output: {[j.rule for j in pending]}")


def dependencies(jobs: list[Job]) -> dict[Job, set[Job]]:
    """Job -> the chosen jobs whose outputs it reads."""
    maker = {out: job for job in jobs for out in job.outputs}
    return {job: {maker[i] for i in job.inputs if i in maker} - {job} for job in jobs}


def _run(project: Path, env: dict[str, str], job: Job) -> str:
    for out in job.outputs:  # as Snakemake does before a job: no stale output survives
        _remove(project / out)
    res = subprocess.run(
        ["bash", "-c", f"set -euo pipefail; {job.command}"],
        cwd=project, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if res.returncode == 0:
        return ""
    log = re.search(r"> (\S+) 2>&1$", job.command)
    tail = (project / log.group(1)).read_text().splitlines()[-5:] if log else []
    return "\n".join([f"{job.rule} exited {res.returncode}: {job.command}", *tail])


@contextmanager
def restored_on_failure(project: Path, jobs: list[Job], keep: Path) -> Iterator[None]:
    """The chosen jobs' outputs as built, put back if the rerun or a check after it fails:
    the tests after it share the build and should fail for their own reasons, not find
    an output missing."""
    outputs = [out for job in jobs for out in job.outputs if (project / out).exists()]
    for out in outputs:
        _copy(project / out, keep / out)
    try:
        yield
    except BaseException:
        for out in outputs:
            _remove(project / out)
            _copy(keep / out, project / out)
        raise


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _copy(src: Path, dst: Path) -> None:
    """A file or a directory output, mtimes kept."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)


def run_jobs(project: Path, mirror: Path, jobs: list[Job], workers: int = 3) -> None:
    """Each job starts once the chosen jobs it reads from are done; ``workers`` at a time
    (more than the cores: the machine is loaded on purpose, and papermill's kernels and
    model loading wait on each other less)."""
    env = env_for(project, mirror)
    needs, done, running, failed = dependencies(jobs), set(), {}, []
    with ThreadPoolExecutor(workers) as pool:
        while len(done) < len(jobs) and not failed:
            for job in jobs:
                if job not in done and job not in running.values() and needs[job] <= done:
                    running[pool.submit(_run, project, env, job)] = job
            if not running:
                pytest.fail("the chosen jobs depend on each other in a cycle")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                job = running.pop(future)
                if message := future.result():
                    failed.append(message)
                done.add(job)
        wait(running)
    if failed:
        pytest.fail("\n".join(failed))


def rule_names(project: Path, mirror: Path) -> set[str]:
    """Every rule of the workflow as configured (`snakemake --list-rules`)."""
    res = snakemake(project, "--list-rules", mirror=mirror)
    return {m.group(1) for line in res.stdout.splitlines() if (m := re.match(r"^(\w+)", line))}


def smallest_job_per_rule(project: Path, mirror: Path) -> dict[str, str]:
    """Rule -> one output of its smallest job: the fewest bytes written, all outputs of a
    job together, ties broken by name. The products are the same bytes on every machine,
    so the same jobs are chosen everywhere (a choice by measured seconds was not); small
    outputs come from small datasets, so these are also about the cheapest jobs.

    Jobs come from `snakemake --summary` (output, rule and log of every output; a job's
    outputs share its log). A job whose outputs do not all exist is not a candidate."""
    res = snakemake(project, "--summary", "--cores", "1", mirror=mirror)
    rows = [line.split("\t") for line in res.stdout.splitlines()[1:] if "\t" in line]
    outputs: dict[tuple[str, str], list[str]] = {}
    for output, _date, rule, logs, *_ in rows:
        log = logs.split(",")[0].strip()
        if log:
            outputs.setdefault((rule, log), []).append(output)
    best: dict[str, tuple[int, str]] = {}
    for (rule, _log), outs in outputs.items():
        paths = [project / out for out in outs]
        if not all(p.exists() for p in paths):
            continue
        size = sum(_bytes(p) for p in paths)
        first = min(outs)
        if rule not in best or (size, first) < best[rule]:
            best[rule] = (size, first)
    return {rule: output for rule, (_, output) in sorted(best.items())}


def _bytes(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size
