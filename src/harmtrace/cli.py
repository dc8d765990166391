"""The ``harmtrace`` command line: one verb per workflow stage.

Snakemake rules call these verbs; nothing imports this module, so all logic
stays testable in the library.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from harmtrace.errors import HarmtraceError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Reproducible LLM safety analysis: data, grading, transitions, paper.",
)
log = logging.getLogger("harmtrace")


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2) from exc


RawDir = Annotated[Path, typer.Option(help="where fetched files live")]
BadRows = Annotated[str, typer.Option(help="error | quarantine: what to do with bad rows")]
MaxChars = Annotated[int, typer.Option(help="longest allowed prompt/context/response")]


@app.command()
def datasets() -> None:
    """List the registered datasets with their access status and license."""
    from harmtrace.data.registry import load_registry

    for spec in load_registry().values():
        status = "mirrored" if spec.mirrored else "needs network"
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
) -> None:
    """Download datasets (or copy them from a mirror), verify sha256, write atomically."""
    from harmtrace.data.fetch import fetch_dataset, resolve_mirror
    from harmtrace.data.registry import get_dataset

    try:
        specs = [get_dataset(n) for n in names]
        where = resolve_mirror(mirror)
        for spec in specs:
            path = fetch_dataset(spec, raw_dir, where, timeout=timeout)
            log.info("%s ready: %s", spec.name, path)
    except HarmtraceError as exc:
        _fail(exc)


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
) -> None:
    """Write validated prompt-response records to results/records/<dataset>.parquet."""
    from harmtrace.data.normalize import normalize_dataset, normalize_user_file, write_normalized
    from harmtrace.data.registry import get_dataset

    try:
        if input is not None:
            if dataset is not None:
                raise HarmtraceError("give either a DATASET or --input, not both")
            if not name or not prompt_column:
                raise HarmtraceError("--input needs --name and --prompt-column")
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
            label = name
        else:
            if dataset is None:
                raise HarmtraceError("give a DATASET name or --input FILE")
            result = normalize_dataset(
                get_dataset(dataset),
                raw_dir,
                bad_rows=bad_rows,  # type: ignore[arg-type]
                max_text_chars=max_text_chars,
            )
            label = dataset
        out = out or Path("results/records") / f"{label}.parquet"
        quarantine = quarantine or out.with_name(f"{label}.quarantine.jsonl")
        write_normalized(result, out, quarantine)
    except (HarmtraceError, ValueError) as exc:
        _fail(exc)


@app.command()
def numbers(
    out: Annotated[Path, typer.Argument(help="the .tex file of macros to write")],
    inputs: Annotated[list[Path], typer.Argument(help="numbers JSON files from producers")],
) -> None:
    """Merge every producer's numbers into one file of LaTeX macros."""
    from harmtrace.report.macros import collect_macros

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(collect_macros(inputs), encoding="utf-8")
    except HarmtraceError as exc:
        _fail(exc)


@app.command()
def paper(
    out: Annotated[Path, typer.Option(help="the PDF to write")],
    numbers: Annotated[Path, typer.Option(help="macros from `harmtrace numbers`")],
    sources: Annotated[Path, typer.Option(help="folder with main.tex")] = Path("paper"),
    figures: Annotated[Path, typer.Option(help="results figures folder")] = Path("results/figures"),
    tables: Annotated[Path, typer.Option(help="results tables folder")] = Path("results/tables"),
    build_dir: Annotated[Path, typer.Option(help="scratch folder")] = Path("results/paper/build"),
) -> None:
    """Build the paper PDF with latexmk, stamped with the git commit."""
    from harmtrace.report.paper import build_paper

    try:
        build_paper(sources, numbers, {"figures": figures, "tables": tables}, out, build_dir)
    except HarmtraceError as exc:
        _fail(exc)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
