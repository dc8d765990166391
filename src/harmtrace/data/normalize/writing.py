"""Writing records and their quarantine side file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from harmtrace.data.normalize.cells import escape_text
from harmtrace.data.normalize.records import Normalized
from harmtrace.io import check_output_file, write_table

log = logging.getLogger("harmtrace.data.normalize")  # the package: log lines keep their name


def quarantine_lines(quarantined: pd.DataFrame) -> list[str]:
    """The quarantine side file's JSON lines (sorted keys, one per bad row)."""
    return [
        json.dumps(
            {
                "dataset": r["dataset"],
                "source_row": None if pd.isna(r["source_row"]) else int(r["source_row"]),
                "item_id": r["item_id"],
                "reason": escape_text(r["reason"]),
                "row": json.loads(r["row"]),
            },
            ensure_ascii=False,
            sort_keys=True,
        )
        for r in quarantined.to_dict("records")
    ]


def write_quarantine(quarantined: pd.DataFrame, path: Path) -> None:
    """Write the side file, empty when nothing was quarantined (so its absence means
    the step did not run)."""
    check_output_file(path, "quarantine file")
    lines = quarantine_lines(quarantined)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def write_normalized(result: Normalized, out: Path, quarantine_out: Path | None) -> None:
    """Write records (with provenance in their parquet metadata) and the quarantine file."""
    meta = result.provenance.to_metadata() if result.provenance is not None else None
    write_table(result.records, out, "records", metadata=meta)
    if quarantine_out is not None:
        write_quarantine(result.quarantined, quarantine_out)
    n_bad = len(result.quarantined)
    log.info("wrote %d records to %s", len(result.records), out)
    if n_bad:
        log.warning("quarantined %d bad row(s) to %s", n_bad, quarantine_out)
    else:
        log.info("quarantined 0 rows")
