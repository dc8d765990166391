"""Run time of the analysis notebooks' statistics (a harness, not a test).

Builds a synthetic judged frame of ``--records`` records per sample (random severities
with a shared record effect, relevance and refusal flags, paired sides) and times, per
stage, the calls notebooks 01-04 make with ``--n-boot`` bootstrap iterations. The
whole DAG has to stay within 5 minutes on 2 cores, so these should take seconds.

    PYTHONPATH=src python benchmarks/bench_analysis.py --records 2312 --n-boot 2000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from harmtrace.analysis.asymmetry import analyse_asymmetry
from harmtrace.analysis.relevance import analyse_relevance
from harmtrace.analysis.transition_report import analyse
from harmtrace.analysis.validity import analyse_validity
from harmtrace.taxonomy import CATEGORIES


def synthetic(n_records: int, seed: int) -> pd.DataFrame:
    """Two sides of ``n_records`` pairs, plus a refusal-judged dataset of the same size."""
    rng = np.random.default_rng(seed)
    frames = []
    for dataset, sides in (("pairs", ("chosen", "rejected")), ("judged", (None,))):
        prompt = {c: rng.choice(4, n_records, p=[0.6, 0.2, 0.15, 0.05]) for c in CATEGORIES}
        for side in sides:
            data: dict[str, object] = {
                "record_id": [f"{dataset[0]}{side or ''}{i:06d}" for i in range(n_records)],
                "dataset": dataset,
            }
            shift = rng.normal(0, 1, n_records)
            for c in CATEGORIES:
                resp = np.clip(prompt[c] + np.round(shift + rng.normal(-0.5, 0.8, n_records)), 0, 3)
                data[f"prompt_severity_{c}"] = pd.array(prompt[c], dtype="Int8")
                data[f"response_severity_{c}"] = pd.array(resp.astype(int), dtype="Int8")
                data[f"prompt_prob_{c}"] = prompt[c] / 3
            data["relevance"] = pd.array(rng.integers(1, 4, n_records), dtype="Int8")
            data["refusal"] = pd.array(rng.random(n_records) < 0.2, dtype="boolean")
            data["status"] = "ok"
            frame = pd.DataFrame(data)
            if side is None:
                frame["air_judge_score"] = rng.choice([0.0, 0.5, 1.0], n_records)
                frame["sample"] = dataset
            else:
                frame["hh_side"] = side
                frame["hh_pair_id"] = np.arange(n_records)
                frame["hh_context_differs"] = False
                frame["sample"] = f"{dataset}:{side}"
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2312)
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cores", type=int, default=2, help="pin the process to N cores")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    if args.cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(min(args.cores, os.cpu_count() or 1))))
    df = synthetic(args.records, args.seed)
    timings = {}
    for name, call in (
        ("01 transitions", lambda: analyse(df, seed=args.seed, n_resamples=args.n_boot)),
        ("02 asymmetry", lambda: analyse_asymmetry(df, n_resamples=args.n_boot, seed=args.seed)),
        ("03 relevance", lambda: analyse_relevance(df, n_resamples=args.n_boot, seed=args.seed)),
        ("04 validity", lambda: analyse_validity(df, n_resamples=args.n_boot, seed=args.seed)),
    ):
        start = time.perf_counter()
        call()
        timings[name] = round(time.perf_counter() - start, 2)
        print(f"{name:16s} {timings[name]:7.2f} s")
    report = {
        "records_per_sample": args.records,
        "n_boot": args.n_boot,
        "cores": args.cores,
        "python": platform.python_version(),
        "seconds": timings,
    }
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
