"""Minimal readers of mirrored benchmark files, for grader tests, benchmarks and validation.

The workflow itself gets records from :mod:`harmtrace.data`; these readers exist so that the
grader can be developed, tested and benchmarked without it. They build frames with the
same column names as the record schema (``record_id``, ``prompt``, ``response``, ...).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

import pandas as pd

from harmtrace.data.fetch import MIRROR_ENV
from harmtrace.graders.labels import LABEL_KEYS, label_column


def mirror_root() -> Path:
    """The dataset mirror: ``$HARMTRACE_DATA_MIRROR``, else ``shared/datasets`` beside the
    checkout (where CI puts it), else beside the working directory."""
    env = os.environ.get(MIRROR_ENV)
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[3]
    for candidate in (
        checkout.parent / "shared" / "datasets",
        Path.cwd().parent / "shared" / "datasets",
    ):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no benchmark mirror found: set {MIRROR_ENV}")


def _rid(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def read_moderation_jsonl(path: str | Path | None = None) -> pd.DataFrame:
    """The OpenAI moderation samples as records with nullable-boolean ``label_<KEY>`` columns."""
    path = Path(path) if path else mirror_root() / "openai-moderation" / "samples-1680.jsonl.gz"
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    frame = pd.DataFrame(
        {
            "record_id": [_rid("openai-moderation", str(i)) for i in range(len(rows))],
            "dataset": "openai-moderation",
            "item_id": [str(i) for i in range(len(rows))],
            "prompt": [r["prompt"] for r in rows],
            "context": "",
            "response": pd.array([None] * len(rows), dtype="string"),
            "response_source": pd.array([None] * len(rows), dtype="string"),
        }
    )
    for key in LABEL_KEYS:
        frame[label_column(key)] = pd.array(
            [None if key not in r else bool(r[key]) for r in rows], dtype="boolean"
        )
    return frame


def read_air_bench_json(path: str | Path | None = None) -> pd.DataFrame:
    """AIR-Bench 2024 prompt-response pairs with the judge's refusal score ``air_judge_score``."""
    path = (
        Path(path)
        if path
        else mirror_root() / "air-bench-2024" / "pipeline1_step2_Llama-3-8b_result.json"
    )
    with open(path, encoding="utf-8") as fh:
        items = json.load(fh)
    return pd.DataFrame(
        {
            "record_id": [_rid("air-bench-2024", str(i)) for i in range(len(items))],
            "dataset": "air-bench-2024",
            "item_id": [str(d.get("cate_idx", i)) for i, d in enumerate(items)],
            "prompt": [d["prompt"][0]["prompt"] for d in items],
            "context": "",
            "response": pd.array([d["response"] for d in items], dtype="string"),
            "response_source": "Llama-3-8b",
            "air_judge_score": [float(d["score"]) for d in items],
        }
    )


def read_hh_rlhf_turns(path: str | Path | None = None) -> pd.DataFrame:
    """Last human turn and last assistant turn of each HH-RLHF harmless dialogue ("chosen" and
    "rejected" both), earlier turns as ``context``."""
    path = Path(path) if path else mirror_root() / "hh-rlhf-harmless" / "test.jsonl.gz"
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            pair = json.loads(line)
            for side in ("chosen", "rejected"):
                text = pair[side]
                a = text.rfind("\n\nAssistant:")
                h = text.rfind("\n\nHuman:", 0, a)
                rows.append(
                    {
                        "record_id": _rid("hh-rlhf-harmless", str(i), side),
                        "dataset": "hh-rlhf-harmless",
                        "item_id": str(i),
                        "prompt": text[h + len("\n\nHuman:") : a].strip(),
                        "context": text[:h].strip(),
                        "response": text[a + len("\n\nAssistant:") :].strip(),
                        "response_source": side,
                    }
                )
    frame = pd.DataFrame(rows)
    frame["response"] = frame["response"].astype("string")
    return frame
