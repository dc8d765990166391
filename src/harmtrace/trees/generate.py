"""Tree generators behind one registry, and the JSONL files they write.

A generator takes records (``record_id``, ``dataset``, ``prompt``) and returns one
:class:`~harmtrace.trees.schema.TreeRecord` per record, in order: a validated tree, or
a failure with its errors. Nothing is dropped; :func:`summarise` counts what failed and
why. Each generator has a pydantic spec (its method parameters; the spec hash goes into
every record's provenance) and is registered by name like the graders' extractors::

    gen = make_generator("embedded", {"top_k": 3}, model_dir=..., raw_dir=...)
    write_trees(gen.generate(records), Path("results/trees/embedded/harmbench.jsonl"))
"""

from __future__ import annotations

import abc
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
from pydantic import BaseModel, ValidationError

from harmtrace.errors import HarmtraceError
from harmtrace.trees.schema import Provenance, TreeRecord, spec_hash


class TreeGenerationError(HarmtraceError):
    """A generator cannot run (bad spec, missing resources) or a tree file is malformed."""


class TreeGenerator(abc.ABC):
    """A backend that turns prompts into harm-benefit trees."""

    name: ClassVar[str] = "abstract"
    proxy: ClassVar[bool] = False
    """True when trees are built without an LLM; outputs and the paper say so."""
    Spec: ClassVar[type[BaseModel]]

    def __init__(self, spec: BaseModel) -> None:
        self.spec = spec

    @property
    @abc.abstractmethod
    def version(self) -> str:
        """Changes whenever the trees could change (method version, models, taxonomy)."""

    def provenance(self) -> Provenance:
        return Provenance(
            generator=self.name,
            version=self.version,
            spec_hash=spec_hash(self.spec),
            proxy=self.proxy,
        )

    @abc.abstractmethod
    def generate(self, records: pd.DataFrame) -> list[TreeRecord]:
        """One tree record per row of ``records`` (same order)."""


GENERATORS: dict[str, type[TreeGenerator]] = {}


def register(cls: type[TreeGenerator]) -> type[TreeGenerator]:
    GENERATORS[cls.name] = cls
    return cls


def _load_builtin() -> None:
    # importing registers them; kept lazy so `harmtrace --help` stays fast
    from harmtrace.trees import llm_generator, proxy  # noqa: F401


def make_spec(name: str, params: dict[str, Any] | None = None) -> BaseModel:
    """Validate ``params`` against generator ``name``'s spec."""
    _load_builtin()
    if name not in GENERATORS:
        raise TreeGenerationError(
            f"unknown tree generator {name!r}; choose from {sorted(GENERATORS)}"
        )
    try:
        return GENERATORS[name].Spec.model_validate(params or {})
    except ValidationError as exc:
        raise TreeGenerationError(f"tree generator {name!r}: bad settings: {exc}") from exc


def make_generator(
    name: str, params: dict[str, Any] | None = None, **resources: Any
) -> TreeGenerator:
    """A generator by name, its spec validated from ``params``; ``resources`` are the
    things that are not method parameters (model folder, raw-data folder, LLM client)."""
    spec = make_spec(name, params)
    return GENERATORS[name](spec, **resources)  # type: ignore[call-arg]


def prompt_records(
    texts: Sequence[str], dataset: str, ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """Minimal records for loose texts (``--input FILE``): ids default to row numbers."""
    from harmtrace.data.normalize import record_id

    items = list(ids) if ids is not None else [f"{i:06d}" for i in range(len(texts))]
    return pd.DataFrame(
        {
            "record_id": [record_id(dataset, str(i), None) for i in items],
            "dataset": dataset,
            "item_id": items,
            "prompt": list(texts),
        }
    )


def write_trees(records: Iterable[TreeRecord], path: Path) -> int:
    """One JSON object per line, sorted keys, atomically; returns the number written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    n = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec.model_dump(mode="json"), sort_keys=True, ensure_ascii=False))
            fh.write("\n")
            n += 1
    tmp.replace(path)
    return n


def read_trees(path: Path) -> list[TreeRecord]:
    """Tree records of a JSONL file, each validated; errors name the line."""
    if not Path(path).is_file():
        raise TreeGenerationError(f"{path}: no such tree file; run `harmtrace trees` first")
    out = []
    with Path(path).open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                out.append(TreeRecord.model_validate_json(line))
            except ValidationError as exc:
                raise TreeGenerationError(f"{path}:{n}: not a valid tree record: {exc}") from exc
    return out


@dataclass(frozen=True)
class TreeSummary:
    """What a tree file holds: counts by status, repairs, warnings and failure reasons."""

    total: int
    ok: int
    failed: int
    repaired: int
    with_warnings: int
    attempts: int
    failure_reasons: dict[str, int]
    proxy: bool

    def lines(self) -> list[str]:
        out = [
            f"{self.total} trees: {self.ok} ok, {self.failed} failed, {self.repaired} repaired "
            f"JSON, {self.with_warnings} with AIR-name warnings, {self.attempts} attempts"
            + (" (proxy trees, no LLM)" if self.proxy else "")
        ]
        out += [f"  failed: {n} x {reason}" for reason, n in self.failure_reasons.items()]
        return out


def _reason(errors: list[str]) -> str:
    last = errors[-1] if errors else "unknown"
    return last.split(":", 1)[0][:80]


def summarise(records: Sequence[TreeRecord]) -> TreeSummary:
    failed = [r for r in records if r.status == "failed"]
    reasons = Counter(_reason(r.errors) for r in failed)
    return TreeSummary(
        total=len(records),
        ok=len(records) - len(failed),
        failed=len(failed),
        repaired=sum(r.repaired for r in records),
        with_warnings=sum(bool(r.warnings) for r in records),
        attempts=sum(r.attempts for r in records),
        failure_reasons=dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        proxy=bool(records) and all(r.provenance.proxy for r in records),
    )


Factory = Callable[..., TreeGenerator]
