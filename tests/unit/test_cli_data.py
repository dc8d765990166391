"""The command line turns library errors into one clear line and exit code 2."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from harmtrace.cli import app

runner = CliRunner()


def test_unknown_dataset_exit_code_and_message(tmp_path):
    res = runner.invoke(app, ["fetch", "nope", "--raw-dir", str(tmp_path)])
    assert res.exit_code == 2
    assert "unknown dataset 'nope'; known datasets:" in res.output


def test_fetch_and_normalize_through_the_cli(mirror, tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "rec.parquet"
    res = runner.invoke(
        app, ["fetch", "air-bench-2024", "--raw-dir", str(raw), "--mirror", str(mirror)]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app, ["normalize", "air-bench-2024", "--raw-dir", str(raw), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert len(pd.read_parquet(out)) == 80
    assert (tmp_path / "air-bench-2024.quarantine.jsonl").read_text() == ""


def test_normalize_without_fetch_says_what_to_run(tmp_path):
    res = runner.invoke(app, ["normalize", "harmbench", "--raw-dir", str(tmp_path)])
    assert res.exit_code == 2
    assert "run `harmtrace fetch harmbench` first" in res.output


def test_normalize_user_file(tmp_path):
    src = tmp_path / "pairs.csv"
    pd.DataFrame({"p": ["hello there"], "r": ["hi"]}).to_csv(src, index=False)
    out = tmp_path / "pairs.parquet"
    res = runner.invoke(
        app,
        [
            "normalize",
            "--input",
            str(src),
            "--name",
            "pairs",
            "--prompt-column",
            "p",
            "--response-column",
            "r",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert pd.read_parquet(out)["response"].tolist() == ["hi"]


def test_normalize_user_file_needs_name(tmp_path):
    res = runner.invoke(app, ["normalize", "--input", str(tmp_path / "x.csv")])
    assert res.exit_code == 2 and "--input needs --name and --prompt-column" in res.output


def test_datasets_lists_access_status():
    res = runner.invoke(app, ["datasets"])
    assert res.exit_code == 0
    assert "gated (needs $HF_TOKEN)" in res.output and "mirrored" in res.output
