"""Throughput, overhead and scaling of the LLM client against the fake server.

    PYTHONPATH=src:. python benchmarks/bench_llm_client.py --output bench.json

1. **Throughput** at a fixed server latency (default 100 ms) for concurrency 1, 8 and 64,
   as a ratio to the ideal ``concurrency / latency`` requests per second (target: at least
   0.9 at 64). Each run sends ``rounds * concurrency`` distinct requests. Concurrency 64 is
   measured again at 1 s latency, where 64 requests/s cannot be CPU-bound, to separate
   the client's scheduling from the machine's CPU.
2. **Overhead**: the client process's CPU time per request (HTTP, JSON, cache commit,
   pydantic validation, bookkeeping) at zero latency; target at most 1 ms.
3. **Scaling**: the ``openai`` grader on N prompt-only records (one request each, zero
   latency, concurrency 64, a fresh SQLite cache), each size in its own process, which
   reports wall time and its peak resident memory; time should grow linearly with N and
   memory stay under 2 GB.

The fake server runs in its own process, so the client's CPU time is its own; on a
shared machine the server competes for the same cores, which caps throughput at high
concurrency. Timing targets live here, never in unit tests.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]


class Verdict(BaseModel):
    rationale: str
    hate: Literal[0, 1, 2, 3]
    violence: Literal[0, 1, 2, 3]


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakeserver", "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    return proc, proc.stdout.readline().strip()


def run_batch(url: str, concurrency: int, n: int, cache: Path, tag: str) -> dict:
    from harmtrace.llm import ChatRequest, EndpointSettings, LLMClient

    settings = EndpointSettings(
        base_url=url,
        model="bench",
        api_key_env=None,
        concurrency=concurrency,
        cache=str(cache),
        progress="off",
    )
    requests = [
        ChatRequest([{"role": "user", "content": f"{tag} text {i} [hate={i % 4}]"}], tag=tag)
        for i in range(n)
    ]
    with LLMClient(settings) as client:
        client.complete_json(requests[:1], Verdict)  # connection set-up, imports
        wall0, cpu0 = time.perf_counter(), time.process_time()
        results = client.complete_json(requests[1:], Verdict)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    assert all(r.ok for r in results)
    return {"requests": n - 1, "wall_s": wall, "cpu_s": cpu}


def server_cpu(proc: subprocess.Popen) -> float:
    """CPU seconds the fake server process has used so far."""
    import psutil

    t = psutil.Process(proc.pid).cpu_times()
    return t.user + t.system


def throughput(latency: float, rounds: int, tmp: Path) -> dict:
    proc, url = start_server(latency)
    out = {}
    try:
        for c in (1, 8, 64):
            before = server_cpu(proc)
            r = run_batch(url, c, rounds * c + 1, tmp / f"t{c}.sqlite", f"c{c}")
            r["server_cpu_ms_per_request"] = round(
                1000 * (server_cpu(proc) - before) / r["requests"], 3
            )
            ideal = c / latency
            rate = r["requests"] / r["wall_s"]
            out[str(c)] = {
                **r,
                "requests_per_s": round(rate, 1),
                "ideal_per_s": ideal,
                "ratio_to_ideal": round(rate / ideal, 3),
                "client_cpu_ms_per_request": round(1000 * r["cpu_s"] / r["requests"], 3),
            }
            print(
                f"concurrency {c:3d}: {rate:7.1f} req/s = {rate / ideal:.2f} of ideal "
                f"(CPU per request: client {out[str(c)]['client_cpu_ms_per_request']:.2f} ms, "
                f"server {r['server_cpu_ms_per_request']:.2f} ms)"
            )
    finally:
        proc.terminate()
    return out


def long_latency(latency: float, rounds: int, tmp: Path) -> dict:
    """Concurrency 64 where the CPU cannot be the limit (64 requests per ``latency``)."""
    proc, url = start_server(latency)
    try:
        r = run_batch(url, 64, rounds * 64 + 1, tmp / "long.sqlite", "long")
    finally:
        proc.terminate()
    rate, ideal = r["requests"] / r["wall_s"], 64 / latency
    print(f"concurrency  64 at {latency:g} s latency: {rate / ideal:.2f} of ideal")
    return {**r, "latency_s": latency, "ratio_to_ideal": round(rate / ideal, 3)}


def overhead(n: int, tmp: Path) -> dict:
    proc, url = start_server(0.0)
    try:
        r = run_batch(url, 16, n + 1, tmp / "overhead.sqlite", "overhead")
    finally:
        proc.terminate()
    ms = 1000 * r["cpu_s"] / r["requests"]
    print(f"client CPU per request: {ms:.3f} ms ({r['requests']} requests)")
    return {**r, "client_cpu_ms_per_request": round(ms, 3)}


def scale_child(n: int, url: str, workdir: str) -> None:
    """One scaling run in this process: grade N records, print wall time and peak RSS."""
    import pandas as pd

    from harmtrace.graders import make_grader

    recs = pd.DataFrame(
        {
            "record_id": pd.array([f"{i:016x}" for i in range(n)], dtype="string"),
            "prompt": pd.array(
                [f"record {i} " + "some words of a prompt " * 8 for i in range(n)],
                dtype="string",
            ),
            "response": pd.array([None] * n, dtype="string"),
            "context": pd.array([""] * n, dtype="string"),
        }
    )
    grader = make_grader(
        "openai",
        {
            "endpoint": {
                "base_url": url,
                "model": "bench",
                "api_key_env": None,
                "concurrency": 64,
                "cache": str(Path(workdir) / f"scale{n}.sqlite"),
                "progress": "off",
            }
        },
    )
    t0 = time.perf_counter()
    out = grader.grade(recs)
    wall = time.perf_counter() - t0
    assert (out["status"] == "ok").all() and len(out) == n
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"records": n, "wall_s": wall, "peak_rss_mb": peak_mb}))


def scaling(sizes: list[int], tmp: Path) -> list[dict]:
    proc, url = start_server(0.0)
    rows = []
    try:
        for n in sizes:
            child = subprocess.run(
                [sys.executable, __file__, "--scale-child", str(n), "--url", url,
                 "--workdir", str(tmp)],
                capture_output=True, text=True, cwd=ROOT, check=True,
            )  # fmt: skip
            row = json.loads(child.stdout.strip().splitlines()[-1])
            row["records_per_s"] = round(n / row["wall_s"], 1)
            rows.append(row)
            print(f"{n:>7,} records: {row['wall_s']:6.1f} s, peak {row['peak_rss_mb']:.0f} MB")
    finally:
        proc.terminate()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", type=Path)
    p.add_argument("--latency", type=float, default=0.1)
    p.add_argument("--rounds", type=int, default=30, help="requests per slot per run")
    p.add_argument("--overhead-requests", type=int, default=3000)
    p.add_argument("--sizes", default="10000,30000,100000")
    p.add_argument("--scale-child", type=int, help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.scale_child:
        scale_child(args.scale_child, args.url, args.workdir)
        return
    with tempfile.TemporaryDirectory() as tmp:
        report = {
            "latency_s": args.latency,
            "throughput": throughput(args.latency, args.rounds, Path(tmp)),
            "throughput_64_long_latency": long_latency(1.0, 5, Path(tmp)),
            "overhead": overhead(args.overhead_requests, Path(tmp)),
            "scaling": scaling([int(s) for s in args.sizes.split(",") if s], Path(tmp)),
        }
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
