"""Model verbs: fetch and convert the weights of a registered target model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harmtrace.cli._app import RawDir, app, fail, log
from harmtrace.errors import HarmtraceError


@app.command("prepare-model")
def prepare_model_cmd(
    name: Annotated[str, typer.Argument(help="registered model name (see models.yaml)")],
    raw_dir: RawDir = Path("data/raw"),
    out: Annotated[
        Path | None, typer.Option(help="converted folder; default results/models/targets/NAME")
    ] = None,
) -> None:
    """Download a registered model's pinned weights, verify them, convert them to a
    safetensors folder with a manifest (weights sha256, chat template sha256, source)."""
    from harmtrace.targets.weights import prepare_model, read_manifest

    try:
        folder = prepare_model(name, raw_dir, out or Path("results/models/targets") / name)
        manifest = read_manifest(folder)
        log.info("%s ready: %s (weights sha256 %s)", name, folder, manifest["weights_sha256"])
    except HarmtraceError as exc:
        fail(exc)
