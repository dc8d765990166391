"""A slice of the DAG through a real Slurm cluster with profiles/slurm (docs/cluster.md).

The slice: a target's answers to a prompt set in two respond shards of SmolLM2, gathered
as one answer dataset (its records), graded by the embedded grader in three shards,
gathered, then notebook 01 and the record counts (results/numbers/data.json). A local run
(``--cores 2``) of the same config first builds what the slice needs (fetched and
normalized data, the trained grader) and the slice itself, the reference. A copy without
the slice's products then runs it through Slurm three times:

1. a respond shard is cancelled with ``scancel`` while it runs: the run fails naming the
   rule and its log;
2. again with grade_shard's memory set far too low (``--set-resources``): Slurm kills the
   grading jobs over their limit and the run names the rule and its log; the respond
   shard that had finished in run 1 is not redone;
3. as the profile says: the run completes, redoes no finished shard, and its products are
   byte-identical to the local run's.

Every job of the three runs is checked against Slurm's own records (``sacct -c`` and the
job completion log it reads): one Slurm job per Snakemake job, with the memory and CPUs
that Snakemake resolved from the rules and the profile.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harmtrace.io import read_table
from tests.devdata import prepared_smollm2
from tests.slurm.conftest import Cluster
from tests.workflow.helpers import copy_project, env_for, notebook_cells, snakemake

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

ROOT = Path(__file__).resolve().parents[2]
PROFILE = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
TARGET = "smollm2-plain"
PROMPT_SET = "simplesafetytests"
ANSWERS = f"{PROMPT_SET}--{TARGET}"
PROMPTS, RESPOND_SHARD, GRADE_SHARD = 3, 2, 1
"""3 prompts: respond shards of 2 prompts (2 jobs), grading shards of 1 record (3 jobs)."""
RESPOND_SHARDS = -(-PROMPTS // RESPOND_SHARD)
GRADE_SHARDS = -(-PROMPTS // GRADE_SHARD)
TOO_LITTLE_MB = 100
"""grade_shard's memory in run 2: less than Python with pandas needs, so Slurm kills it."""
TARGETS = ("results/notebooks/01_transitions.ipynb", "results/numbers/data.json")
SLICE = (
    f"results/shards/respond/{PROMPT_SET}.plan.json",
    f"results/shards/respond/{TARGET}",
    f"results/records/{ANSWERS}.parquet",
    f"results/shards/{ANSWERS}.plan.json",
    f"results/shards/embedded/{ANSWERS}",
    f"results/judgments/embedded/{ANSWERS}.parquet",
    f"results/embeddings/minilm/{ANSWERS}.parquet",
    "results/notebooks",
    "results/numbers/01_transitions.json",
    "results/numbers/data.json",
    "results/tables/01_transitions",
    "results/figures/01_transitions",
)
"""Every product of the slice: removed from the copy that runs it through Slurm."""
LOCAL_CLUSTER = (
    "--slurm-no-account",  # no slurmdbd, so no accounts to pick from
    "--slurm-status-command",
    "squeue",  # sacct needs slurmdbd; finished jobs stay in squeue (MinJobAge=600)
    "--slurm-init-seconds-before-status-checks",
    "1",
    "--slurm-keep-successful-logs",
)
"""What the one-node test cluster needs on top of profiles/slurm (docs/cluster.md)."""


def slice_config(project: Path) -> None:
    """The project's config cut down to the slice: four datasets, one target on three
    prompts, one notebook on its answers, no trees, moderation or paper."""
    path = project / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["data"]["datasets"] = ["openai-moderation", PROMPT_SET, "garak-refusal", "pyrit-refusal"]
    config["targets"] = {
        TARGET: {"backend": "transformers", "model": str(prepared_smollm2()),
                 "system_prompt": None, "generation": {"temperature": 0.0, "max_tokens": 8},
                 "threads": 2}  # both CPUs: the shards run one after the other (scancel test)
    }  # fmt: skip
    config["study"].update(datasets=[], targets=[TARGET])
    config["respond"].update(
        prompt_sets={PROMPT_SET: "harmful"},
        max_prompts=PROMPTS, shard_size=RESPOND_SHARD,
    )  # fmt: skip
    config["grade"].update(shard_size=GRADE_SHARD, relevance_check={"dataset": None})
    embedded = config["grader"]["embedded"]
    embedded.update(train_datasets=["openai-moderation"], folds=2)
    embedded["compare"] = {"extractors": ["tfidf"], "seeds": [0]}
    embedded["transfer"]["harm_word_source"] = None
    config["moderate"]["enabled"] = False
    config["trees"]["enabled"] = False
    config["analysis"] = {
        "transitions": {"notebook": "01_transitions", "grader": "embedded", "datasets": [ANSWERS],
                        "parameters": {"alpha": 0.05, "n_boot": 50, "seed": 0}}
    }  # fmt: skip
    config["paper"]["build"] = False
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@dataclass
class Run:
    returncode: int
    output: str
    seconds: float
    jobs: dict[str, dict]
    """Slurm job id -> rule, mem_mb and threads as Snakemake resolved them."""


def submitted_jobs(output: str) -> dict[str, dict]:
    """Snakemake's job blocks (rule, threads, resources) joined to the Slurm job ids it
    reported for them."""
    blocks: dict[str, dict] = {}
    for block in re.split(r"\n(?=(?:rule|checkpoint|localrule) \w+:\n)", output):
        head = re.match(r"(?:rule|checkpoint) (\w+):\n", block)
        jobid = re.search(r"^\s+jobid: (\d+)$", block, flags=re.M)
        if head and jobid:
            threads = re.search(r"^\s+threads: (\d+)$", block, flags=re.M)
            mem = re.search(r"^\s+resources: .*\bmem_mb=(\d+)", block, flags=re.M)
            blocks[jobid.group(1)] = {
                "rule": head.group(1),
                "threads": int(threads.group(1)) if threads else 1,
                "mem_mb": int(mem.group(1)) if mem else None,
            }
    submitted = re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", output)
    return {slurm_id: blocks[jobid] for jobid, slurm_id in submitted}


def through_slurm(project: Path, cluster: Cluster, *extra: str, cancel=None) -> Run:
    """The slice through profiles/slurm; ``cancel(project, env)`` is polled while it runs
    and may scancel a job (it returns True once it did)."""
    # the targets first: --set-resources takes every value that follows it
    args = [sys.executable, "-m", "snakemake", *TARGETS, "--profile", "profiles/slurm",
            *LOCAL_CLUSTER, *extra]  # fmt: skip
    env = {**env_for(project), "SLURM_CONF": str(cluster.conf)}
    log = project / f"slurm-run-{time.monotonic_ns()}.log"
    start = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(args, cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT)
        done = cancel is None
        while proc.poll() is None:
            if not done:
                done = cancel(project, env)
            time.sleep(0.5)
    output = log.read_text()
    if not done:
        pytest.fail(f"the run ended before the job to cancel was running:\n{output}")
    return Run(proc.returncode, output, time.monotonic() - start, submitted_jobs(output))


def slurm_records(cluster: Cluster, job_ids) -> dict[str, dict]:
    """What Slurm recorded for each finished job: state and CPUs from ``sacct -c``, the
    allocated memory from the job completion log that sacct reads (its ReqMem column stays
    empty without slurmdbd)."""
    env = cluster.env()
    ids = ",".join(sorted(job_ids, key=int))
    out = subprocess.run(
        ["sacct", "-c", "-n", "-P", f"--jobs={ids}", "--format=JobID,State,ExitCode,AllocCPUS"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    records = {}
    for line in out.splitlines():
        job, state, exit_code, cpus = line.split("|")
        records[job] = {"state": state, "exit": exit_code, "cpus": int(cpus)}
    for line in cluster.jobcomp.read_text().splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if fields.get("JobId") in records:
            tres = dict(t.split("=", 1) for t in fields["Tres"].split(","))
            records[fields["JobId"]]["mem_mb"] = int(tres["mem"].rstrip("M"))
    return records


def declared_mem_mb() -> dict[str, int]:
    """mem_mb of every rule that declares one in workflow/rules/*.smk."""
    found = {}
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        for m in re.finditer(
            r"^\s*(?:rule|checkpoint) (\w+):\n(.*?)(?=^\s*(?:rule|checkpoint)\b|\Z)",
            text,
            flags=re.M | re.S,
        ):
            mem = re.search(r"^\s*resources:\n(?:\s*#.*\n)*\s*mem_mb=(\d+)", m.group(2), re.M)
            if mem:
                found[m.group(1)] = int(mem.group(1))
    return found


def mtimes(project: Path, folder: str) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted((project / folder).glob("*.parquet"))}


RESPOND_DIR = f"results/shards/respond/{TARGET}/{PROMPT_SET}"
GRADE_DIR = f"results/shards/embedded/{ANSWERS}"


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, mirror: Path) -> Path:
    """The slice and all it needs, run locally: the reference."""
    project = copy_project(tmp_path_factory.mktemp("slurm-local") / "project")
    slice_config(project)
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    start = time.monotonic()
    snakemake(project, "--cores", "2", *TARGETS, mirror=mirror)
    print(f"local run (slice and what it needs): {time.monotonic() - start:.0f} s")
    return project


def cancel_second_respond_shard(project: Path, env: dict[str, str]) -> bool:
    """scancel the respond shard that runs once another one has finished (each needs both
    CPUs, so they run one after the other)."""
    if not any((project / RESPOND_DIR).glob("*.parquet")):
        return False
    out = subprocess.run(
        ["squeue", "-h", "-t", "RUNNING", "-o", "%i|%k"], env=env, capture_output=True, text=True
    ).stdout
    for line in out.splitlines():
        job, comment = line.split("|", 1)
        if comment.startswith("rule_respond_shard"):
            subprocess.run(["scancel", job], env=env, check=True)
            return True
    return False


@dataclass
class Scenario:
    project: Path
    runs: list[Run]
    respond_after: list[dict[str, int]]
    """mtimes of the respond shards after each run."""
    grade_after: list[dict[str, int]]
    """mtimes of the grading shards after each run."""


@pytest.fixture(scope="module")
def scenario(local: Path, slurm_cluster: Cluster, mirror: Path) -> Scenario:
    project = local.parent.parent / "slurm-copy"
    shutil.copytree(local, project, symlinks=True)  # copy2: mtimes kept, nothing is stale
    for name in SLICE:
        path = project / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    assert not list((project / "results").rglob(f"*{ANSWERS}*.parquet"))
    runs, respond_after, grade_after = [], [], []
    for extra, cancel in (
        ((), cancel_second_respond_shard),
        (("--set-resources", f"grade_shard:mem_mb={TOO_LITTLE_MB}"), None),
        ((), None),
    ):
        runs.append(through_slurm(project, slurm_cluster, *extra, cancel=cancel))
        print(f"slurm run {len(runs)}: {runs[-1].seconds:.0f} s, {len(runs[-1].jobs)} jobs")
        respond_after.append(mtimes(project, RESPOND_DIR))
        grade_after.append(mtimes(project, GRADE_DIR))
    return Scenario(project, runs, respond_after, grade_after)


def test_a_cancelled_respond_shard_is_reported_with_its_rule_and_log(scenario):
    run = scenario.runs[0]
    assert run.returncode != 0, run.output
    assert "Error in rule respond_shard" in run.output
    failed = re.search(r"Error in rule respond_shard:.*?\n(?=\S|\Z)", run.output, flags=re.S)
    assert failed, run.output
    log = re.search(r"log: (results/logs/respond/\S+?\.log)", failed.group(0))
    assert log and (scenario.project / log.group(1)).is_file(), failed.group(0)
    assert ".snakemake/slurm_logs/rule_respond_shard/" in failed.group(0)
    # exactly one shard had finished; the cancelled one left no output behind
    assert len(scenario.respond_after[0]) == RESPOND_SHARDS - 1


def test_a_job_over_its_memory_is_killed_by_slurm_and_reported(scenario, slurm_cluster):
    run = scenario.runs[1]
    assert run.returncode != 0, run.output
    failed = re.search(r"Error in rule grade_shard:.*?\n(?=\S|\Z)", run.output, flags=re.S)
    assert failed, run.output
    assert re.search(r"log: results/logs/grade/embedded/\S+\.log", failed.group(0))
    slurm_log = re.search(
        r"(\S+/\.snakemake/slurm_logs/rule_grade_shard/\S+\.log)", failed.group(0)
    )
    assert slurm_log, failed.group(0)
    assert "exceeded memory limit" in Path(slurm_log.group(1)).read_text()
    graded = [j for j, spec in run.jobs.items() if spec["rule"] == "grade_shard"]
    records = slurm_records(slurm_cluster, graded)
    assert graded and all(records[j]["mem_mb"] == TOO_LITTLE_MB for j in graded)
    assert all(records[j]["state"] != "COMPLETED" for j in graded), records
    assert scenario.grade_after[1] == {}  # no killed shard left an output behind


def test_reruns_complete_without_redoing_finished_shards(scenario):
    first, second, third = scenario.respond_after
    # every respond shard exists ...
    assert sorted(third) == [
        f"{i}-of-{RESPOND_SHARDS}.parquet" for i in range(1, RESPOND_SHARDS + 1)
    ]
    for name, mtime in first.items():  # ... and the one finished in run 1 was never redone
        assert second[name] == third[name] == mtime
    assert second == third  # run 3 redid no respond shard
    assert scenario.runs[2].returncode == 0, scenario.runs[2].output
    rules = [spec["rule"] for spec in scenario.runs[2].jobs.values()]
    assert "respond_shard" not in rules and rules.count("grade_shard") == GRADE_SHARDS
    grade_shards = sorted(p.name for p in (scenario.project / GRADE_DIR).glob("*.parquet"))
    assert grade_shards == [f"{i}-of-{GRADE_SHARDS}.parquet" for i in range(1, GRADE_SHARDS + 1)]
    answers = read_table(scenario.project / f"results/records/{ANSWERS}.parquet", "records")
    judged = pd.read_parquet(scenario.project / f"results/judgments/embedded/{ANSWERS}.parquet")
    assert len(answers) == PROMPTS
    assert sorted(judged["record_id"]) == sorted(answers["record_id"])  # every record, once
    assert (judged["status"] == "ok").all(), judged[["record_id", "status", "error"]]


def test_every_rule_ran_as_its_own_slurm_job_with_its_resources(scenario, slurm_cluster):
    jobs = {j: spec for run in scenario.runs for j, spec in run.jobs.items()}
    records = slurm_records(slurm_cluster, jobs)
    assert set(records) == set(jobs)  # Slurm knows every job Snakemake submitted
    override = scenario.runs[1].jobs
    default_mem = int(PROFILE["default-resources"]["mem_mb"])
    declared = declared_mem_mb()
    seen = set()
    for job, spec in jobs.items():
        got = records[job]
        seen.add(spec["rule"])
        assert got["cpus"] == spec["threads"], (job, spec, got)
        assert got["mem_mb"] == spec["mem_mb"], (job, spec, got)
        if not (job in override and spec["rule"] == "grade_shard"):
            # the rule's own mem_mb where it declares one, else the profile's default
            assert spec["mem_mb"] == declared.get(spec["rule"], default_mem), (job, spec)
    assert {"respond_plan", "respond_shard", "gather_answers", "shard_plan", "grade_shard",
            "grade", "notebook_transitions", "data_numbers"} <= seen  # fmt: skip
    final = {j: records[j] for j in scenario.runs[2].jobs}
    assert all(r["state"] == "COMPLETED" and r["exit"] == "0:0" for r in final.values()), final


def test_products_are_byte_identical_to_the_local_run(scenario, local):
    assert scenario.runs[2].returncode == 0, scenario.runs[2].output
    compared = 0
    for name in SLICE:
        ref = local / name
        files = (
            sorted(p.relative_to(local) for p in ref.rglob("*") if p.is_file())
            if ref.is_dir()
            else [Path(name)]
        )
        assert files, name
        for rel in files:
            mine = scenario.project / rel
            assert mine.is_file(), rel
            if rel.suffix == ".ipynb":
                assert notebook_cells(mine) == notebook_cells(local / rel), rel
            else:
                assert mine.read_bytes() == (local / rel).read_bytes(), rel
            compared += 1
    assert compared >= RESPOND_SHARDS + GRADE_SHARDS + 6


WRITER = textwrap.dedent(
    """
    import sys
    from harmtrace.llm.cache import Answer, AnswerCache
    path, who, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with AnswerCache(path) as cache:
        for i in range(start, start + 400):
            stored = cache.put(f"k{i}", "m", "t", f"d{i}", Answer(f"{who}{i}", "stop", 1, 1))
            assert cache.get(f"k{i}") == stored
    """
)


def test_two_slurm_jobs_share_one_answer_cache(slurm_cluster, tmp_path):
    """Two jobs writing one SQLite answer cache at the same time (overlapping keys): every
    key stored once, and both jobs read the same answer for it (the first one written)."""
    script, cache = tmp_path / "writer.py", tmp_path / "cache" / "answers.sqlite"
    script.write_text(WRITER)
    env = {**env_for(ROOT), "SLURM_CONF": str(slurm_cluster.conf)}
    procs = [
        subprocess.Popen(
            [
                "sbatch",
                "--wait",
                "--quiet",
                "-c",
                "1",
                "--mem=500",
                f"--output={tmp_path}/{who}.out",
                "--wrap",
                f"{sys.executable} {script} {cache} {who} {start}",
            ],
            env=env,
            cwd=tmp_path,
        )
        for who, start in (("a", 0), ("b", 200))
    ]
    codes = [p.wait(300) for p in procs]
    outputs = "".join((tmp_path / f"{who}.out").read_text() for who in "ab")
    assert codes == [0, 0], outputs
    from harmtrace.llm.cache import AnswerCache

    with AnswerCache(cache) as c:
        assert len(c) == 600
        rows = dict(c._db.execute("SELECT key, content FROM answers").fetchall())
    assert all(rows[f"k{i}"] == f"a{i}" for i in range(200))
    assert all(rows[f"k{i}"] == f"b{i}" for i in range(400, 600))
    assert all(rows[f"k{i}"] in (f"a{i}", f"b{i}") for i in range(200, 400))
