"""Peak memory of one grading job, whole dataset against one shard (embedded grader).

    PYTHONPATH=src:. python benchmarks/bench_grade_shards.py --records 100000 \
        --shard-size 20000 --output bench.json

Trains the embedded grader once on the mirrored moderation texts (2 folds, to be quick;
with the workflow's refusal detector when its records exist, else the tests' toy one),
builds a dataset of N prompt-response records from every mirrored prompt and response
(new record ids, texts reused), then runs ``harmtrace grade --grader embedded`` in a
child process on the whole dataset and on one shard of ``shard-size`` records, reading
the child's peak resident memory from ``getrusage``. The shard job's memory should
follow the shard size, not the dataset size.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child_peak_mb(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of ``harmtrace ARGS`` run in a fresh process."""
    code = (
        "import resource, sys\n"
        "from harmtrace.cli import app\n"
        "try:\n    app()\nexcept SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout + proc.stderr)
    peak = next(ln for ln in proc.stdout.splitlines() if ln.startswith("PEAK"))
    return wall, int(peak.split()[1]) / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--shard-size", type=int, default=20_000)
    p.add_argument("--extractor", default=None, help="grader extractor (default: the default)")
    p.add_argument("--output", type=Path)
    args = p.parse_args()

    import pandas as pd

    from harmtrace.graders.embedded import train_grader
    from tests.devdata import bench_refusal_detector, mirror_records, write_user_records

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        moderation = mirror_records("openai-moderation")
        detector, detector_source = bench_refusal_detector()
        extra = {"extractor": args.extractor} if args.extractor else {}
        train_grader(moderation, tmp / "model", n_splits=2, refusal=detector, **extra)
        texts = []
        for name in ("air-bench-2024", "hh-rlhf-harmless", "harmbench", "simplesafetytests"):
            recs = mirror_records(name)
            texts += list(zip(recs["prompt"], recs["response"].fillna(""), strict=True))
        n = args.records
        rows = [texts[i % len(texts)] for i in range(n)]
        frame = pd.DataFrame(
            {
                "record_id": pd.array([f"{i:016x}" for i in range(n)], dtype="string"),
                "dataset": pd.array(["bench"] * n, dtype="string"),
                "item_id": pd.array([str(i) for i in range(n)], dtype="string"),
                "prompt": pd.array([r[0] for r in rows], dtype="string"),
                "context": pd.array([""] * n, dtype="string"),
                "response": pd.array([r[1] for r in rows], dtype="string"),
                "response_source": pd.array(["m"] * n, dtype="string"),
            }
        )
        path = tmp / "records.parquet"
        write_user_records(frame, path, "bench")
        del frame, rows
        shards = math.ceil(n / args.shard_size)
        base = ["grade", "bench", "--grader", "embedded", "--records", str(path),
                "--model-dir", str(tmp / "model")]  # fmt: skip
        whole = child_peak_mb([*base, "--out", str(tmp / "whole.parquet")])
        one = child_peak_mb([*base, "--shard", f"1/{shards}", "--out", str(tmp / "s1.parquet")])
    report = {
        "records": n,
        "refusal_detector": detector_source,
        "shard_size": args.shard_size,
        "shards": shards,
        "whole": {"wall_s": round(whole[0], 1), "peak_rss_mb": round(whole[1])},
        "one_shard": {"wall_s": round(one[0], 1), "peak_rss_mb": round(one[1])},
        "maxrss_of_this_process_mb": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ),
    }
    print(json.dumps(report, indent=2))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
