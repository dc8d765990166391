"""Tree files: one JSON object per prompt in ``results/trees/<generator>/<dataset>.jsonl``.

Every prompt gets a line, a validated tree or a failure with its errors; nothing is
dropped. :func:`summarise` counts what failed and why, so bad trees are shown, and
:func:`read_trees` validates every line again when a file is read.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from harmtrace.errors import HarmtraceError
from harmtrace.trees.schema import TreeRecord


class TreeFileError(HarmtraceError):
    """A tree file is missing or malformed."""


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
        raise TreeFileError(f"{path}: no such tree file; run `harmtrace trees` first")
    out = []
    with Path(path).open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                out.append(TreeRecord.model_validate_json(line))
            except ValidationError as exc:
                raise TreeFileError(f"{path}:{n}: not a valid tree record: {exc}") from exc
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
