"""Grading in shards: deterministic slices of a records table, and gathering them back.

Method. Shard ``I/N`` (1-based) of a table with ``n`` rows is the contiguous slice
``[(I-1)*n//N, I*n//N)``: every row falls in exactly one shard, shard sizes differ by at
most one, and concatenating shards 1..N restores record order. A shard job reads only
its slice (:func:`harmtrace.io.read_table_rows` streams the file), so a grading job's
memory follows the shard size, not the dataset size. :func:`gather_judgments` checks
that the shards were made by one grader version and together judge every record
exactly once (records in = records out), then restores record order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harmtrace.errors import HarmtraceError
from harmtrace.graders.base import judgment_dtypes, validate_judgments
from harmtrace.io import read_table, read_table_rows, table_rows


class ShardError(HarmtraceError):
    """A shard spec is malformed, or gathered shards do not cover the records exactly."""


@dataclass(frozen=True)
class Shard:
    index: int
    """1-based."""
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
        if not m:
            raise ShardError(f"--shard {text!r}: expected I/N, e.g. 3/8 (1 <= I <= N)")
        index, count = int(m.group(1)), int(m.group(2))
        if not 1 <= index <= count:
            raise ShardError(f"--shard {text!r}: I must be between 1 and N (shards are 1-based)")
        return cls(index, count)

    def bounds(self, n: int) -> tuple[int, int]:
        return (self.index - 1) * n // self.count, self.index * n // self.count

    @property
    def label(self) -> str:
        return f"{self.index}-of-{self.count}"


def shard_count(n_records: int, shard_size: int) -> int:
    """Shards needed so that none holds more than ``shard_size`` records (at least 1)."""
    if shard_size < 1:
        raise ShardError(f"shard_size must be a positive number of records, not {shard_size}")
    return max(1, math.ceil(n_records / shard_size))


def read_shard(path: Path, shard: Shard | None, dataset: str | None = None) -> pd.DataFrame:
    """The records of one shard (all records when ``shard`` is None), validated, with the
    table's provenance checked as :func:`harmtrace.data.provenance.read_records` does."""
    from harmtrace.data.provenance import (
        ProvenanceError,
        check_provenance,
        read_provenance,
        read_records,
    )

    if shard is None:
        return read_records(path, dataset=dataset)
    n = table_rows(path)
    prov = read_provenance(path)
    if prov is None:
        raise ProvenanceError(
            f"{path}: no provenance; records must be written by `harmtrace normalize`"
        )
    if dataset is not None and prov.dataset != dataset:
        raise ProvenanceError(f"{path}: holds dataset {prov.dataset!r}, expected {dataset!r}")
    if n != prov.n_records:
        raise ProvenanceError(f"{path}: {n} rows, {prov.n_records} were written; re-run normalize")
    check_provenance(prov, str(path))
    start, stop = shard.bounds(n)
    part = read_table_rows(path, "records", start, stop)
    names = set(part["dataset"].dropna().unique())
    if names - {prov.dataset}:
        raise ProvenanceError(
            f"{path}: provenance names {prov.dataset!r}, the rows name {sorted(names)}"
        )
    return part


def gather_judgments(shards: Sequence[Path], records: Path | None = None) -> pd.DataFrame:
    """Shards concatenated (in record order when ``records`` is given) and checked."""
    if not shards:
        raise ShardError("no shard files given")
    frames = [read_table(p, "judgments") for p in shards]
    versions = {}
    for path, frame in zip(shards, frames, strict=True):
        for g, v in frame[["grader", "grader_version"]].drop_duplicates().itertuples(index=False):
            versions.setdefault((g, v), path)
    if len(versions) > 1:
        listed = "; ".join(f"{g} {v} (e.g. {p})" for (g, v), p in versions.items())
        raise ShardError(f"shards come from different graders or versions: {listed}; regrade")
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    dup = out["record_id"].duplicated()
    if dup.any():
        rid = out.loc[dup, "record_id"].iloc[0]
        raise ShardError(
            f"{int(dup.sum())} record(s) judged in more than one shard, e.g. {rid}; "
            "the shards overlap (were they made with different N?)"
        )
    if records is not None:
        ids = pd.read_parquet(records, columns=["record_id"])["record_id"].astype("string")
        have = pd.Index(out["record_id"])
        lacking = ~ids.isin(have)
        extra = ~have.isin(pd.Index(ids))
        if lacking.any() or extra.any():
            raise ShardError(
                f"shards judge {len(out)} records, {records} has {len(ids)}: "
                f"{int(lacking.sum())} record(s) lack a judgment (e.g. "
                f"{ids[lacking].iloc[0] if lacking.any() else '-'}), {int(extra.sum())} "
                f"judgment(s) match no record (e.g. "
                f"{have[extra][0] if extra.any() else '-'}); a shard is missing or stale"
            )
        out = out.set_index("record_id", drop=False).loc[ids.to_numpy()].reset_index(drop=True)
    out = out.astype(judgment_dtypes())
    return validate_judgments(out, where="gathered judgments")
