"""Interfaces shared by every grader backend, and the judgments table they all write.

Two small contracts live here:

* :class:`FeatureExtractor` turns texts into a feature matrix (``fit`` / ``transform``),
  identified by ``name`` and ``version`` so a saved model records exactly what produced
  its inputs.
* :class:`Grader` turns a records frame into a judgments frame whose columns are fixed
  by :func:`judgment_columns` (the same for the embedded, LLM and human backends).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar

import pandas as pd

from harmtrace.taxonomy import CATEGORIES

SIDES: tuple[str, ...] = ("prompt", "response")
"""The two texts of a record that get a harm judgment each."""


def as_texts(values: Any) -> list[str]:
    """Plain ``str`` list; ``None``, ``pd.NA`` and NaN become empty strings."""
    out = []
    for v in values:
        out.append("" if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v))
    return out


class FeatureExtractor(abc.ABC):
    """Texts in, a 2-d feature matrix (dense ``ndarray`` or scipy sparse) out."""

    name: ClassVar[str] = "abstract"
    version: ClassVar[str] = "0"
    dense: ClassVar[bool] = False
    """True when ``transform`` returns a dense array that benefits from standardising."""
    stateless: ClassVar[bool] = False
    """True when ``fit`` learns nothing, so features of a text never depend on a corpus."""
    c_grid: ClassVar[tuple[float, ...]] = (1.0,)
    """Inverse-regularisation values worth searching for a linear model on these features."""

    @abc.abstractmethod
    def fit(self, texts: Sequence[str]) -> FeatureExtractor:
        """Learn whatever the features need from ``texts``; return ``self``."""

    @abc.abstractmethod
    def transform(self, texts: Sequence[str]) -> Any:
        """Features for ``texts`` (one row per text, same order)."""

    def fit_transform(self, texts: Sequence[str]) -> Any:
        return self.fit(texts).transform(texts)

    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """JSON-serialisable constructor parameters (written to the model manifest)."""

    def fingerprint(self) -> bytes:
        """Bytes that change whenever the fitted state changes (used for the model hash)."""
        return repr((self.name, self.version, sorted(self.params().items()))).encode()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "params": self.params()}


class Grader(abc.ABC):
    """A grader backend: records in, judgments (see :func:`judgment_columns`) out."""

    name: ClassVar[str] = "abstract"

    @property
    @abc.abstractmethod
    def version(self) -> str:
        """A string that changes whenever the judgments could change."""

    @abc.abstractmethod
    def grade(self, records: pd.DataFrame) -> pd.DataFrame:
        """One judgment row per record, columns and dtypes as in :func:`judgment_dtypes`."""


def judgment_columns() -> list[str]:
    """Column order of a judgments table."""
    cols = ["record_id"]
    for side in SIDES:
        for cat in CATEGORIES:
            cols += [f"{side}_prob_{cat}", f"{side}_severity_{cat}", f"{side}_confidence_{cat}"]
    return [*cols, "relevance", "refusal", "grader", "grader_version"]


def judgment_dtypes() -> dict[str, str]:
    """pandas dtypes of a judgments table (nullable everywhere a value can be missing)."""
    dtypes: dict[str, str] = {}
    for col in judgment_columns():
        if col in ("record_id", "grader", "grader_version"):
            dtypes[col] = "string"
        elif "_severity_" in col or col == "relevance":
            dtypes[col] = "Int8"
        elif col == "refusal":
            dtypes[col] = "boolean"
        else:
            dtypes[col] = "Float64"
    return dtypes


def empty_judgments(record_ids: Sequence[str], grader: str, grader_version: str) -> pd.DataFrame:
    """A judgments frame for ``record_ids`` with every judgment missing."""
    n = len(record_ids)
    data: dict[str, Any] = {}
    for col, dtype in judgment_dtypes().items():
        data[col] = pd.array([pd.NA] * n, dtype=dtype)
    frame = pd.DataFrame(data, columns=judgment_columns())
    frame["record_id"] = pd.array(list(record_ids), dtype="string")
    frame["grader"] = pd.array([grader] * n, dtype="string")
    frame["grader_version"] = pd.array([grader_version] * n, dtype="string")
    return frame


def validate_judgments(frame: pd.DataFrame) -> None:
    """Raise ``ValueError`` unless ``frame`` has the judgments columns, dtypes and ranges."""
    expected = judgment_columns()
    if list(frame.columns) != expected:
        missing = [c for c in expected if c not in frame.columns]
        extra = [c for c in frame.columns if c not in expected]
        raise ValueError(f"judgment columns differ: missing={missing} extra={extra}")
    for col, dtype in judgment_dtypes().items():
        if str(frame[col].dtype) != dtype:
            raise ValueError(f"column {col!r} has dtype {frame[col].dtype}, expected {dtype}")
    if frame["record_id"].isna().any() or frame["record_id"].duplicated().any():
        raise ValueError("record_id must be present and unique")
    for col in frame.columns:
        values = frame[col].dropna()
        if values.empty:
            continue
        if "_severity_" in col and not values.isin([0, 1, 2, 3]).all():
            raise ValueError(f"{col} outside 0..3")
        if col == "relevance" and not values.isin([1, 2, 3]).all():
            raise ValueError("relevance outside 1..3")
        if ("_prob_" in col or "_confidence_" in col) and not (
            (values >= 0).all() and (values <= 1).all()
        ):
            raise ValueError(f"{col} outside [0, 1]")
