"""Throughput of the embedded grader on CPU (a harness, not a test).

Trains the grader once on the OpenAI moderation samples, then times

* ``score``: harm scoring of N texts (featurise, 4 category + 3 severe probabilities and
  the harm head, severity and confidence), repeated ``--repeats`` times;
* ``grade``: full judgments for N/2 prompt-response pairs (both sides scored, plus
  relevance with its WordLlama similarity and the refusal detector).

An extractor with a stateless part (``tfidf+minilm``) is timed as the DAG runs it: the
texts are embedded once first (``embed_*``, the cold cost) and scoring reads the cache.

The refusal detector is the workflow's (garak's strings and PyRIT's labels, read from
``--refusal-lexicon`` / ``--refusal-labels``, the DAG's records) when those files exist,
else the tests' toy detector; the result says which (its cost does not depend on it).
Training records: the mirror's moderation set, or ``--train-records`` (the DAG's).

Texts come from the dataset mirror: every prompt and response in it, shuffled with a
fixed seed, the first N taken (``--source mixed``), or one dataset's texts cycled to N.
By default the process is pinned to 2 CPU cores, the size of a CI runner.

    PYTHONPATH=src python benchmarks/bench_embedded_grader.py --output results/bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from harmtrace.graders.embedded import (
    DEFAULT_EXTRACTOR,
    EmbeddedGrader,
    grade_records,
    training_frame,
)
from harmtrace.graders.features import (
    EmbeddingCache,
    embedding_parts,
    encoder_id,
    make_extractor,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.devdata import (
    DAG_LABELS,
    DAG_LEXICON,
    bench_refusal_detector,
    mirror_records,
    mirror_root,
)

SOURCES = {
    "openai-moderation": ("openai-moderation",),
    "hh-rlhf": ("hh-rlhf-harmless",),
    "mixed": (
        "openai-moderation",
        "hh-rlhf-harmless",
        "air-bench-2024",
        "simplesafetytests",
        "harmbench",
    ),
}


def mirror_texts(source: str, root: Path) -> list[str]:
    """Every prompt and non-null response of the source's datasets, via the data layer."""
    if source not in SOURCES:
        raise SystemExit(f"unknown --source {source!r}")
    texts: list[str] = []
    for dataset in SOURCES[source]:
        records = mirror_records(dataset, root)
        texts += records["prompt"].tolist() + records["response"].dropna().tolist()
    return texts


def take(texts: list[str], n: int, seed: int) -> list[str]:
    order = np.random.default_rng(seed).permutation(len(texts))
    reps = -(-n // len(texts))
    return [texts[i] for i in np.tile(order, reps)[:n]]


def pin_cores(cores: int) -> list[int]:
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if cores and available and len(available) > cores:
        os.sched_setaffinity(0, set(available[:cores]))
        return available[:cores]
    return available


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extractor", default=DEFAULT_EXTRACTOR)
    ap.add_argument("--n-texts", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--source", default="mixed", choices=sorted(SOURCES))
    ap.add_argument("--mirror", type=Path, default=None, help="dataset mirror folder")
    ap.add_argument("--cores", type=int, default=2, help="pin to this many cores (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", type=Path, default=None, help="write the JSON here")
    ap.add_argument("--train-records", type=Path, nargs="*", default=None)
    ap.add_argument("--refusal-lexicon", type=Path, default=DAG_LEXICON)
    ap.add_argument("--refusal-labels", type=Path, default=DAG_LABELS)
    args = ap.parse_args(argv)

    cores = pin_cores(args.cores)
    root = args.mirror or mirror_root()
    if args.train_records:
        from harmtrace.data.provenance import read_records

        train = training_frame([read_records(p) for p in args.train_records])
    else:
        train = mirror_records("openai-moderation", root)
    detector, detector_source = bench_refusal_detector(
        args.refusal_lexicon, args.refusal_labels, args.seed
    )

    # stateless parts (minilm) read an embedding cache, as DAG grading does after
    # embed_dataset; the embedding itself is timed apart ("embed_*")
    caches = {
        p: EmbeddingCache(p, encoder=encoder_id(make_extractor(p)))
        for p in embedding_parts(args.extractor)
    }
    t0 = time.perf_counter()
    model = EmbeddedGrader(extractor=args.extractor, seed=args.seed, embedding_caches=caches)
    model.fit(train, refusal=detector)
    train_seconds = time.perf_counter() - t0

    texts = take(mirror_texts(args.source, root), args.n_texts, args.seed)
    half = len(texts) // 2
    pairs = pd.DataFrame(
        {
            "record_id": [str(i) for i in range(half)],
            "dataset": "bench",
            "prompt": texts[:half],
            "context": "",
            "response": pd.array(texts[half : 2 * half], dtype="string"),
        }
    )
    embed_seconds = 0.0
    n_embedded = 0
    if caches:
        model.score(texts[:8])  # loads the encoder
        t0 = time.perf_counter()
        todo = list(dict.fromkeys(texts + model.texts_read(pairs)))
        for part, cache in caches.items():
            before = len(cache.vectors)
            cache.lookup(todo, make_extractor(part).transform)
            n_embedded += len(cache.vectors) - before
        embed_seconds = time.perf_counter() - t0
    model.score(texts[:200])  # warm-up (lazy model loading, allocator)
    score_times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        model.score(texts)
        score_times.append(time.perf_counter() - t0)

    grade_times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        grade_records(model, pairs)
        grade_times.append(time.perf_counter() - t0)

    score_median = statistics.median(score_times)
    grade_median = statistics.median(grade_times)
    result = {
        "benchmark": "embedded-grader-throughput",
        "extractor": args.extractor,
        "grader_version": model.version,
        "source": args.source,
        "train_records": len(train),
        "refusal_detector": detector_source,
        "n_texts": len(texts),
        "mean_chars": float(np.mean([len(t) for t in texts])),
        "repeats": args.repeats,
        "train_seconds": train_seconds,
        "embedding_parts": sorted(caches),
        "embedded_texts": n_embedded,
        "embed_seconds": embed_seconds,
        "embed_texts_per_s": n_embedded / embed_seconds if embed_seconds else None,
        "score_seconds": score_times,
        "score_texts_per_s_median": len(texts) / score_median,
        "score_texts_per_s_min": len(texts) / max(score_times),
        "grade_pairs": half,
        "grade_seconds": grade_times,
        "grade_records_per_s_median": half / grade_median,
        "grade_texts_per_s_median": 2 * half / grade_median,
        "cores": cores,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "processor": platform.processor(),
        "target_texts_per_s": 1000,
    }
    text = json.dumps(result, indent=2)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
