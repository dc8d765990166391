"""The respond benchmark harness still runs (tiny sizes; its timings are not checked here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.unit.test_target_weights import converted_smollm2

ROOT = Path(__file__).resolve().parents[2]


def test_respond_harness_reports_every_measure(tmp_path, tmp_path_factory):
    folder = converted_smollm2(tmp_path_factory)
    out = tmp_path / "bench.json"
    args = ["--model-dir", str(folder), "--prompts", "3", "--batch-1-prompts", "2",
            "--max-tokens", "3", "--batch-sizes", "1,2", "--ratio-batch", "2",
            "--repeats", "1", "--output", str(out)]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_respond.py"), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    overhead = report["overhead"]
    assert overhead["prompts"] == 3 and overhead["batch_size"] == 2
    assert overhead["raw_tokens"] == overhead["target_tokens"] > 0  # the same work
    assert [r["batch_size"] for r in report["throughput"]] == [1, 2]
    assert [r["prompts"] for r in report["throughput"]] == [2, 3]
    assert all(0 < r["completion_tokens"] <= 3 * r["prompts"] for r in report["throughput"])
    assert report["peak_rss_mb"] >= report["rss_after_load_mb"] > 0
