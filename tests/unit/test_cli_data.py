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


def _normalize_input(src, out, *extra):
    return runner.invoke(
        app,
        [
            *("normalize", "--input", str(src), "--name", "x", "--prompt-column", "prompt"),
            *("--response-column", "response", "--out", str(out), *map(str, extra)),
        ],
    )


def test_trailing_comma_csv_fails_naming_the_rows(tmp_path):
    src = tmp_path / "t.csv"
    src.write_text("prompt,response\nhow do I bake bread,Here is how,\nwhat is 2+2,4,\n")
    res = _normalize_input(src, tmp_path / "x.parquet")
    assert res.exit_code == 2, res.output
    assert "row 2 (item 000000): 3 fields, the header has 2" in res.output
    assert not (tmp_path / "x.parquet").exists()


def test_normalize_refuses_a_registered_name_for_a_user_file(tmp_path):
    src = tmp_path / "t.csv"
    src.write_text("prompt\nhello\n")
    res = runner.invoke(
        app,
        [
            *("normalize", "--input", str(src), "--name", "simplesafetytests"),
            *("--prompt-column", "prompt", "--out", str(tmp_path / "s.parquet")),
        ],
    )
    assert res.exit_code == 2
    assert "'simplesafetytests' is a registered dataset" in res.output


def test_normalize_output_that_is_a_directory_is_a_clear_error(tmp_path):
    src = tmp_path / "t.csv"
    src.write_text("prompt,response\nhello,hi\n")
    (tmp_path / "out.parquet").mkdir()
    res = _normalize_input(src, tmp_path / "out.parquet")
    assert res.exit_code == 2
    assert "is a directory; give a file name" in res.output


def test_allow_unpinned_flag_reaches_fetch_and_normalize(tmp_path):
    folder = tmp_path / "mirror" / "harmbench"
    folder.mkdir(parents=True)
    rows = "".join(f"do harm {i},standard,chem,b{i}\n" for i in range(200))
    (folder / "harmbench_behaviors_text_all.csv").write_text(
        "Behavior,FunctionalCategory,SemanticCategory,BehaviorID\n" + rows
    )
    fetch = ["fetch", "harmbench", "--raw-dir", str(tmp_path / "raw")]
    fetch += ["--mirror", str(tmp_path / "mirror")]
    res = runner.invoke(app, fetch)
    assert res.exit_code == 2 and "--allow-unpinned harmbench" in res.output
    res = runner.invoke(app, [*fetch, "--allow-unpinned", "harmbench"])
    assert res.exit_code == 0, res.output
    norm = ["normalize", "harmbench", "--raw-dir", str(tmp_path / "raw")]
    norm += ["--out", str(tmp_path / "hb.parquet")]
    res = runner.invoke(app, norm)
    assert res.exit_code == 2 and "no pinned sha256" in res.output
    res = runner.invoke(app, [*norm, "--allow-unpinned", "harmbench"])
    assert res.exit_code == 0, res.output
    from harmtrace.data.provenance import read_records

    assert len(read_records(tmp_path / "hb.parquet", "harmbench")) == 200


def test_a_csv_written_by_pandas_with_its_index_is_normalized(tmp_path):
    src, out = tmp_path / "cases.csv", tmp_path / "x.parquet"
    pd.DataFrame({"prompt": ["hi", "bye"], "response": ["a", "b"]}).to_csv(src)
    res = _normalize_input(src, out)
    assert res.exit_code == 0, res.output
    records = pd.read_parquet(out)
    assert records["user_index"].tolist() == ["0", "1"]
    assert records["prompt"].tolist() == ["hi", "bye"]
