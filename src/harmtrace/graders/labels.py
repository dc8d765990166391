"""Training targets from the OpenAI moderation labels, with three-valued logic.

The moderation file leaves a key out when the annotators did not judge that label, so a
missing value means *unknown*, never *no*. A category built from several keys is

* ``True``  when at least one of its keys is known ``True``;
* ``False`` when every one of its keys is known ``False``;
* unknown (``pd.NA``) otherwise, and such a record is left out of that category's training.

(This is Kleene's three-valued OR.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import pandas as pd

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


def category_targets(records: pd.DataFrame) -> pd.DataFrame:
    """One nullable-boolean column per harm category (see the module docstring)."""
    return pd.DataFrame(
        {
            cat: kleene_any(records, [label_column(k) for k in keys])
            for cat, keys in CATEGORY_KEYS.items()
        },
        index=records.index,
    )[list(CATEGORIES)]


def severe_targets(records: pd.DataFrame) -> pd.DataFrame:
    """One nullable-boolean column per category with a severe sub-label (its own key)."""
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
