"""Where a records table came from, stored inside it and re-checked whenever it is read.

Method: ``harmtrace normalize`` writes a small JSON document into the parquet schema
metadata (key ``harmtrace.provenance``): the dataset name, whether the records come
from the registry (``registered``) or from a user's file (``user``), the sha256 of every
raw file read, the registry source, the record and quarantine counts and, for a stable
sample (``data.sample``), what it was drawn from.
:func:`read_records` reads it back and refuses a table whose story does not hold:
no provenance, a row count other than the one written, a user file under a registered
name, a registered dataset whose count or pinned digests differ from today's registry.
So a user file renamed ``simplesafetytests`` cannot be analysed as SimpleSafetyTests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from harmtrace.data.registry import is_registered, load_registry
from harmtrace.errors import HarmtraceError
from harmtrace.io import read_table, read_table_metadata

PROVENANCE_KEY = "harmtrace.provenance"


class ProvenanceError(HarmtraceError):
    """A records table whose provenance is missing or does not match the registry."""


class FileDigest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    sha256: str
    pinned: bool


class SampleNote(BaseModel):
    """A records table that holds a stable sample (``data.sample``) of its dataset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    unit: str
    units_kept: int
    units_total: int
    records_total: int
    """Records before sampling: what the registry's expected count is checked against."""


class Provenance(BaseModel):
    """What a records table was made from; JSON in the parquet metadata."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["registered", "user", "answers"]
    """``answers``: a target's answers to a prompt set (``harmtrace gather-answers``)."""
    dataset: str
    source: str
    files: tuple[FileDigest, ...]
    n_records: int
    n_quarantined: int
    expected_records: int | None = None
    columns: dict[str, str | None] | None = None
    target: dict[str, Any] | None = None
    """For ``answers``: the target's provenance (backend, weights, condition, sampling)."""
    sample: SampleNote | None = None
    """Set when the table keeps a stable sample of the dataset (``data.sample``)."""

    def to_metadata(self) -> dict[str, str]:
        """The metadata entry for :func:`harmtrace.io.write_table` (sorted keys: stable bytes)."""
        doc = self.model_dump(mode="json")
        if doc["sample"] is None:  # tables of whole datasets keep their earlier bytes
            del doc["sample"]
        return {PROVENANCE_KEY: json.dumps(doc, sort_keys=True)}


def read_provenance(path: Path) -> Provenance | None:
    """The provenance stored in a records table, or None when it has none."""
    meta = read_table_metadata(path)
    if PROVENANCE_KEY not in meta:
        return None
    try:
        return Provenance.model_validate_json(meta[PROVENANCE_KEY])
    except ValidationError as exc:
        raise ProvenanceError(f"{path}: unreadable provenance ({exc}); re-run normalize") from exc


def check_provenance(prov: Provenance, where: str) -> None:
    """Refuse provenance that today's registry contradicts."""
    rerun = f"re-run `harmtrace normalize {prov.dataset}`"
    if not is_registered(prov.dataset):
        if prov.kind not in ("user", "answers"):
            raise ProvenanceError(
                f"{where}: made from registry dataset {prov.dataset!r}, which the registry no "
                "longer has"
            )
        return
    if prov.kind != "registered":
        raise ProvenanceError(
            f"{where}: records of a user file under the registered dataset name "
            f"{prov.dataset!r}; a user file needs a name of its own (normalize --name)"
        )
    spec = load_registry()[prov.dataset]
    source = spec.source_named(prov.source)
    if source is None:
        raise ProvenanceError(
            f"{where}: made from source {prov.source!r}, which the registry entry of "
            f"{prov.dataset} does not have; {rerun}"
        )
    pins = {f.path: f.sha256 for f in source.files}
    used = {f.path: f for f in prov.files}
    if sorted(pins) != sorted(used):
        raise ProvenanceError(
            f"{where}: made from files {sorted(used)}, the registry source {source.name!r} "
            f"has {sorted(pins)}; {rerun}"
        )
    for name, pin in pins.items():
        if pin is not None and used[name].sha256 != pin:
            raise ProvenanceError(
                f"{where}: {name} had sha256 {used[name].sha256}, the registry pins {pin}; {rerun}"
            )
        if pin is None and used[name].pinned:
            raise ProvenanceError(f"{where}: {name} is no longer pinned in the registry; {rerun}")
    kept = prov.sample.records_total if prov.sample is not None else prov.n_records
    total = kept + prov.n_quarantined
    if spec.expected_records is not None and total != spec.expected_records:
        raise ProvenanceError(
            f"{where}: {prov.n_records} records + {prov.n_quarantined} quarantined, the "
            f"registry expects {spec.expected_records} for {prov.dataset}; {rerun}"
        )


def read_records(path: Path, dataset: str | None = None) -> pd.DataFrame:
    """Read a records table after checking schema and provenance.

    ``dataset`` is the name the caller expects (e.g. the Snakemake wildcard); None
    accepts whatever dataset the table says it holds, still checked against the registry.
    """
    df = read_table(path, "records")
    prov = read_provenance(path)
    if prov is None:
        raise ProvenanceError(
            f"{path}: no provenance; records must be written by `harmtrace normalize`"
        )
    if dataset is not None and prov.dataset != dataset:
        raise ProvenanceError(f"{path}: holds dataset {prov.dataset!r}, expected {dataset!r}")
    names = set(df["dataset"].dropna().unique())
    if names - {prov.dataset}:
        raise ProvenanceError(
            f"{path}: provenance names {prov.dataset!r}, the rows name {sorted(names)}"
        )
    if len(df) != prov.n_records:
        raise ProvenanceError(
            f"{path}: {len(df)} rows, {prov.n_records} were written; re-run normalize"
        )
    check_provenance(prov, str(path))
    return df
