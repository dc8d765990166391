"""The trained embedded grader on disk: the model pickle, its manifest and the
out-of-fold scores of its training records.

The manifest carries the pickle's sha256, so a model file that does not match it is
refused, and the library versions that trained it, so a scikit-learn upgrade is noticed.
The out-of-fold scores are how training records are graded without leakage: by record id
when a whole dataset was trained on, by text digest when another dataset repeats a
training text.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import platform
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn

import harmtrace
from harmtrace.graders.base import as_texts
from harmtrace.graders.embedded.columns import score_columns
from harmtrace.graders.features import wordllama_version

MODEL_FILE = "model.pkl"
MANIFEST_FILE = "manifest.json"
OOF_FILE = "oof_scores.parquet"


def environment_versions(wordllama: bool) -> dict[str, str]:
    """Versions of what a model's numbers depend on (``wordllama`` when it embeds)."""
    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit-learn": sklearn.__version__,
        "harmtrace": harmtrace.__version__,
    }
    if wordllama:
        versions["wordllama"] = wordllama_version()
    return versions


def write_model(
    model: object,
    manifest: dict[str, Any],
    directory: str | Path,
    oof: pd.DataFrame | None = None,
    oof_params: dict[str, Any] | None = None,
) -> Path:
    """Write ``model.pkl`` and ``manifest`` (with the files' sha256s) to ``directory``;
    with ``oof`` also ``oof_scores.parquet``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    blob = pickle.dumps(model, protocol=5)
    (directory / MODEL_FILE).write_bytes(blob)
    manifest["files"] = {MODEL_FILE: {"sha256": hashlib.sha256(blob).hexdigest()}}
    if oof is not None:
        oof.to_parquet(directory / OOF_FILE, index=False)
        manifest["files"][OOF_FILE] = {
            "sha256": hashlib.sha256((directory / OOF_FILE).read_bytes()).hexdigest(),
            "rows": len(oof),
            **(oof_params or {}),
        }
    (directory / MANIFEST_FILE).write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return directory


def read_model(directory: str | Path) -> Any:
    """The object :func:`write_model` pickled (only load models you trust: it is a pickle).

    The pickle's sha256 must match the manifest; a scikit-learn version other than the
    one that trained the model gives a warning.
    """
    directory = Path(directory)
    manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    blob = (directory / MODEL_FILE).read_bytes()
    expected = manifest["files"][MODEL_FILE]["sha256"]
    if hashlib.sha256(blob).hexdigest() != expected:
        raise ValueError(f"{directory / MODEL_FILE} does not match its manifest sha256")
    trained_with = manifest["versions"]["scikit-learn"]
    if trained_with != sklearn.__version__:
        warnings.warn(
            f"model trained with scikit-learn {trained_with}, running {sklearn.__version__}",
            stacklevel=3,  # the caller of EmbeddedGrader.load
        )
    return pickle.loads(blob)


def text_digest(text: str) -> str:
    """sha256 of a text (UTF-8): how a graded text is recognised as a training text."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def stored_oof_scores(directory: str | Path, records: pd.DataFrame) -> pd.DataFrame | None:
    """The saved out-of-fold scores when ``records`` are the model's training records.

    Returns None when no record is among the training records (an ordinary dataset), and
    raises ``ValueError`` when only some are: mixing in-sample and out-of-fold judgments
    would bias any comparison on that dataset.
    """
    path = Path(directory) / OOF_FILE
    if not path.exists():
        return None
    oof = pd.read_parquet(path)
    ids = pd.Index(records["record_id"].astype("string"))
    inside = ids.isin(pd.Index(oof["record_id"].astype("string")))
    if not inside.any():
        return None
    if not inside.all():
        raise ValueError(
            f"{int(inside.sum())} of {len(ids)} records were training records of the grader; "
            "grade a dataset either wholly inside or wholly outside the training set"
        )
    return oof


def oof_for_texts(directory: str | Path, records: pd.DataFrame) -> pd.DataFrame | None:
    """Out-of-fold prompt scores for graded records whose prompt *text* was a training text.

    Another dataset can repeat training prompts (HarmBench's behaviors ship in two
    redistributions, for example); scoring such a prompt with the final model would be
    in-sample. Returns rows keyed by the graded ``record_id`` for the prompts found (the
    first training record with that text), or None when there are none.
    """
    path = Path(directory) / OOF_FILE
    if not path.exists():
        return None
    oof = pd.read_parquet(path)
    if "text_sha256" not in oof:
        return None
    by_text = oof.drop_duplicates("text_sha256").set_index("text_sha256")
    digests = [text_digest(t) for t in as_texts(records["prompt"])]
    found = [d in by_text.index for d in digests]
    if not any(found):
        return None
    rows = by_text.loc[[d for d, f in zip(digests, found, strict=True) if f], score_columns()]
    rows.insert(0, "record_id", records["record_id"].astype("string").to_numpy()[found])
    return rows.reset_index(drop=True)
