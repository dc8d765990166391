"""Records of a registered dataset: verified raw files, through its adapter, counted."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from pathlib import Path

from harmtrace.data.adapters import ADAPTERS, AdapterError
from harmtrace.data.fetch import verify_fetched
from harmtrace.data.normalize.records import Normalized, build_records
from harmtrace.data.normalize.row_checks import BadRowPolicy
from harmtrace.data.provenance import FileDigest, Provenance
from harmtrace.data.registry import DatasetSpec
from harmtrace.errors import HarmtraceError


class NotRecordsError(HarmtraceError):
    """The dataset is reference data (e.g. a taxonomy), which has no records."""


def normalize_dataset(
    spec: DatasetSpec,
    raw_dir: Path,
    *,
    bad_rows: BadRowPolicy = "error",
    max_text_chars: int = 100_000,
    allow_unpinned: Collection[str] = (),
) -> Normalized:
    """Re-verify the fetched files, read them through the adapter, check the count.

    ``allow_unpinned`` names datasets whose unpinned files the user accepts.
    """
    if spec.kind != "records":
        raise NotRecordsError(
            f"{spec.name} is reference data (kind: {spec.kind}), not records; normalize skips "
            "it (load it with harmtrace.data.air_taxonomy.LOADERS[spec.adapter])"
        )
    manifest = verify_fetched(spec, raw_dir, allow_unpinned)
    files = {f["path"]: raw_dir / spec.name / f["path"] for f in manifest["files"]}
    if spec.adapter not in ADAPTERS:
        raise AdapterError(f"{spec.name}: adapter {spec.adapter!r} is not implemented")
    frame = ADAPTERS[spec.adapter](files)
    result = build_records(spec.name, frame, bad_rows=bad_rows, max_text_chars=max_text_chars)
    total = len(result.records) + len(result.quarantined)
    if spec.expected_records is not None and total != spec.expected_records:
        raise AdapterError(
            f"{spec.name}: parsed {total} rows, the registry expects {spec.expected_records}; "
            "the raw file changed or the adapter is wrong"
        )
    source = spec.source_named(manifest["source"])
    assert source is not None  # verify_fetched checked it
    recorded = {e["path"]: e["sha256"] for e in manifest["files"]}
    prov = Provenance(
        kind="registered",
        dataset=spec.name,
        source=source.name,
        files=tuple(
            FileDigest(path=f.path, sha256=recorded[f.path], pinned=f.sha256 is not None)
            for f in source.files
        ),
        n_records=len(result.records),
        n_quarantined=len(result.quarantined),
        expected_records=spec.expected_records,
    )
    return replace(result, provenance=prov)
