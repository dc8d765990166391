"""The whole DAG, for real, on the mirror: records -> grader -> judgments -> notebooks ->
macros, and the PDF when TeX is installed (CI installs it, so there it must build)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harmtrace.io import read_table
from tests.rendering import rendered
from tests.workflow.helpers import (
    busy_cores,
    env_for,
    notebook_cells,
    planned_rules,
    snakemake,
)
from tests.workflow.rerun import (
    planned_jobs,
    restored_on_failure,
    rule_names,
    run_jobs,
    smallest_job_per_rule,
)

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def pdf(built: Path, mirror: Path) -> Path:
    if shutil.which("latexmk") is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs latexmk: `make test` installs it (scripts/setup-system)")
        pytest.skip("latexmk not installed: run scripts/setup-system paper")
    snakemake(built, "--cores", "2", mirror=mirror)
    return built / "results" / "paper" / "paper.pdf"


@pytest.mark.paper
def test_paper_pdf_has_computed_numbers(pdf: Path, built: Path):
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    numbers = json.loads((built / "results" / "numbers" / "01_transitions.json").read_text())
    share = rendered(numbers["numbers"], "plain")["air-bench-2024 all overall de-escalate"]
    assert share in text
    assert "??" not in text  # no unresolved reference or citation
    assert "Built from commit unknown" in text or re.search(r"commit [0-9a-f]{12}", text)


def test_macros_cover_every_producer(built: Path):
    tex = (built / "results" / "paper" / "numbers.tex").read_text()
    producers = (
        "Grader", "Extractors", "Relevance", "Transfer", "Flags", "Data", "Cited", "ModelStudy",
    )  # fmt: skip
    for producer in (*producers, "Transitions"):
        assert f"\\newcommand{{\\Ht{producer}" in tex, producer


def test_judgments_cover_every_record(built: Path):
    cfg = yaml.safe_load((built / "config" / "config.yaml").read_text())
    for name in cfg["data"]["datasets"]:
        rec = read_table(built / "results" / "records" / f"{name}.parquet", "records")
        jud = read_table(
            built / "results" / "judgments" / "embedded" / f"{name}.parquet", "judgments"
        )
        assert rec["record_id"].tolist() == jud["record_id"].tolist()
        assert (jud["status"] == "ok").all()


def test_training_set_is_graded_out_of_fold(built: Path):
    oof = pd.read_parquet(built / "results" / "models" / "embedded" / "oof_scores.parquet")
    jud = pd.read_parquet(
        built / "results" / "judgments" / "embedded" / "openai-moderation.parquet"
    )
    merged = jud.merge(oof, on="record_id")
    assert len(merged) == len(jud)
    assert (merged["prompt_prob_hate"] == merged["prob_hate"]).all()


def test_rerun_has_nothing_to_do(built: Path, mirror: Path):
    assert planned_rules(built, mirror, "--omit-from", "paper") == set()


def test_notebook_parameter_change_reruns_only_notebook_and_macros(built: Path, mirror: Path):
    cfg = built / "config" / "config.yaml"
    original = cfg.read_text()
    data = yaml.safe_load(original)
    data["analysis"]["transitions"]["parameters"]["alpha"] = 0.1
    cfg.write_text(yaml.safe_dump(data))
    try:
        planned = planned_rules(built, mirror, "results/paper/numbers.tex")
    finally:
        cfg.write_text(original)
    assert planned == {"notebook_transitions", "numbers"}


def test_same_inputs_same_bytes(built: Path, mirror: Path, tmp_path: Path):
    """Every rule of the DAG runs again, on a loaded machine, and writes the same bytes.

    One job per rule, the one writing the fewest bytes (the same choice on every
    machine), each by its own command against the inputs already built
    (tests/workflow/rerun.py): the code of every rule runs under load once, without the
    cost of a forced rebuild of all 168 jobs. Every file under results/ is compared, not a
    hand-picked list, so an output nobody thought of cannot drift unnoticed."""
    chosen = smallest_job_per_rule(built, mirror)
    # the checkpoints (`--summary` leaves their outputs out), each for the prompt set or
    # dataset of a chosen job planned from it: a checkpoint and a job it feeds, every time
    answers = Path(chosen["gather_answers"]).stem
    chosen["respond_plan"] = f"results/shards/respond/{answers.split('--')[0]}.plan.json"
    chosen["shard_plan"] = f"results/shards/{Path(chosen['grade']).stem}.plan.json"
    built_pdf = (built / "results" / "paper" / "paper.pdf").is_file()  # with TeX (CI)
    omitted = {"all", "records"} | (set() if built_pdf else {"paper"})  # target rules
    assert set(chosen) == rule_names(built, mirror) - omitted
    jobs = planned_jobs(built, mirror, chosen.values())
    assert sorted(job.rule for job in jobs) == sorted(chosen)
    gather = next(job for job in jobs if job.rule == "gather_answers")
    assert "plan.json" not in gather.command, gather.command  # the shards, as Snakemake runs it
    tex = built / NUMBERS
    before, macros = products(built), set(tex.read_text().splitlines())
    # the respond shard generates again rather than read its answers back from its
    # progress file (step 2 of harmtrace.targets.respond): the model itself runs under load
    progress = built / re.sub(
        r"^results/shards/respond/(.*)\.parquet$", r"results/cache/respond/\1.jsonl",
        chosen["respond_shard"],
    )  # fmt: skip
    with restored_on_failure(built, jobs, tmp_path):
        progress.unlink()
        started = time.time_ns()
        with busy_cores(1):  # the first build ran on a quiet machine, this one on a loaded one
            run_jobs(built, mirror, jobs)  # 3 jobs and the burner: 2 cores oversubscribed
        after = products(built)
        assert (sorted(set(after) - set(before)), sorted(set(before) - set(after))) == ([], [])
        rewritten = sorted(n for n, (mtime, _) in after.items() if mtime > started)
        outputs = {out for job in jobs for out in job.outputs if out in before}
        assert outputs <= set(rewritten), sorted(outputs - set(rewritten))
        if before[NUMBERS][1] != after[NUMBERS][1]:  # name the macros, not a digest
            pytest.fail(
                f"numbers.tex differs: {sorted(macros ^ set(tex.read_text().splitlines()))}"
            )
        assert [n for n in rewritten if before[n][1] != after[n][1]] == []
    # the products of the chosen jobs are now newer than what was built from them: mark
    # that up to date (same bytes, checked above) so later tests start from a settled DAG
    settled = () if built_pdf else OMIT_PAPER
    snakemake(built, "--cores", "1", "--touch", *settled, mirror=mirror)
    assert planned_rules(built, mirror, *settled) == set()


NUMBERS = "results/paper/numbers.tex"
OMIT_PAPER = ("--omit-from", "paper")
UNSTABLE = ("results/logs/", "results/benchmarks/", "results/report.html", "results/paper/build/")
"""What a run writes about itself (timings, log lines, latexmk's file database), not
products (the PDF is compared)."""
BOOKKEEPING = (".snakemake_timestamp",)
"""Snakemake's own mark in a directory output (the rerun outside Snakemake leaves it out;
the ``--touch`` after it puts it back)."""


def products(project: Path) -> dict[str, tuple[int, str]]:
    """Every product under results/: name -> (mtime, sha256); executed notebooks without
    papermill's timings (their only part that differs between two runs)."""
    found = {}
    for path in sorted((project / "results").rglob("*")):
        name = str(path.relative_to(project))
        if not path.is_file() or name.startswith(UNSTABLE) or path.name in BOOKKEEPING:
            continue
        data = (
            json.dumps(notebook_cells(path)).encode()
            if path.suffix == ".ipynb"
            else path.read_bytes()
        )
        found[name] = (path.stat().st_mtime_ns, hashlib.sha256(data).hexdigest())
    return found


def test_every_notebook_runs_as_is_against_results(built: Path, tmp_path: Path):
    """What a researcher does in JupyterLab: open a notebook and run it, no parameters
    (two at a time, each in a papermill process of its own)."""
    shutil.copytree(built / "results", tmp_path / "results")
    shutil.copytree(built / "data", tmp_path / "data")  # fetched reference data (taxonomy)

    def run(nb: Path) -> str:
        out = tmp_path / nb.name
        res = subprocess.run(
            [sys.executable, "-m", "papermill", str(nb), str(out), "--cwd", str(tmp_path),
             "--no-progress-bar"],
            env=env_for(tmp_path), capture_output=True, text=True, check=False,
        )  # fmt: skip
        return "" if res.returncode == 0 and out.is_file() else f"{nb.name}: {res.stderr[-3000:]}"

    with ThreadPoolExecutor(2) as pool:
        failed = [m for m in pool.map(run, sorted((built / "notebooks").glob("*.ipynb"))) if m]
    assert failed == [], "\n".join(failed)


@pytest.mark.paper
def test_snakemake_report_carries_figures_and_captions(pdf: Path, built: Path, mirror: Path):
    snakemake(built, "--cores", "1", "--report", "results/report.html", mirror=mirror)
    html = (built / "results" / "report.html").read_text(errors="replace")
    assert "01_transitions--shares.png" in html
    assert "Out-of-fold validity of the trained grader" in html


def _answers(built: Path) -> pd.DataFrame:
    cfg = yaml.safe_load((built / "config" / "config.yaml").read_text())
    frames = []
    for prompt_set in cfg["respond"]["prompt_sets"]:
        for target in cfg["study"]["targets"]:
            name = f"{prompt_set}--{target}"
            rec = read_table(built / "results" / "records" / f"{name}.parquet", "records")
            jud = read_table(
                built / "results" / "judgments" / "embedded" / f"{name}.parquet", "judgments"
            )
            frames.append(rec.merge(jud, on="record_id"))
    return pd.concat(frames, ignore_index=True)


def test_the_model_answers_with_provenance(built: Path):
    answers = _answers(built)
    manifest = json.loads(
        (built / "results/models/targets/smollm2-135m-instruct/manifest.json").read_text()
    )
    assert len(answers) == 3 * 2 * 12  # 3 prompt sets x 2 conditions x max_prompts
    assert answers["response"].notna().all()
    assert set(answers["gen_finish_reason"]) <= {"stop", "length"}
    for raw in answers["gen_settings"].unique():
        settings = json.loads(raw)
        assert settings["weights_sha256"] == manifest["weights_sha256"]
        assert settings["chat_template_sha256"] == manifest["chat_template_sha256"]
    prompts = answers.groupby("gen_target")["gen_prompt_record_id"].apply(frozenset)
    assert prompts["smollm2-plain"] == prompts["smollm2-safety"]  # paired by construction


def test_model_study_numbers_recompute_from_results(built: Path):
    answers = _answers(built)
    numbers = json.loads((built / "results" / "numbers" / "07_model_study.json").read_text())
    nums = numbers["numbers"]
    for role, target in (("baseline", "smollm2-plain"), ("treatment", "smollm2-safety")):
        for kind in ("harmful", "benign"):
            part = answers[(answers["gen_target"] == target) & (answers["gen_prompt_kind"] == kind)]
            share = part["refusal"].astype(bool).mean()
            assert nums[f"{role} refusal {kind}"]["value"] == pytest.approx(share)
    base = answers[answers["gen_target"] == "smollm2-plain"].set_index("gen_prompt_record_id")
    treat = answers[answers["gen_target"] == "smollm2-safety"].set_index("gen_prompt_record_id")
    harmful = base.index[base["gen_prompt_kind"] == "harmful"]
    only_treat = (
        treat.loc[harmful, "refusal"].astype(bool) & ~base.loc[harmful, "refusal"].astype(bool)
    ).sum()
    assert nums["paired refusal harmful treatment only"]["value"] == only_treat


def test_refused_answers_are_not_graded_as_harmful(built: Path):
    """Grader validity v3: a refusal that names a harm is not that harm. At most 2 % of
    the AIR-Bench answers refused (by the benchmark's judge, and by the grader's own
    flag) are graded Medium or higher on the response side (whole-text grading: 12/61)."""
    rec = read_table(built / "results" / "records" / "air-bench-2024.parquet", "records")
    jud = read_table(
        built / "results" / "judgments" / "embedded" / "air-bench-2024.parquet", "judgments"
    )
    merged = rec[["record_id", "air_judge_score"]].merge(jud, on="record_id")
    cols = [c for c in merged.columns if c.startswith("response_severity_")]
    medium = merged[cols].astype("Float64").max(axis=1).fillna(0).to_numpy() >= 2
    for refused in (
        merged["air_judge_score"].astype(float).to_numpy() == 1.0,
        merged["refusal"].fillna(False).to_numpy(dtype=bool),
    ):
        assert refused.sum() >= 30  # the benchmark's answers are mostly refusals
        assert (medium & refused).sum() <= 0.02 * refused.sum()
