"""Moderation throughput: every HH-RLHF response through the traceable flow, then the
viewer (a harness, not a test).

Targets (issue 11): moderating all HH-RLHF responses with the embedded grader in under a
minute on 2 cores, and building the trace viewer for them in under 30 s.

Timed, for one policy (default ``redact_medium_block_high``, which exercises analysis,
redaction, blocking and re-scoring):

* ``moderate``: :func:`harmtrace.moderate.flow.moderate_records` (split, score every
  sentence, decide, write outputs, re-score changed outputs, explain flags, build
  traces) plus :func:`~harmtrace.moderate.trace.write_traces` (schema check and JSONL);
* ``viewer``: reading and validating the JSONL and writing the static site.

Wall-clock seconds are the target; CPU seconds (process and pool workers) are reported
too, because on a shared machine the wall clock mostly measures the other jobs.

Not timed: loading or training the grader, and grading the records (the workflow's
``grade`` rule has already done that when ``moderate`` runs). The grader is read from
``--model-dir`` if given (e.g. ``results/models/embedded``), else trained on the mirror.
By default the process is pinned to 2 CPU cores, the size of a CI runner.

    PYTHONPATH=src:. python benchmarks/bench_moderation.py --output results/bench_moderation.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harmtrace.graders.embedded import EmbeddedGrader, EmbeddedScorer, grade_records
from harmtrace.moderate.clock import fixed_clock
from harmtrace.moderate.flow import moderate_records
from harmtrace.moderate.policies import get_policy
from harmtrace.moderate.trace import write_traces
from harmtrace.moderate.viewer import build_viewer, load_traces
from tests.devdata import mirror_records, mirror_root, toy_refusal_detector

TARGET_MODERATE_S = 60.0
TARGET_VIEWER_S = 30.0


def pin_cores(cores: int) -> list[int]:
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if cores and available and len(available) > cores:
        os.sched_setaffinity(0, set(available[:cores]))
        return available[:cores]
    return available


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the sentence-splitting pool):
    what the work costs regardless of how busy the machine is."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default="redact_medium_block_high")
    ap.add_argument("--dataset", default="hh-rlhf-harmless")
    ap.add_argument("--model-dir", type=Path, default=None, help="trained embedded grader")
    ap.add_argument("--mirror", type=Path, default=None, help="dataset mirror folder")
    ap.add_argument("--cores", type=int, default=2, help="pin to this many cores (0: all)")
    ap.add_argument("--workers", type=int, default=2, help="sentence-splitting processes")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--output", type=Path, default=None, help="write the JSON here")
    args = ap.parse_args(argv)

    cores = pin_cores(args.cores)
    root = args.mirror or mirror_root()
    if args.model_dir is not None:
        model = EmbeddedGrader.load(args.model_dir)
    else:
        # the tests' toy refusal detector: its cost, not its accuracy, matters here
        model = EmbeddedGrader().fit(
            mirror_records("openai-moderation", root), refusal=toy_refusal_detector()
        )
    scorer = EmbeddedScorer(model)
    records = mirror_records(args.dataset, root)
    judgments = grade_records(model, records)
    policy = get_policy(args.policy)

    moderate_s, viewer_s, n_traces, n_pages = [], [], 0, 0
    moderate_cpu: list[float] = []
    viewer_cpu: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            out = Path(tmp) / f"run{k}" / f"{args.dataset}.jsonl"
            t0, c0 = time.perf_counter(), cpu_seconds()
            traces = moderate_records(
                records, judgments, scorer, policy, clock=fixed_clock(0), workers=args.workers
            )
            n_traces = write_traces(traces, out)
            moderate_s.append(time.perf_counter() - t0)
            moderate_cpu.append(cpu_seconds() - c0)
            t0, c0 = time.perf_counter(), cpu_seconds()
            site = build_viewer(load_traces([out]), out.parent / "site")
            viewer_s.append(time.perf_counter() - t0)
            viewer_cpu.append(cpu_seconds() - c0)
            n_pages = site.pages
            size = sum(p.stat().st_size for p in (out.parent / "site").rglob("*") if p.is_file())
    mod, view = statistics.median(moderate_s), statistics.median(viewer_s)
    result = {
        "benchmark": "moderation-flow-and-viewer",
        "dataset": args.dataset,
        "policy": policy.policy_version,
        "grader_version": model.version,
        "records": len(records),
        "traces": n_traces,
        "viewer_pages": n_pages,
        "viewer_bytes": size,
        "moderate_seconds": moderate_s,
        "viewer_seconds": viewer_s,
        "moderate_cpu_seconds": moderate_cpu,
        "viewer_cpu_seconds": viewer_cpu,
        "moderate_seconds_median": mod,
        "viewer_seconds_median": view,
        "moderate_target_seconds": TARGET_MODERATE_S,
        "viewer_target_seconds": TARGET_VIEWER_S,
        "moderate_within_target": mod < TARGET_MODERATE_S,
        "viewer_within_target": view < TARGET_VIEWER_S,
        "workers": args.workers,
        "cores": cores,
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    text = json.dumps(result, indent=2)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
