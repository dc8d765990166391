"""Loading judged records for the notebooks, from wherever a notebook is run.

Papermill runs notebooks with the project root as working directory; JupyterLab runs
them in ``notebooks/``. Relative paths in a notebook's parameters are therefore resolved
against the project root (the nearest folder upwards holding ``pyproject.toml`` and
``notebooks/``), so every notebook runs as-is in both places.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from harmtrace.data.provenance import read_records
from harmtrace.errors import HarmtraceError
from harmtrace.io import read_table


class MissingResultsError(HarmtraceError):
    """A notebook input (records or judgments) has not been computed yet."""


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: cwd) that holds the project."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "notebooks").is_dir():
            return folder
    return here


def project_path(path: str | Path, start: Path | None = None) -> Path:
    """``path`` as given when absolute or present from the cwd, else under the project root."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return project_root(start) / p


def load_judged(
    datasets: Sequence[str],
    grader: str,
    records_dir: str | Path = "results/records",
    judgments_dir: str | Path = "results/judgments",
) -> pd.DataFrame:
    """Records of ``datasets`` joined to ``grader``'s judgments, with a ``sample`` column.

    A dataset whose records carry ``hh_side`` splits into one sample per side (see
    :func:`harmtrace.analysis.transition_report.sample_label`).
    """
    from harmtrace.analysis.transition_report import merge_judged

    if not datasets:
        raise HarmtraceError("no datasets given: set the notebook's `datasets` parameter")
    frames = []
    for name in datasets:
        rec = project_path(records_dir) / f"{name}.parquet"
        jud = project_path(judgments_dir) / grader / f"{name}.parquet"
        for path in (rec, jud):
            if not path.is_file():
                raise MissingResultsError(
                    f"{path} does not exist: run `snakemake --cores 2 {path}` (or the whole "
                    f"workflow) first, or change the notebook's datasets/grader parameters"
                )
        records = read_records(rec, dataset=name)  # schema, provenance, expected count
        try:
            frames.append(merge_judged(records, read_table(jud, "judgments")))
        except ValueError as exc:
            raise HarmtraceError(f"{jud}: {exc}") from exc
    return pd.concat(frames, ignore_index=True)


def sample_labels(samples) -> dict[str, str]:
    """Display label of each sample: the dataset name, with the side in parentheses."""
    out = {}
    for s in samples:
        dataset, _, side = str(s).partition(":")
        out[str(s)] = f"{dataset} ({side})" if side else dataset
    return out


def load_judgments(
    datasets: Sequence[str], grader: str, judgments_dir: str | Path = "results/judgments"
) -> pd.DataFrame | None:
    """Another grader's judgments of ``datasets`` (those it has graded), or None if none.

    Used for agreement between graders, e.g. a human-labelled reference.
    """
    frames = []
    for name in datasets:
        path = project_path(judgments_dir) / grader / f"{name}.parquet"
        if path.is_file():
            frames.append(read_table(path, "judgments"))
    return pd.concat(frames, ignore_index=True) if frames else None
