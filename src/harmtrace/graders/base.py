"""Interfaces shared by every grader backend, and the judgments table they all write.

Two small contracts live here:

* :class:`FeatureExtractor` turns texts into a feature matrix (``fit`` / ``transform``),
  identified by ``name`` and ``version`` so a saved model records exactly what produced
  its inputs, and registered by name (:mod:`harmtrace.graders.features.registry`) with an
  :class:`ExtractorSpec` for its constructor's keywords.
* :class:`Grader` is a registered backend (:mod:`harmtrace.graders.registry`): built from a
  pydantic spec (its config block), it turns a records frame into a judgments frame. The
  columns, dtypes and ranges come from ``schemas/judgments.yaml`` alone.
"""

from __future__ import annotations

import abc
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pandas as pd
from pydantic import BaseModel, ConfigDict

from harmtrace.io import column_dtypes, validate


def as_texts(values: Any) -> list[str]:
    """Plain ``str`` list; ``None``, ``pd.NA`` and NaN become empty strings."""
    out = []
    for v in values:
        out.append("" if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v))
    return out


class ExtractorSpec(BaseModel):
    """Base of an extractor's constructor parameters: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureExtractor(abc.ABC):
    """Texts in, a 2-d feature matrix (dense ``ndarray`` or scipy sparse) out.

    ``Spec`` validates the constructor's keywords; :meth:`from_spec` passes its fields to
    the constructor, so the instance (its pickle, its fingerprint) keeps plain attributes.
    As in scikit-learn, ``__init__`` only stores parameters, what ``fit`` learns has a
    trailing underscore and weights load on first use, so building one is free and its
    state says what was learned (tests/unit/test_fitted_attributes.py checks it).
    """

    Spec: ClassVar[type[ExtractorSpec]] = ExtractorSpec
    name: ClassVar[str] = "abstract"
    version: ClassVar[str] = "0"
    dense: ClassVar[bool] = False
    """True when ``transform`` returns a dense array that benefits from standardising."""
    stateless: ClassVar[bool] = False
    """True when ``fit`` learns nothing, so features of a text never depend on a corpus."""
    c_grid: ClassVar[tuple[float, ...]] = (1.0,)
    """Inverse-regularisation values worth searching for a linear model on these features."""

    @classmethod
    def from_spec(cls, spec: ExtractorSpec) -> FeatureExtractor:
        return cls(**dict(spec))

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


class GraderSpec(BaseModel):
    """Base of every backend's config block: unknown keys are errors, values are frozen.

    A field declared with ``json_schema_extra={"affects_judgments": False}`` (a timeout, a
    concurrency limit, where a model lives) is left out of the spec hash, so changing it
    does not change ``grader_version``; so is a field of a nested settings model flagged
    ``affects_answers: False`` (:class:`harmtrace.llm.settings.EndpointSettings`), at any
    depth.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    def judgment_fields(self) -> dict[str, Any]:
        return _judgment_values(self)

    def datasets_needed(self) -> tuple[str, ...]:
        """Datasets the backend trains or calibrates on: the run builds them whatever the
        study names (harmtrace.study)."""
        return ()

    def datasets_tested(self) -> tuple[str, ...]:
        """Datasets the backend is only tested on (used when the run builds them)."""
        return ()

    def spec_hash(self) -> str:
        """First 12 hex digits of sha256 over the judgment-relevant fields (sorted JSON)."""
        payload = json.dumps(self.judgment_fields(), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


_RUN_ONLY = ("affects_judgments", "affects_answers")
"""Field flags that mark a setting as changing how fast, not what, is judged."""


def _judgment_values(spec: BaseModel) -> dict[str, Any]:
    """``spec``'s values without run-only fields, nested models walked (written here, not
    taken from :func:`harmtrace.llm.settings.answer_values`, so that the embedded grader's
    version never imports the HTTP client)."""
    out: dict[str, Any] = {}
    for name, field in type(spec).model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if any(extra.get(flag) is False for flag in _RUN_ONLY):
            continue
        value = getattr(spec, name)
        out[name] = _judgment_values(value) if isinstance(value, BaseModel) else value
    return out


class TrainingAPI(Protocol):
    """What the training verbs (``harmtrace train-grader``, ``evaluate-grader``,
    ``evaluate-transfer``, ``embed-texts``, ``validate-relevance``, ``moderate``) need from
    a backend the workflow trains; its class names the module that provides it."""

    DEFAULT_EXTRACTOR: str
    MANIFEST_FILE: str
    OOF_FILE: str

    def training_frame(self, frames: list[pd.DataFrame]) -> pd.DataFrame: ...

    def train_grader(self, records: pd.DataFrame, model_dir: Path, **options: Any) -> Any: ...

    def stored_oof_scores(self, model_dir: Path, records: pd.DataFrame) -> Any: ...

    def load_model(self, model_dir: Path) -> Any: ...

    def load_scorer(self, model_dir: Path) -> Any: ...

    def grade_records(self, model: Any, records: pd.DataFrame, **reading: Any) -> Any: ...


class Grader(abc.ABC):
    """A grader backend: records in, judgments (``schemas/judgments.yaml``) out.

    Subclasses set ``name``, ``Spec`` (their pydantic config block) and ``backend_version``,
    register with :func:`harmtrace.graders.registry.register_grader`, and do no work in
    ``__init__``.
    """

    name: ClassVar[str] = "abstract"
    Spec: ClassVar[type[GraderSpec]] = GraderSpec
    backend_version: ClassVar[str] = "0"
    reads_record_labels: ClassVar[bool] = False
    """True for a backend that reads labels the records carry (it can only grade files
    with them; as a study's reference grader it grades the study's own files)."""
    trains_in_workflow: ClassVar[bool] = False
    """True for a backend whose model the workflow trains from labels (its training rules
    exist only when it is configured; :func:`harmtrace.study.trained_grader`)."""
    scores_sentences: ClassVar[bool] = False
    """True for a backend that can score single sentences, as moderation needs."""
    training_api: ClassVar[str | None] = None
    """For a backend the workflow trains: the module implementing :class:`TrainingAPI`."""
    workflow_rules: ClassVar[tuple[str, ...]] = ()
    """For a backend the workflow trains: the Snakemake files whose rules make what it needs
    (its model, the checks of it). The Snakefile includes them only when this backend is
    the run's trained grader (:func:`harmtrace.study.backend_rules`). A path is relative to
    the workflow's root, or absolute: the file another package ships beside its backend."""

    def __init__(self, spec: GraderSpec) -> None:
        self.spec = spec

    @classmethod
    def config_problems(cls, spec: GraderSpec, datasets: list[str], where: str) -> list[str]:
        """What the backend's validated block asks of the rest of the config (datasets it
        trains on must be built, ...), one message per problem naming the key under
        ``where``; checked when the workflow is parsed. None by default."""
        return []

    @property
    def version(self) -> str:
        """``<name>-<backend version>/spec-<hash>``; backends append what else matters."""
        return f"{self.name}-{self.backend_version}/spec-{self.spec.spec_hash()}"

    def check(self) -> None:
        """Fail fast, before any record is read, when the backend cannot run (no trained
        model, no API key); the message says how to fix it."""
        return None

    @abc.abstractmethod
    def grade(self, records: pd.DataFrame) -> pd.DataFrame:
        """One judgment row per record, in record order; failures are rows too."""

    def describe(self) -> dict[str, Any]:
        """What a result records about the backend that made it."""
        return {"grader": self.name, "version": self.version, "spec": self.spec.model_dump()}


def judgment_columns() -> list[str]:
    """Column order of a judgments table."""
    return list(judgment_dtypes())


def judgment_dtypes() -> dict[str, str]:
    """pandas dtypes of a judgments table."""
    return column_dtypes("judgments")


def empty_judgments(record_ids: Sequence[str], grader: str, grader_version: str) -> pd.DataFrame:
    """A judgments frame for ``record_ids`` with every judgment missing and status ``ok``;
    backends fill the columns they produce (and mark failures with :func:`mark_failed`)."""
    n = len(record_ids)
    frame = pd.DataFrame(
        {col: pd.array([pd.NA] * n, dtype=dtype) for col, dtype in judgment_dtypes().items()}
    )
    frame["record_id"] = pd.array(list(record_ids), dtype="string")
    frame["status"] = pd.array(["ok"] * n, dtype="string")
    frame["grader"] = pd.array([grader] * n, dtype="string")
    frame["grader_version"] = pd.array([grader_version] * n, dtype="string")
    return frame


def mark_failed(frame: pd.DataFrame, rows: Any, error: str | Sequence[str]) -> pd.DataFrame:
    """Set ``status`` failed, the reason, and null judgments on ``rows`` (positions)."""
    rows = list(rows)
    judged = [c for c in frame.columns if c.startswith(("prompt_", "response_"))]
    judged += ["relevance", "refusal"]
    for col in judged:
        frame.iloc[rows, frame.columns.get_loc(col)] = pd.NA
    frame.iloc[rows, frame.columns.get_loc("status")] = "failed"
    frame.iloc[rows, frame.columns.get_loc("error")] = error
    return frame


def validate_judgments(frame: pd.DataFrame, where: str = "judgments") -> pd.DataFrame:
    """Raise :class:`harmtrace.io.SchemaError` unless ``frame`` is a valid judgments table."""
    return validate(frame, "judgments", where=where)
