"""A stable sample of a records table (``data.sample``), for pilot runs and quick tests.

Method: a table is cut into sampling units, one record each unless the dataset's registry
entry names a ``sample_unit`` column (HH-RLHF's ``hh_pair_id``, so that the chosen and
the rejected answer to one dialogue are kept or dropped together). Units are ranked by
the sha256 of ``<dataset>\\x1f<unit value>`` and the first ``n`` are kept; kept rows stay
in file order. The sample therefore depends on the data alone: not on the file's row
order, a seed, the machine or the other datasets of the run, and a larger ``n`` keeps
every unit a smaller one kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pandas as pd

from harmtrace.errors import HarmtraceError

if TYPE_CHECKING:
    from harmtrace.data.normalize import Normalized

RECORD_UNIT = "record_id"
"""The default sampling unit: each record on its own."""


@dataclass(frozen=True)
class Sample:
    """The kept records and what they were drawn from (written into the provenance)."""

    records: pd.DataFrame
    unit: str
    units_kept: int
    units_total: int
    records_total: int


def _rank(dataset: str, value: object) -> str:
    return hashlib.sha256(f"{dataset}\x1f{value}".encode("utf-8", "surrogatepass")).hexdigest()


def sample_records(records: pd.DataFrame, n: int, unit: str | None = None) -> Sample:
    """At most ``n`` sampling units of ``records`` (all of them when there are fewer)."""
    unit = unit or RECORD_UNIT
    if n < 1:
        raise HarmtraceError(f"data.sample: keep at least 1 unit, got {n}")
    if unit not in records.columns:
        raise HarmtraceError(
            f"data.sample: the sampling unit column {unit!r} is not in the records "
            f"(columns: {', '.join(records.columns)})"
        )
    keys = records[unit]
    if keys.isna().any():
        rows = [int(i) for i in records.index[keys.isna()][:5]]
        raise HarmtraceError(f"data.sample: {unit!r} is empty in rows {rows}; cannot sample")
    dataset = str(records["dataset"].iloc[0]) if len(records) else ""
    values = pd.unique(keys.astype(str))
    kept = set(sorted(values, key=lambda v: _rank(dataset, v))[:n])
    mask = keys.astype(str).isin(kept)
    return Sample(
        records=records[mask].reset_index(drop=True),
        unit=unit,
        units_kept=len(kept),
        units_total=len(values),
        records_total=len(records),
    )


def sample_normalized(result: Normalized, n: int, unit: str | None = None) -> Normalized:
    """``result`` with its records cut to a stable sample, the sample in its provenance."""
    from harmtrace.data.provenance import SampleNote

    drawn = sample_records(result.records, n, unit)
    prov = result.provenance
    if prov is not None:
        note = SampleNote(
            unit=drawn.unit,
            units_kept=drawn.units_kept,
            units_total=drawn.units_total,
            records_total=drawn.records_total,
        )
        prov = prov.model_copy(update={"n_records": len(drawn.records), "sample": note})
    return replace(result, records=drawn.records, provenance=prov)
