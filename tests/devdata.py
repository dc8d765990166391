"""Records straight from the benchmark mirror, for tests and benchmarks (not shipped).

They go through the data layer (:func:`harmtrace.data.fetch.fetch_dataset` into a
scratch folder, then :func:`harmtrace.data.normalize.normalize_dataset`), so tests and
benchmarks see exactly the records the workflow sees, without running it.
"""

from __future__ import annotations

import os
import tempfile
from functools import cache
from pathlib import Path

import pandas as pd

from harmtrace.data.fetch import MIRROR_ENV, fetch_dataset
from harmtrace.data.normalize import normalize_dataset
from harmtrace.data.registry import get_dataset

ROOT = Path(__file__).resolve().parents[1]


def mirror_root() -> Path:
    """The benchmark mirror: ``$HARMTRACE_DATA_MIRROR``, else ``shared/datasets`` beside the
    checkout (where CI puts it), else beside the working directory."""
    env = os.environ.get(MIRROR_ENV)
    candidates = [Path(env)] if env else []
    candidates += [ROOT.parent / "shared" / "datasets", Path.cwd().parent / "shared" / "datasets"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    raise FileNotFoundError(f"no benchmark mirror found: set {MIRROR_ENV}")


@cache
def _records(dataset: str, mirror: Path) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as raw:
        fetch_dataset(get_dataset(dataset), Path(raw), mirror)
        return normalize_dataset(get_dataset(dataset), Path(raw)).records


def mirror_records(dataset: str, mirror: Path | None = None) -> pd.DataFrame:
    """Validated records of one mirrored dataset (a fresh copy on every call)."""
    return _records(dataset, Path(mirror or mirror_root()).resolve()).copy()


def write_user_records(frame: pd.DataFrame, path: Path, name: str) -> pd.DataFrame:
    """Write ``frame`` as a user dataset ``name`` (relabelled, with user provenance), the
    way tests hand a subset or a variant of a benchmark to the CLI."""
    from harmtrace.data.provenance import Provenance
    from harmtrace.io import write_table

    out = frame.copy()
    out["dataset"] = pd.array([name] * len(out), dtype="string")
    prov = Provenance(
        kind="user", dataset=name, source="test", files=(), n_records=len(out), n_quarantined=0
    )
    write_table(out, path, "records", metadata=prov.to_metadata())
    return out
