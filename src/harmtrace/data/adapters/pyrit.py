"""Adapters for PyRIT's scorer-evaluation CSVs: responses with human refusal or harm labels.

The files are PyRIT's own, bundled in its PyPI distribution; their ``#`` version comment
lines are skipped so that row numbers still match the file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from harmtrace.data.adapters.base import AdapterError, adapter, pick_file


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
    _, path = pick_file(files, "refusal.csv", "refusal_extra.csv")
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
