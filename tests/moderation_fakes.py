"""A keyword scorer and a scripted LLM for moderation tests (not shipped).

The fake scorer gives each category the severity of the strongest keyword it finds, so a
test can write a response whose sentence and whole-response scores are known in advance.
Judgments are produced by the same scorer, as the real flow requires.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from harmtrace.graders.base import judgment_columns, judgment_dtypes
from harmtrace.moderate.backends import RegenerateRequest, RewriteRequest
from harmtrace.taxonomy import CATEGORIES

KEYWORDS: dict[str, dict[str, int]] = {
    "hate": {"rude": 1, "slur": 2, "genocide": 3},
    "sexual": {"flirt": 1, "explicit": 2, "porn": 3},
    "violence": {"punch": 1, "stab": 2, "massacre": 3},
    "self_harm": {"sad": 1, "cutting": 2},
}
PROB = {0: 0.02, 1: 0.3, 2: 0.7, 3: 0.95}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


class KeywordScorer:
    name = "fake"
    version = "fake-1"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def severities(self, text: str) -> dict[str, int]:
        words = set(_words(text))
        return {
            c: max([v for k, v in KEYWORDS[c].items() if k in words], default=0) for c in CATEGORIES
        }

    def score(self, texts: Sequence[str]) -> pd.DataFrame:
        self.calls.append(len(texts))
        cols: dict[str, list] = {}
        for c in CATEGORIES:
            cols[f"prob_{c}"], cols[f"severity_{c}"], cols[f"confidence_{c}"] = [], [], []
        for text in texts:
            sev = self.severities(text)
            for c in CATEGORIES:
                p = PROB[sev[c]]
                cols[f"prob_{c}"].append(p)
                cols[f"severity_{c}"].append(sev[c])
                cols[f"confidence_{c}"].append(p if sev[c] >= 2 else 1 - p)
        out = pd.DataFrame(cols)
        for c in CATEGORIES:
            out[f"severity_{c}"] = out[f"severity_{c}"].astype("Int8")
        return out

    def relevance(self, prompts, responses, contexts) -> pd.DataFrame:
        rel, ref = [], []
        for p, r in zip(prompts, responses, strict=True):
            refusal = "cannot" in r.lower()
            shared = {w for w in _words(p) if len(w) >= 4} & set(_words(r))
            rel.append(1 if refusal or not shared else 3)
            ref.append(refusal)
        return pd.DataFrame(
            {"relevance": pd.array(rel, dtype="Int8"), "refusal": pd.array(ref, dtype="boolean")}
        )

    def explain(self, texts, categories, k: int = 3) -> list[list[str]]:
        return [
            [w for w in _words(t) if w in KEYWORDS[c]][:k]
            for t, c in zip(texts, categories, strict=True)
        ]


def make_records(rows: Sequence[tuple[str, str | None]], dataset: str = "toy") -> pd.DataFrame:
    """Records (schema columns) from (prompt, response) pairs; None = no response."""
    n = len(rows)
    return pd.DataFrame(
        {
            "record_id": pd.array(
                [hashlib.sha256(f"{dataset}/{i}".encode()).hexdigest()[:16] for i in range(n)],
                dtype="string",
            ),
            "dataset": pd.array([dataset] * n, dtype="string"),
            "item_id": pd.array([f"item-{i}" for i in range(n)], dtype="string"),
            "prompt": pd.array([p for p, _ in rows], dtype="string"),
            "context": pd.array([""] * n, dtype="string"),
            "response": pd.array([r for _, r in rows], dtype="string"),
            "response_source": pd.array(
                [None if r is None else "toy-model" for _, r in rows], dtype="string"
            ),
        }
    )


def make_judgments(records: pd.DataFrame, scorer: KeywordScorer) -> pd.DataFrame:
    """Judgments of ``records`` by ``scorer`` (columns and dtypes of the real table)."""
    n = len(records)
    prompts = scorer.score(records["prompt"].tolist())
    has = records["response"].notna().to_numpy()
    responses = scorer.score(records["response"].fillna("").tolist())
    rel = scorer.relevance(
        records["prompt"].tolist(), records["response"].fillna("").tolist(), [""] * n
    )
    data: dict[str, object] = {"record_id": records["record_id"].to_numpy()}
    for c in CATEGORIES:
        for k in ("prob", "severity", "confidence"):
            data[f"prompt_{k}_{c}"] = prompts[f"{k}_{c}"].to_numpy()
            vals = responses[f"{k}_{c}"].astype("Float64").to_numpy(dtype=float)
            data[f"response_{k}_{c}"] = np.where(has, vals, np.nan)
    for side in ("prompt", "response"):  # the keyword scorer has no harm head
        data[f"{side}_prob_harmful"] = np.nan
        data[f"{side}_harmful"] = pd.array([pd.NA] * n, dtype="boolean")
    data["relevance"] = np.where(has, rel["relevance"].to_numpy(dtype=float), np.nan)
    data["refusal"] = pd.array(
        [bool(v) if h else None for v, h in zip(rel["refusal"], has, strict=True)], dtype="boolean"
    )
    data["prompt_scope"] = "last_turn"  # the fake grades the last turn only
    data["prompt_last_turn_severity"] = prompts[[f"severity_{c}" for c in CATEGORIES]].max(axis=1)
    data["status"] = "ok"
    data["error"] = None
    data["grader"] = "fake"
    data["grader_version"] = scorer.version
    frame = pd.DataFrame(data)[judgment_columns()]
    for col, dtype in judgment_dtypes().items():
        if dtype == "Int8":
            frame[col] = pd.array(
                [pd.NA if pd.isna(v) else int(v) for v in frame[col]], dtype="Int8"
            )
        else:
            frame[col] = frame[col].astype(dtype)
    return frame


class ScriptedLLM:
    """Returns fixed texts and records what it was asked."""

    name = "scripted"
    version = "scripted-llm/1"

    def __init__(
        self, rewrite_text: str = "A calm reply.", regenerate_text: str = "A safe reply."
    ) -> None:
        self.rewrite_text = rewrite_text
        self.regenerate_text = regenerate_text
        self.rewrites: list[RewriteRequest] = []
        self.regenerations: list[RegenerateRequest] = []

    def rewrite(self, requests: Sequence[RewriteRequest]) -> list[str]:
        self.rewrites.extend(requests)
        return [self.rewrite_text for _ in requests]

    def regenerate(self, requests: Sequence[RegenerateRequest]) -> list[str]:
        self.regenerations.extend(requests)
        return [self.regenerate_text for _ in requests]
