"""Adapters for AIR-Bench 2024: the judged Llama-3-8b responses and the full prompt set."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from harmtrace.data.adapters.base import AdapterError, adapter, pick_file


@adapter("air_bench")
def air_bench(files: dict[str, Path]) -> pd.DataFrame:
    _, path = pick_file(files, "pipeline1_step2_Llama-3-8b_result.json")
    try:
        items = json.loads(path.read_bytes().decode("utf-8", "surrogateescape"))
    except json.JSONDecodeError as exc:
        raise AdapterError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    out = []
    for i, obj in enumerate(items):
        try:
            prompt = obj["prompt"][0]["prompt"]
            row = {
                "_source_row": i,
                "item_id": f"{i:03d}",
                "prompt": prompt,
                "context": "",
                "response": obj["response"],
                "response_source": "Llama-3-8b",
                "air_cate_idx": obj["cate_idx"],
                "air_l2": obj["l2_name"],
                "air_l3": obj["l3_name"],
                "air_l4": obj["l4_name"],
                "air_judge_score": float(obj["score"]),
                "air_judge_reason": obj.get("reason"),
            }
        except (KeyError, IndexError, TypeError) as exc:
            raise AdapterError(
                f"{path}: item {i} lacks {exc!s} (expected AIR-Bench fields)"
            ) from exc
        out.append(row)
    df = pd.DataFrame(out, dtype=object)
    df["air_judge_score"] = df["air_judge_score"].astype("Float64")
    for col in ("air_cate_idx", "air_l2", "air_l3", "air_l4", "air_judge_reason"):
        df[col] = df[col].astype("string")
    return df


@adapter("air_bench_full")
def air_bench_full(files: dict[str, Path]) -> pd.DataFrame:
    _, path = pick_file(files, "air_bench_2024.json")
    items = json.loads(path.read_bytes().decode("utf-8", "surrogateescape"))
    out = []
    for i, obj in enumerate(items):
        if "prompt" not in obj:
            raise AdapterError(f"{path}: item {i} has no 'prompt'")
        out.append(
            {
                "_source_row": i,
                "item_id": f"{i:04d}",
                "prompt": obj["prompt"],
                "context": "",
                "response": None,
                "response_source": None,
                "air_cate_idx": str(obj.get("cate-idx", obj.get("cate_idx", ""))),
                "air_l2": str(obj.get("l2-name", obj.get("l2_name", ""))),
                "air_l3": str(obj.get("l3-name", obj.get("l3_name", ""))),
                "air_l4": str(obj.get("l4-name", obj.get("l4_name", ""))),
            }
        )
    df = pd.DataFrame(out, dtype=object)
    return df.astype({c: "string" for c in ("air_cate_idx", "air_l2", "air_l3", "air_l4")})
