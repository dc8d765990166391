"""`harmtrace respond` on the real SmolLM2 folder: killed mid-generation, a rerun
generates only the unfinished prompts; warm reruns generate nothing; cold runs agree
byte for byte; bad prompts stop with the row."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.unit.test_target_weights import SMOLLM2, converted_smollm2

HARMTRACE = str(Path(sys.executable).with_name("harmtrace"))
PROMPTS = [
    "What is the capital of France?",
    "Name three colours.",
    "How many legs does a spider have?",
    "Write one sentence about the sea.",
    "What is two plus two?",
    "Say hello in Spanish.",
]
SPEC = {
    "backend": "transformers",
    "model": SMOLLM2,
    "system_prompt": "Answer briefly.",
    "generation": {"max_tokens": 24},
    "batch_size": 1,
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return converted_smollm2(tmp_path_factory)


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [HARMTRACE, *args],
        capture_output=True, text=True, check=False, **kw,
    )  # fmt: skip


def _records(tmp_path: Path, prompts: list[str]) -> Path:
    import pandas as pd

    src = tmp_path / "prompts.csv"
    pd.DataFrame({"prompt": prompts}).to_csv(src, index=False)
    out = tmp_path / "myprompts.parquet"
    res = _cli(
        "normalize", "--input", str(src), "--name", "myprompts", "--prompt-column", "prompt",
        "--out", str(out), "--quarantine", str(tmp_path / "q.jsonl"),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return out


def _respond_args(records: Path, folder: Path, out: Path, progress: Path) -> list[str]:
    return [
        "respond", "myprompts", "--target", "smol", "--spec", json.dumps(SPEC),
        "--records", str(records), "--kind", "benign", "--model-dir", str(folder),
        "--progress", str(progress), "--out", str(out),
    ]  # fmt: skip


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0


def test_killed_rerun_generates_only_what_is_missing(tmp_path, folder):
    records = _records(tmp_path, PROMPTS)
    progress, out = tmp_path / "progress.jsonl", tmp_path / "answers.parquet"
    proc = subprocess.Popen(
        [HARMTRACE, *_respond_args(records, folder, out, progress)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while _lines(progress) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = _lines(progress)
    assert 2 <= done_before < len(PROMPTS), "the job must be killed mid-generation"
    assert not out.exists()

    res = _cli(*_respond_args(records, folder, out, progress))
    assert res.returncode == 0, res.stderr
    generated = len(PROMPTS) - done_before
    assert f"{generated} answers generated, {done_before} reused" in res.stderr

    warm = _cli(*_respond_args(records, folder, tmp_path / "warm.parquet", progress))
    assert "0 answers generated, 6 reused" in warm.stderr

    cold = _cli(*_respond_args(records, folder, tmp_path / "cold.parquet", tmp_path / "p2.jsonl"))
    assert cold.returncode == 0, cold.stderr
    assert (tmp_path / "cold.parquet").read_bytes() == out.read_bytes()
    assert (tmp_path / "warm.parquet").read_bytes() == out.read_bytes()

    from harmtrace.io import read_table

    answers = read_table(out, "records")
    assert answers["response"].str.len().gt(0).all()
    assert set(answers["gen_finish_reason"]) <= {"stop", "length"}
    settings = json.loads(answers.loc[0, "gen_settings"])
    assert settings["system_prompt"] == "Answer briefly."
    assert len(settings["weights_sha256"]) == 64


def test_a_prompt_too_long_for_the_context_names_its_row(tmp_path, folder):
    records = _records(tmp_path, ["Hi", "word " * 9000])
    res = _cli(*_respond_args(records, folder, tmp_path / "o.parquet", tmp_path / "p.jsonl"))
    assert res.returncode != 0
    assert "error:" in res.stderr and ("row" in res.stderr or "record" in res.stderr)
    assert not (tmp_path / "o.parquet").exists()
