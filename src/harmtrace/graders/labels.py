"""Training targets from human labels, with three-valued logic.

Two kinds of records carry labels. OpenAI moderation texts have per-key binary labels
(``label_<KEY>``); prompt sets have their own category names, mapped to the four harm
categories by the documented table ``harmtrace/data/prompt_labels.yaml``
(:func:`mapped_targets`). Both give the same nullable-boolean targets per category.

The moderation file leaves a key out when the annotators did not judge that label, so a
missing value means *unknown*, never *no*. A category built from several keys is

* ``True``  when at least one of its keys is known ``True``;
* ``False`` when every one of its keys is known ``False``;
* unknown (``pd.NA``) otherwise, and such a record is left out of that category's training.

(This is Kleene's three-valued OR.)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
import yaml

from harmtrace.errors import HarmtraceError
from harmtrace.taxonomy import CATEGORIES, MODERATION_LABEL_KEYS

LABEL_KEYS: tuple[str, ...] = MODERATION_LABEL_KEYS
"""Label keys of the OpenAI moderation release; records carry them as ``label_<KEY>``."""

CATEGORY_KEYS: dict[str, tuple[str, ...]] = {
    "hate": ("H", "H2"),
    "sexual": ("S", "S3"),
    "violence": ("V", "V2"),
    "self_harm": ("SH",),
}
"""Which label keys make up each harm category."""

SEVERE_KEYS: dict[str, str] = {"hate": "H2", "sexual": "S3", "violence": "V2"}
"""The severe sub-label of a category (hate/threatening, sexual/minors, violence/graphic).
Self-harm has none."""


def label_column(key: str) -> str:
    return f"label_{key}"


def kleene_any(frame: pd.DataFrame, columns: Iterable[str]) -> pd.Series:
    """Three-valued OR across ``columns`` of ``frame`` (nullable boolean)."""
    cols = list(columns)
    if not cols:
        raise ValueError("need at least one column")
    parts = [frame[c].astype("boolean") if c in frame else _all_na(frame) for c in cols]
    any_true = pd.concat([p.fillna(False) for p in parts], axis=1).any(axis=1)
    all_false = pd.concat([p.eq(False).fillna(False) for p in parts], axis=1).all(axis=1)
    out = pd.Series(pd.array([pd.NA] * len(frame), dtype="boolean"), index=frame.index)
    out[any_true.to_numpy()] = True
    out[all_false.to_numpy() & ~any_true.to_numpy()] = False
    return out


def _all_na(frame: pd.DataFrame) -> pd.Series:
    return pd.Series(pd.array([pd.NA] * len(frame), dtype="boolean"), index=frame.index)


TARGETS: tuple[str, ...] = (*CATEGORIES, "harmful")
"""Targets of the label map: the four categories and 'asks for harm of any kind'."""


class LabelMapError(HarmtraceError):
    """The prompt label table is malformed or names a column a dataset does not have."""


@cache
def load_label_map() -> dict[str, Any]:
    """The prompt label table (``harmtrace/data/prompt_labels.yaml``), checked."""
    text = resources.files("harmtrace.data").joinpath("prompt_labels.yaml").read_text("utf-8")
    table = yaml.safe_load(text)
    for name, entry in table.items():
        where = f"prompt_labels.yaml: {name}"
        default = entry.get("default", {})
        if set(default) != set(TARGETS):
            raise LabelMapError(f"{where}: default must set exactly {list(TARGETS)}")
        for i, rule in enumerate(entry.get("rules") or []):
            unknown = set(rule.get("set", {})) - set(TARGETS)
            if unknown or not {"column", "pattern", "set"} <= set(rule):
                raise LabelMapError(
                    f"{where}: rule {i} needs column, pattern and set over {list(TARGETS)}"
                )
            for value in [*rule["set"].values(), *default.values()]:
                if value not in (0, 1, None):
                    raise LabelMapError(f"{where}: rule {i}: values are 0, 1 or null")
    return table


def mapped_targets(records: pd.DataFrame) -> pd.DataFrame:
    """Targets (:data:`TARGETS`) of records whose dataset is in the label table.

    Rows of other datasets are all missing. Rules combine per target as 1 > null > 0
    (see the table's header); a target no rule touches takes the dataset's default.
    """
    n = len(records)
    rank = {0: 0, None: 1, 1: 2}  # 1 beats null beats 0
    unset = -1
    best = {t: np.full(n, unset) for t in TARGETS}
    covered = np.zeros(n, dtype=bool)
    datasets = (
        records["dataset"].astype("string").fillna("").to_numpy()
        if "dataset" in records
        else np.array([""] * n)
    )
    table = load_label_map()
    for name in sorted(set(datasets) & set(table)):
        entry = table[name]
        rows = datasets == name
        covered |= rows
        for i, rule in enumerate(entry.get("rules") or []):
            col = rule["column"]
            if col not in records:
                raise LabelMapError(
                    f"prompt_labels.yaml: {name} rule {i} reads column {col!r}, which the "
                    f"records lack; normalize {name} again with the current adapter"
                )
            rx = re.compile(rule["pattern"], re.IGNORECASE)
            values = records[col].astype("string").fillna("").tolist()
            hit = np.fromiter((rx.search(v) is not None for v in values), bool, n) & rows
            for other, wanted in (rule.get("only_if") or {}).items():
                hit &= records[other].astype("string").fillna("").to_numpy() == str(wanted)
            for target, value in rule["set"].items():
                best[target][hit] = np.maximum(best[target][hit], rank[value])
        for target in TARGETS:
            fresh = rows & (best[target] == unset)
            best[target][fresh] = rank[entry["default"][target]]
    out = {}
    for target in TARGETS:
        arr = pd.array([pd.NA] * n, dtype="boolean")
        arr[covered & (best[target] == rank[1])] = True
        arr[covered & (best[target] == rank[0])] = False
        out[target] = arr
    return pd.DataFrame(out, index=records.index)


def _mapped_rows(records: pd.DataFrame) -> np.ndarray:
    if "dataset" not in records:
        return np.zeros(len(records), dtype=bool)
    names = set(load_label_map())
    return records["dataset"].astype("string").isin(names).fillna(False).to_numpy(dtype=bool)


def moderation_rows(records: pd.DataFrame) -> np.ndarray:
    """Rows labelled with moderation keys (not from a dataset of the prompt label table)."""
    return ~_mapped_rows(records)


def category_targets(records: pd.DataFrame) -> pd.DataFrame:
    """One nullable-boolean column per harm category (see the module docstring).

    Moderation records use their label keys; records of a dataset in the prompt label
    table use the table.
    """
    out = pd.DataFrame(
        {
            cat: kleene_any(records, [label_column(k) for k in keys])
            for cat, keys in CATEGORY_KEYS.items()
        },
        index=records.index,
    )[list(CATEGORIES)]
    mapped = _mapped_rows(records)
    if mapped.any():
        table = mapped_targets(records)
        for cat in CATEGORIES:
            out.loc[mapped, cat] = table.loc[mapped, cat]
    return out


def harm_targets(records: pd.DataFrame) -> pd.Series:
    """Whether a record asks for (moderation: contains) harm of any kind, three-valued.

    Moderation texts: OR over all eight keys (harassment included); prompt sets: the
    table's ``harmful`` target.
    """
    out = kleene_any(records, [label_column(k) for k in LABEL_KEYS])
    mapped = _mapped_rows(records)
    if mapped.any():
        out.loc[mapped] = mapped_targets(records).loc[mapped, "harmful"]
    return out.rename("harmful")


def severe_targets(records: pd.DataFrame) -> pd.DataFrame:
    """One nullable-boolean column per category with a severe sub-label (its own key).

    Only the moderation labels have severe sub-labels; prompt-set records are unknown.
    """
    return pd.DataFrame(
        {cat: kleene_any(records, [label_column(key)]) for cat, key in SEVERE_KEYS.items()},
        index=records.index,
    )


def has_labels(records: pd.DataFrame) -> bool:
    """True when ``records`` carries at least one moderation label column."""
    return any(label_column(k) in records.columns for k in LABEL_KEYS)


def training_fingerprint(records: pd.DataFrame, text_column: str = "prompt") -> str:
    """sha256 over the training texts and their label columns, in order."""
    h = hashlib.sha256()
    cols = [label_column(k) for k in LABEL_KEYS if label_column(k) in records.columns]
    h.update(("|".join(cols) + "\n").encode())
    texts = records[text_column].astype("string").fillna("").tolist()
    codes = [""] * len(texts)
    for col in cols:
        values = records[col].astype("boolean")
        symbol = values.map({True: "1", False: "0"}).astype(object).where(values.notna(), "?")
        codes = [a + b for a, b in zip(codes, symbol.tolist(), strict=True)]
    if _mapped_rows(records).any():  # prompt sets: their dataset and mapped targets count too
        mapped = pd.concat([category_targets(records), harm_targets(records)], axis=1)
        names = records["dataset"].astype("string").fillna("").tolist()
        for col in mapped.columns:
            values = mapped[col]
            symbol = values.map({True: "1", False: "0"}).astype(object).where(values.notna(), "?")
            codes = [a + b for a, b in zip(codes, symbol.tolist(), strict=True)]
        codes = [f"{name}:{code}" for name, code in zip(names, codes, strict=True)]
    for text, code in zip(texts, codes, strict=True):
        h.update(text.encode("utf-8") + b"\x00" + code.encode() + b"\n")
    return h.hexdigest()


def label_counts(records: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Known and positive counts per category and severe sub-label (for the manifest)."""
    out: dict[str, dict[str, int]] = {}
    for name, series in [
        *category_targets(records).items(),
        *((f"{cat}_severe", s) for cat, s in severe_targets(records).items()),
    ]:
        known = series.dropna()
        out[str(name)] = {"known": len(known), "positive": int(known.sum())}
    return out
