"""The grader benchmark harnesses still run (tiny sizes; what they measure is not checked
here: timings belong to `make bench`, never to tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.devdata import mirror_root

ROOT = Path(__file__).resolve().parents[2]
needs_mirror = pytest.mark.skipif(
    not (mirror_root() / "openai-moderation").is_dir(), reason="dataset mirror not available"
)


def run(script: str, *args: str, tmp_path: Path) -> dict:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args, "--output", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # no results/records here: the toy refusal detector is used
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


@needs_mirror
def test_grade_shards_harness_grades_responses(tmp_path):
    # the shard mechanics do not depend on the features: the fast extractor
    report = run("bench_grade_shards.py", "--records", "200", "--shard-size", "100",
                 "--extractor", "tfidf", tmp_path=tmp_path)  # fmt: skip
    assert report["shards"] == 2 and report["refusal_detector"].startswith("toy")
    assert report["one_shard"]["peak_rss_mb"] > 0


@needs_mirror
def test_embedded_grader_harness_scores_and_grades(tmp_path):
    report = run("bench_embedded_grader.py", "--n-texts", "200", "--repeats", "1",
                 tmp_path=tmp_path)  # fmt: skip
    assert report["n_texts"] == 200 and report["grade_pairs"] == 100
    # the default's sentence encoder embeds first; scoring then reads the cache
    assert report["embedding_parts"] == ["minilm"] and report["embedded_texts"] >= 200
    assert report["embed_texts_per_s"] > 0
    assert report["refusal_detector"].startswith("toy")
