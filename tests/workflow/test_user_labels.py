"""The README's "Your own labelled data" block, run as written on a synthetic file with
known labels: the DAG runs by config alone, and the numbers match the labels."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.workflow.helpers import ROOT, SMALL, copy_project, edit_config, snakemake

CATEGORIES = ("hate", "sexual", "violence", "self_harm")
N = 240


def readme_config() -> dict:
    """The block under "# my.yaml" in the README, as the user copies it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(# my\.yaml.*?)```", text, flags=re.S)
    assert block, "README has no '# my.yaml' block"
    return yaml.safe_load(block.group(1))


def labelled_pairs(n: int = N, seed: int = 7) -> pd.DataFrame:
    """Prompt-response pairs with human severities and relevance; prompt and response
    severities drawn independently per category so every transition type occurs."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": [f"r{i:04d}" for i in range(n)],
            "prompt": [
                f"Question {i}: how would someone handle situation {i % 17}?" for i in range(n)
            ],
            "response": [
                f"Answer {i}: here is one way to think about case {i % 13}." for i in range(n)
            ],
        }
    )
    for cat in CATEGORIES:
        frame[f"prompt_severity_{cat}"] = rng.choice(4, size=n, p=[0.55, 0.2, 0.15, 0.1])
        frame[f"response_severity_{cat}"] = rng.choice(4, size=n, p=[0.7, 0.15, 0.1, 0.05])
    frame["relevance"] = rng.choice([1, 2, 3], size=n, p=[0.2, 0.3, 0.5])
    return frame


REUSED = ("data", ".snakemake", "results/records", "results/models", "results/embeddings",
          "results/judgments", "results/shards", "results/cache")  # fmt: skip
"""What the user run takes from the shared pilot build: fetched data and what the grader is
trained and checked on. Snakemake decides what of it is up to date for this config (same
file times, its own metadata); the analyses, the paper, trees and traces are not taken,
so the checks below of what the run made and did not make keep their meaning."""


@pytest.fixture(scope="module")
def user_run(tmp_path_factory: pytest.TempPathFactory, built: Path, mirror: Path) -> Path:
    project = copy_project(tmp_path_factory.mktemp("user") / "project")
    edit_config(project, SMALL)  # the shared build's settings but its HH-RLHF sample (the
    # check refuses a sample of a dataset the study leaves out); the README block on top
    for name in REUSED:  # a researcher adding their file to a project already built
        if (built / name).exists():
            shutil.copytree(built / name, project / name, symlinks=True)
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    config = readme_config()
    path = project / config["data"]["user_datasets"]["mystudy"]["path"]
    path.parent.mkdir(parents=True, exist_ok=True)
    labelled_pairs().to_csv(path, index=False)
    (project / "my.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    snakemake(project, "--cores", "2", "--configfile", "my.yaml", mirror=mirror)
    return project


README_BLOCK_MAX_LINES = 10
"""Issue 19: the own-labelled-data block is at most ten lines of YAML."""

NOT_TRAINED_ON = ("AIR-Bench", "HH-RLHF", "Anthropic", "SimpleSafetyTests", "SmolLM2",
                  "XSTest", "WildGuard", "SORRY-Bench", "Llama-3")  # fmt: skip
"""Shipped benchmark (and model) names that an own-data paper has no reason to print: none
of them is training data of the grader, the one place a shipped name may appear."""


def test_the_readme_block_is_short():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(# my\.yaml.*?)```", text, flags=re.S).group(1)
    lines = [ln for ln in block.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(lines) <= README_BLOCK_MAX_LINES, lines


def test_the_readme_block_runs_to_a_paper_about_the_users_data(user_run: Path, mirror: Path):
    pdf = user_run / "results/paper/paper.pdf"
    assert pdf.is_file()
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "mystudy" in text
    shown = [name for name in NOT_TRAINED_ON if name.lower() in text.lower()]
    assert shown == [], f"the own-data paper names {shown}"
    notebooks = sorted(p.stem for p in (user_run / "results/notebooks").glob("*.ipynb"))
    assert notebooks == [
        "01_transitions",
        "02_category_asymmetry",
        "03_relevance",
        "04_grader_validity",
        "06_moderation_policy",
    ]
    # the whole plan for this config (not what happens to be on disk: the shared build's
    # records were copied in) has no trees and no shipped benchmark outside the grader's
    plan = snakemake(
        user_run, "-n", "--forceall", "--cores", "1", "--configfile", "my.yaml", mirror=mirror
    )
    planned = plan.stdout + plan.stderr
    assert "rule trees:" not in planned
    outputs = re.findall(r"^\s+output: (.*)$", planned, flags=re.M)
    assert outputs and [o for o in outputs if "air-bench" in o or "hh-rlhf" in o] == []


def test_the_human_backend_grades_only_the_labelled_file(user_run: Path):
    assert sorted(p.name for p in (user_run / "results/judgments/human").iterdir()) == [
        "mystudy.parquet"
    ]
    human = pd.read_parquet(user_run / "results/judgments/human/mystudy.parquet")
    embedded = pd.read_parquet(user_run / "results/judgments/embedded/mystudy.parquet")
    assert len(human) == N and len(embedded) == N  # one row per record, both sides
    assert (human["status"] == "ok").all()


def test_every_response_is_traced(user_run: Path):
    for policy in ("observe", "block_high", "redact_medium_block_high"):
        lines = (user_run / f"results/traces/{policy}/mystudy.jsonl").read_text().splitlines()
        assert len(lines) == N
        assert (user_run / f"results/traces/{policy}/index.html").is_file()


def test_transition_counts_match_the_labels(user_run: Path):
    """De-escalations, preservations and escalations per category and overall (the highest
    severity over the categories), counted here from the labels, against notebook 02's
    numbers file."""
    frame = labelled_pairs()
    numbers = json.loads(
        (user_run / "results/numbers/02_category_asymmetry.json").read_text(encoding="utf-8")
    )["numbers"]
    sides = {
        c: (frame[f"prompt_severity_{c}"], frame[f"response_severity_{c}"]) for c in CATEGORIES
    }
    sides["overall"] = (
        frame[[f"prompt_severity_{c}" for c in CATEGORIES]].max(axis=1),
        frame[[f"response_severity_{c}" for c in CATEGORIES]].max(axis=1),
    )
    for cat, (prompt, response) in sides.items():
        expected = {
            "de-escalate": int((response < prompt).sum()),
            "preserve": int((response == prompt).sum()),
            "escalate": int((response > prompt).sum()),
        }
        for kind, k in expected.items():
            key = f"mystudy all {cat} {kind}"
            assert numbers[f"{key} k"]["value"] == k, key
            assert numbers[f"{key} n"]["value"] == N, key
            assert numbers[key]["value"] == pytest.approx(k / N), key
