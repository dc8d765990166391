"""Verb of the study: the manifest the paper is rendered for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from harmtrace.cli._app import app


@app.command("study-manifest")
def study_manifest_cmd(
    config_json: Annotated[str, typer.Option(help="the run's config as JSON")],
    out: Annotated[Path, typer.Option(help="results/paper/study.json")],
    numbers: Annotated[
        list[Path], typer.Argument(help="the numbers files the paper reads (not opened)")
    ],
) -> None:
    """Write which datasets, targets, graders and analyses the paper is rendered for."""
    from harmtrace.study_manifest import study_manifest

    manifest = study_manifest(json.loads(config_json), numbers)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
