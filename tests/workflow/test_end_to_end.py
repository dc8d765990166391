"""The whole DAG, for real, on the mirror: records -> grader -> judgments -> notebooks ->
macros, and the PDF when TeX is installed (CI installs it, so there it must build)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harmtrace.io import read_table
from tests.rendering import rendered
from tests.workflow.helpers import busy_cores, planned_rules, snakemake

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


def test_same_inputs_same_bytes(built: Path, mirror: Path):
    targets = [
        "results/records/hh-rlhf-harmless.parquet",
        "results/judgments/embedded/air-bench-2024.parquet",
        "results/records/harmbench--smollm2-safety.parquet",
        "results/numbers/07_model_study.json",
        "results/tables/01_transitions/01_transitions--shares.tex",
        "results/figures/01_transitions/01_transitions--shares.png",
        "results/numbers/grader.json",
        "results/embeddings/minilm/hh-rlhf-harmless.parquet",
        "results/models/embedded/extractor_comparison.parquet",
        "results/models/embedded/extractor_loso.parquet",
        "results/tables/extractors--comparison.tex",
        "results/numbers/06_moderation_policy.json",
        "results/paper/numbers.tex",
    ]
    before = {t: (built / t).read_bytes() for t in targets}
    started = time.time_ns()
    with busy_cores(2):  # the first build ran on a quiet machine, this one on a loaded one
        snakemake(
            built,
            "--cores",
            "2",
            "--forceall",
            # no --omit-from here: with --forceall, `--omit-from paper` also left out the
            # `numbers` rule, so numbers.tex was never rebuilt and its comparison could not
            # fail
            "results/paper/numbers.tex",
            mirror=mirror,
        )
    after = {t: (built / t).read_bytes() for t in targets}
    tex = "results/paper/numbers.tex"
    # every macro, the extractor comparison's included: its pick reads no timing any more
    if before[tex] != after[tex]:  # name the macros, not a byte blob
        old, new = (set(side[tex].decode().splitlines()) for side in (before, after))
        pytest.fail(f"numbers.tex differs: {sorted(old ^ new)[:10]}")
    assert before == after
    # every target was rewritten by the forced run, not left over from the first build
    rebuilt = {t: (built / t).stat().st_mtime_ns for t in targets}
    assert all(rebuilt[t] > started for t in targets), rebuilt


def test_every_notebook_runs_as_is_against_results(built: Path, tmp_path: Path):
    """What a researcher does in JupyterLab: open a notebook and run it, no parameters."""
    import papermill

    shutil.copytree(built / "results", tmp_path / "results")
    shutil.copytree(built / "data", tmp_path / "data")  # fetched reference data (taxonomy)
    for nb in sorted((built / "notebooks").glob("*.ipynb")):
        papermill.execute_notebook(
            str(nb), str(tmp_path / nb.name), cwd=str(tmp_path), progress_bar=False
        )
        assert (tmp_path / nb.name).is_file()


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
