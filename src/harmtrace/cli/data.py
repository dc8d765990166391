"""Data verbs: list, fetch and normalize datasets; count records for the paper."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from harmtrace.cli._app import AllowUnpinned, BadRows, MaxChars, RawDir, app, fail, log
from harmtrace.errors import HarmtraceError

if TYPE_CHECKING:
    from harmtrace.data.normalize import Normalized


@app.command()
def datasets() -> None:
    """List the registered datasets with their access status and license."""
    from harmtrace.data.registry import load_registry

    for spec in load_registry().values():
        status = "mirrored" if spec.mirrored else "needs network"
        if spec.kind != "records":
            status += f", {spec.kind}"
        if spec.access == "gated":
            status += f", gated (needs ${spec.token_env})"
        typer.echo(f"{spec.name:22s} {status:42s} {spec.license:14s} {spec.title}")


@app.command()
def fetch(
    names: Annotated[list[str], typer.Argument(help="dataset names (see `harmtrace datasets`)")],
    raw_dir: RawDir = Path("data/raw"),
    mirror: Annotated[
        str | None, typer.Option(help="local mirror folder; default $HARMTRACE_DATA_MIRROR")
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds per HTTP request")] = 60.0,
    allow_unpinned: AllowUnpinned = None,
) -> None:
    """Download datasets (or copy them from a mirror), verify sha256, write atomically."""
    from harmtrace.data.fetch import fetch_dataset, resolve_mirror
    from harmtrace.data.registry import get_dataset

    try:
        specs = [get_dataset(n) for n in names]
        where = resolve_mirror(mirror)
        for spec in specs:
            path = fetch_dataset(
                spec, raw_dir, where, timeout=timeout, allow_unpinned=allow_unpinned or ()
            )
            log.info("%s ready: %s", spec.name, path)
    except HarmtraceError as exc:
        fail(exc)


def _records_name(
    dataset: str | None, input: Path | None, name: str | None, prompt_column: str | None
) -> str:
    """The records' dataset name; a registered DATASET and --input exclude each other."""
    if input is not None:
        if dataset is not None:
            raise HarmtraceError("give either a DATASET or --input, not both")
        if not name or not prompt_column:
            raise HarmtraceError("--input needs --name and --prompt-column")
        return name
    if dataset is None:
        raise HarmtraceError("give a DATASET name or --input FILE")
    return dataset


def _log_sample(result: Normalized) -> None:
    """Say in the log how much of the table data.sample kept."""
    note = result.provenance.sample if result.provenance is not None else None
    if note is not None:
        log.info("data.sample: kept %d of %d %s units (%d of %d records)",
                 note.units_kept, note.units_total, note.unit, len(result.records),
                 note.records_total)  # fmt: skip


@app.command()
def normalize(
    dataset: Annotated[str | None, typer.Argument(help="registered dataset name")] = None,
    raw_dir: RawDir = Path("data/raw"),
    out: Annotated[Path | None, typer.Option(help="records parquet")] = None,
    quarantine: Annotated[Path | None, typer.Option(help="side file for bad rows (JSONL)")] = None,
    bad_rows: BadRows = "error",
    max_text_chars: MaxChars = 100_000,
    input: Annotated[Path | None, typer.Option(help="your own .csv/.jsonl/.parquet")] = None,
    name: Annotated[str | None, typer.Option(help="dataset name for --input")] = None,
    prompt_column: Annotated[str | None, typer.Option(help="prompt column of --input")] = None,
    response_column: Annotated[str | None, typer.Option(help="response column")] = None,
    id_column: Annotated[str | None, typer.Option(help="item id column")] = None,
    context_column: Annotated[str | None, typer.Option(help="earlier-turns column")] = None,
    response_source: Annotated[str | None, typer.Option(help="model that wrote responses")] = None,
    allow_unpinned: AllowUnpinned = None,
    sample: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="keep a stable sample of this many units (records, or the registry's "
            "sample_unit groups); data.sample",
        ),
    ] = None,
) -> None:
    """Write validated prompt-response records to results/records/<dataset>.parquet."""
    from harmtrace.data.normalize import normalize_dataset, normalize_user_file, write_normalized
    from harmtrace.data.registry import get_dataset
    from harmtrace.io import check_output_file

    try:
        label = _records_name(dataset, input, name, prompt_column)
        out = check_output_file(out or Path("results/records") / f"{label}.parquet", "--out")
        quarantine = check_output_file(
            quarantine or out.with_name(f"{label}.quarantine.jsonl"), "--quarantine"
        )
        if input is not None:
            assert name is not None and prompt_column is not None
            result = normalize_user_file(
                input,
                name,
                prompt_column,
                response_column,
                id_column=id_column,
                context_column=context_column,
                response_source=response_source,
                bad_rows=bad_rows,  # type: ignore[arg-type]
                max_text_chars=max_text_chars,
            )
        else:
            if get_dataset(label).kind != "records":
                log.info("%s is reference data, not records: nothing to normalize", label)
                return
            result = normalize_dataset(
                get_dataset(label),
                raw_dir,
                bad_rows=bad_rows,  # type: ignore[arg-type]
                max_text_chars=max_text_chars,
                allow_unpinned=allow_unpinned or (),
            )
        if sample is not None:
            from harmtrace.data.sample import sample_normalized

            unit = None if input is not None else get_dataset(label).sample_unit
            result = sample_normalized(result, sample, unit)
            _log_sample(result)
        write_normalized(result, out, quarantine)
    except (HarmtraceError, ValueError) as exc:
        fail(exc)


@app.command("data-numbers")
def data_numbers_cmd(
    out: Annotated[Path, typer.Option(help="numbers JSON")],
    records: Annotated[list[Path], typer.Argument(help="records parquet files")],
) -> None:
    """Record counts per dataset for the paper."""
    from harmtrace.data.provenance import read_records
    from harmtrace.report.grader_report import data_numbers
    from harmtrace.report.macros import write_numbers

    try:
        counts = {}
        for path in records:
            df = read_records(path)
            counts[path.stem] = {
                "records": len(df),
                "with_response": int(df["response"].notna().sum()),
            }
        write_numbers(data_numbers(counts), out, "data")
    except HarmtraceError as exc:
        fail(exc)
