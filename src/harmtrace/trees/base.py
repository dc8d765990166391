"""The contract of a tree generator: a pydantic spec (its config block) and a backend
that turns records into :class:`~harmtrace.trees.schema.TreeRecord` objects.

This mirrors :mod:`harmtrace.graders.base`: a spec field declared with
``json_schema_extra={"affects_trees": False}`` (where a model lives, a server URL, a
concurrency limit) is left out of the spec hash, so changing it does not change the
provenance the trees carry.
"""

from __future__ import annotations

import abc
import hashlib
import json
from typing import Any, ClassVar

import pandas as pd
from pydantic import BaseModel, ConfigDict

from harmtrace.trees.schema import Provenance, TreeRecord


class GeneratorSpec(BaseModel):
    """Base of every generator's config block: unknown keys are errors, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def tree_fields(self) -> dict[str, Any]:
        out = {}
        for name, field in type(self).model_fields.items():
            extra = field.json_schema_extra
            if isinstance(extra, dict) and extra.get("affects_trees") is False:
                continue
            out[name] = getattr(self, name)
        return out

    def spec_hash(self) -> str:
        """First 16 hex digits of sha256 over the tree-relevant fields (sorted JSON)."""
        payload = json.dumps(self.tree_fields(), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


class TreeGenerator(abc.ABC):
    """A backend that turns prompts into harm-benefit trees.

    Subclasses set ``name``, ``Spec``, ``backend_version`` and ``proxy``, register with
    :func:`harmtrace.trees.registry.register_generator`, and do no work in ``__init__``.
    """

    name: ClassVar[str] = "abstract"
    Spec: ClassVar[type[GeneratorSpec]] = GeneratorSpec
    backend_version: ClassVar[str] = "0"
    proxy: ClassVar[bool] = False
    """True when trees are built without an LLM; outputs and the paper say so."""
    uses_trained_grader: ClassVar[bool] = False
    """True when generation reads the trained embedded grader (the DAG then waits for it)."""

    def __init__(self, spec: GeneratorSpec) -> None:
        self.spec = spec

    @property
    def version(self) -> str:
        """``<name>-<backend version>``; backends append what else matters (models)."""
        return f"{self.name}-{self.backend_version}"

    def check(self) -> None:
        """Fail fast, before any record is read, when the backend cannot run."""
        return None

    def provenance(self) -> Provenance:
        return Provenance(
            generator=self.name,
            version=self.version,
            spec_hash=self.spec.spec_hash(),
            proxy=self.proxy,
        )

    @abc.abstractmethod
    def generate(self, records: pd.DataFrame) -> list[TreeRecord]:
        """One tree record per row of ``records`` (``record_id``, ``dataset``, ``prompt``),
        in order; failures are records too."""
