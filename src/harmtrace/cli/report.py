"""Report verbs: numbers as LaTeX macros, cited figures, the paper build."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harmtrace.cli._app import app, fail
from harmtrace.errors import HarmtraceError


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
        fail(exc)


@app.command()
def paper(
    out: Annotated[Path, typer.Option(help="the PDF to write")],
    numbers: Annotated[Path, typer.Option(help="macros from `harmtrace numbers`")],
    assets: Annotated[
        list[Path],
        typer.Argument(
            help="table/figure files or producer folders under results/{tables,figures}"
        ),
    ],
    sources: Annotated[Path, typer.Option(help="folder with main.tex")] = Path("paper"),
    build_dir: Annotated[Path, typer.Option(help="scratch folder")] = Path("results/paper/build"),
    study: Annotated[
        Path | None,
        typer.Option(
            help="study manifest the templates are rendered for (results/paper/study.json)"
        ),
    ] = None,
    numbers_dir: Annotated[
        Path | None,
        typer.Option(
            help="folder of the producers' numbers JSON that --numbers was written from "
            "(default: results/numbers beside results/paper)"
        ),
    ] = None,
) -> None:
    """Render the paper templates for the study, then build the PDF with latexmk, stamped
    with the git commit."""
    from harmtrace.report.paper import build_paper, collect_assets

    try:
        build_paper(
            sources,
            numbers,
            collect_assets(assets),
            out,
            build_dir,
            study=study,
            numbers_dir=numbers_dir,
        )
    except HarmtraceError as exc:
        fail(exc)


@app.command("cited-numbers")
def cited_numbers_cmd(out: Annotated[Path, typer.Option(help="numbers JSON")]) -> None:
    """Figures quoted from the seed study, as macros with one written-down source."""
    from harmtrace.report.macros import cited_numbers, write_numbers

    write_numbers(cited_numbers(), out, "cited")
