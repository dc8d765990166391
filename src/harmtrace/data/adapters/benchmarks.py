"""Adapters for prompt benchmarks published as plain files (JSONL, CSV, text, parquet).

Columns beyond the core ones keep their published values under a short per-dataset
prefix (``sst_``, ``hb_``, ``xs_``, ``wg_``, ``sb_``) so no upstream label is lost.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harmtrace.data.adapters.base import (
    AdapterError,
    adapter,
    csv_table,
    jsonl_rows,
    pick_file,
    text_lines,
)
from harmtrace.taxonomy import MODERATION_LABEL_KEYS

OPENAI_LABEL_KEYS = MODERATION_LABEL_KEYS


@adapter("openai_moderation")
def openai_moderation(files: dict[str, Path]) -> pd.DataFrame:
    _, path = pick_file(files, "samples-1680.jsonl.gz")
    out = []
    for i, (n, obj) in enumerate(jsonl_rows(path)):
        if "prompt" not in obj:
            raise AdapterError(f"{path}:{n}: no 'prompt' key")
        row = {"_source_row": n, "item_id": f"{i:04d}", "prompt": obj["prompt"]}
        for key in OPENAI_LABEL_KEYS:
            value = obj.get(key)
            if value not in (None, 0, 1):
                raise AdapterError(f"{path}:{n}: label {key}={value!r} is not 0/1")
            row[f"label_{key}"] = None if value is None else bool(value)
        out.append(row)
    df = pd.DataFrame(out, dtype=object)
    for key in OPENAI_LABEL_KEYS:
        df[f"label_{key}"] = df[f"label_{key}"].astype("boolean")
    return df.assign(context="", response=None, response_source=None)


@adapter("simplesafetytests")
def simplesafetytests(files: dict[str, Path]) -> pd.DataFrame:
    _, path = pick_file(files, "SimpleSafetyTests - test cases.csv")
    df = csv_table(path, ("id", "harm_area", "counter", "category", "prompts_final"))
    return pd.DataFrame(
        {
            "_source_row": df["_source_row"],
            "item_id": df["id"],
            "prompt": df["prompts_final"],
            "context": "",
            "response": None,
            "response_source": None,
            "sst_harm_area": df["harm_area"].astype("string"),
            "sst_category": df["category"].astype("string"),
            "sst_counter": pd.to_numeric(df["counter"]).astype("Int64"),
        }
    )


@adapter("harmbench")
def harmbench(files: dict[str, Path]) -> pd.DataFrame:
    """Accept both the upstream behaviors CSV and the one-prompt-per-line redistribution."""
    name, path = pick_file(files, "harmbench_behaviors_text_all.csv", "harmbench_prompts.txt")
    if name.endswith(".csv"):
        df = csv_table(path, ("Behavior", "FunctionalCategory", "SemanticCategory", "BehaviorID"))
        df = df[df["FunctionalCategory"] == "standard"]
        context = df.get("ContextString", "")
        return pd.DataFrame(
            {
                "_source_row": df["_source_row"],
                "item_id": df["BehaviorID"],
                "prompt": df["Behavior"],
                "context": context,
                "response": None,
                "response_source": None,
                "hb_functional_category": df["FunctionalCategory"].astype("string"),
                "hb_semantic_category": df["SemanticCategory"].astype("string"),
            }
        )
    lines = text_lines(path)
    if lines and lines[-1] == "":
        lines = lines[:-1]  # a trailing newline ends the last line; it is not an empty prompt
    n = len(lines)
    return pd.DataFrame(
        {
            "_source_row": range(1, n + 1),
            # object, not str: surrogate-escaped bytes must survive until they are flagged
            "item_id": [f"line-{i:03d}" for i in range(1, n + 1)],
            "prompt": pd.Series(lines, dtype=object),
            "context": "",
            "response": None,
            "response_source": None,
            "hb_functional_category": pd.Series(["standard"] * n, dtype="string"),
            "hb_semantic_category": pd.Series([None] * n, dtype="string"),
        }
    )


@adapter("xstest")
def xstest(files: dict[str, Path]) -> pd.DataFrame:
    _, path = pick_file(files, "xstest_prompts.csv")
    df = csv_table(path, ("id", "prompt", "type", "label"))
    extra = {
        f"xs_{c}": df[c].astype("string") for c in ("type", "label", "focus", "note") if c in df
    }
    return pd.DataFrame(
        {
            "_source_row": df["_source_row"],
            "item_id": df["id"],
            "prompt": df["prompt"],
            "context": "",
            "response": None,
            "response_source": None,
            **extra,
        }
    )


@adapter("wildguardtest")
def wildguardtest(files: dict[str, Path]) -> pd.DataFrame:
    _, path = pick_file(files, "wildguard_test.parquet")
    df = pd.read_parquet(path)
    if "prompt" not in df:
        raise AdapterError(f"{path}: no 'prompt' column; found {list(df.columns)}")
    labels = {
        f"wg_{c}": df[c].astype("string")
        for c in (
            "adversarial",
            "prompt_harm_label",
            "response_harm_label",
            "response_refusal_label",
            "subcategory",
        )
        if c in df
    }
    response = df.get("response", None)
    return pd.DataFrame(
        {
            "_source_row": range(len(df)),
            "item_id": [f"{i:04d}" for i in range(len(df))],
            "prompt": df["prompt"],
            "context": "",
            "response": response,
            "response_source": None if response is None else "wildguardmix",
            **labels,
        }
    )


@adapter("sorry_bench")
def sorry_bench(files: dict[str, Path]) -> pd.DataFrame:
    _, path = pick_file(files, "question.jsonl")
    out = []
    for n, obj in jsonl_rows(path):
        turns = obj.get("turns") or [""]
        out.append(
            {
                "_source_row": n,
                "item_id": str(obj.get("question_id", n)),
                "prompt": turns[-1],
                "context": "\n\n".join(turns[:-1]),
                "response": None,
                "response_source": None,
                "sb_category": str(obj.get("category", "")),
                "sb_prompt_style": str(obj.get("prompt_style", "")),
            }
        )
    df = pd.DataFrame(out, dtype=object)
    return df.astype({"sb_category": "string", "sb_prompt_style": "string"})
