"""Throughput and cache figures of the ``openai`` tree generator against the fake server.

    PYTHONPATH=src:. python benchmarks/bench_trees.py --output bench_trees.json

Generates harm-benefit trees for N prompts (default 10,000: the mirror's prompts,
cycled and numbered so every request is distinct) at concurrency 64, through the
shared LLM client, in three runs over one SQLite cache file:

1. **cold**: every prompt is a new request (a fake-server latency of 50 ms by default,
   and optional injected faults: 429s, 500s, malformed and truncated JSON);
2. **warm**: the same prompts again; every answer must come from the cache (zero HTTP
   requests) and the trees must be identical;
3. **resume**: a fresh cache is filled with the first half of the prompts, then all N are
   asked for; only the missing half may be sent.

Reported per run: wall time, prompts per second, HTTP requests, retries, re-asks,
repaired replies, cache hits, failed trees, and the client process's CPU seconds per
prompt (request building, JSON parsing, schema and taxonomy validation). The fake server
runs in its own process, so its CPU time is not counted, though on a shared machine it
competes for the same cores. Timing targets belong here, not in unit tests.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harmtrace.data.air_taxonomy import DATASET, load_air_taxonomy  # noqa: E402
from harmtrace.data.fetch import fetch_dataset  # noqa: E402
from harmtrace.data.registry import get_dataset  # noqa: E402
from harmtrace.trees.llm_generator import OpenAITreeGenerator  # noqa: E402
from harmtrace.trees.registry import make_spec  # noqa: E402
from harmtrace.trees.tree_files import prompt_records, summarise  # noqa: E402
from tests.devdata import mirror_records, mirror_root  # noqa: E402

SOURCES = ("simplesafetytests", "harmbench", "air-bench-2024", "openai-moderation")


def start_server(latency: float, faults: dict[str, float]) -> tuple[subprocess.Popen, str]:
    args = [sys.executable, "-m", "tests.fakeserver", "--latency", str(latency)]
    for name, p in faults.items():
        args += [f"--{name.replace('_', '-')}", str(p)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def prompts(n: int) -> list[str]:
    base: list[str] = []
    for ds in SOURCES:
        base += mirror_records(ds)["prompt"].tolist()
    return [f"{base[i % len(base)]}\n(request {i})" for i in range(n)]


def run(url: str, taxonomy, texts: list[str], cache: Path, concurrency: int) -> dict:
    spec = make_spec(
        "openai",
        {
            "endpoint": {
                "base_url": url,
                "model": "bench",
                "api_key_env": None,
                "concurrency": concurrency,
                "cache": str(cache),
                "progress": "off",
                "timeout": 60.0,
                "backoff_initial": 0.05,
                "backoff_max": 1.0,
            }
        },
    )
    gen = OpenAITreeGenerator(spec, taxonomy=taxonomy)
    recs = prompt_records(texts, "bench")
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    out = gen.generate(recs)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    s = gen.stats
    summ = summarise(out)
    return {
        "prompts": len(texts),
        "seconds": round(wall, 3),
        "prompts_per_s": round(len(texts) / wall, 1),
        "client_cpu_ms_per_prompt": round(1000 * cpu / len(texts), 3),
        "http_requests": s.requests,
        "retries": s.retries,
        "reasks": s.reasks,
        "repaired_trees": summ.repaired,
        "cache_hits": s.cache_hits,
        "failed_trees": summ.failed,
        "trees_with_warnings": summ.with_warnings,
        "prompt_tokens": s.prompt_tokens,
        "completion_tokens": s.completion_tokens,
        "_trees": [r.model_dump_json() for r in out],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--latency", type=float, default=0.05, help="fake-server seconds per answer")
    ap.add_argument(
        "--faults",
        default="429=0.02,500=0.01,malformed=0.02,truncated=0.005",
        help="name=probability,... injected by the fake server ('' for none)",
    )
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args(argv)
    faults = {k: float(v) for k, v in (p.split("=") for p in args.faults.split(",") if p.strip())}

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw"
        fetch_dataset(get_dataset(DATASET), raw, mirror_root())
        taxonomy = load_air_taxonomy(raw)
        texts = prompts(args.n)
        proc, url = start_server(args.latency, faults)
        try:
            cache = Path(tmp) / "trees.sqlite"
            cold = run(url, taxonomy, texts, cache, args.concurrency)
            warm = run(url, taxonomy, texts, cache, args.concurrency)
            half = Path(tmp) / "resume.sqlite"
            run(url, taxonomy, texts[: args.n // 2], half, args.concurrency)
            resume = run(url, taxonomy, texts, half, args.concurrency)
        finally:
            proc.terminate()
            proc.wait(10)
    identical = cold.pop("_trees") == warm.pop("_trees")
    resume.pop("_trees")
    result = {
        "benchmark": "tree-generator-throughput",
        "n_prompts": args.n,
        "concurrency": args.concurrency,
        "server_latency_s": args.latency,
        "faults": faults,
        "ideal_prompts_per_s": round(args.concurrency / args.latency, 1) if args.latency else None,
        "cold": cold,
        "warm": warm,
        "warm_identical_to_cold": identical,
        "resume_after_half": resume,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    text = json.dumps(result, indent=2)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n", encoding="utf-8")
    print(text)
    ok = identical and warm["http_requests"] == 0 and resume["cache_hits"] >= args.n // 2
    return 0 if ok else 1


if __name__ == "__main__":
    pd.set_option("display.width", 120)
    sys.exit(main())
