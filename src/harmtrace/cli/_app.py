"""The typer app, shared option types and the error exit every verb uses."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

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


def fail(exc: Exception) -> NoReturn:
    """One line on stderr and exit 2: the message, not a traceback, is for the user."""
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2) from exc


RawDir = Annotated[Path, typer.Option(help="where fetched files live")]
BadRows = Annotated[str, typer.Option(help="error | quarantine: what to do with bad rows")]
MaxChars = Annotated[int, typer.Option(help="longest allowed prompt/context/response")]
AllowUnpinned = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-unpinned",
        help="dataset whose files have no pinned sha256 but may be used anyway (repeatable)",
    ),
]


def mapping_option(value: str | None, what: str) -> dict[str, Any]:
    """An option holding a mapping (a config block, profiles, settings): inline JSON, or
    ``@path`` to a JSON/YAML file; empty means ``{}``."""
    import json

    import yaml

    from harmtrace.errors import HarmtraceError

    if not value:
        return {}
    try:
        if value.startswith("@"):
            out = yaml.safe_load(Path(value[1:]).read_text(encoding="utf-8"))
        else:
            out = json.loads(value)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise HarmtraceError(f"{what}: not JSON or a readable @file ({exc})") from exc
    if out is None:
        return {}
    if not isinstance(out, dict):
        raise HarmtraceError(f"{what} must be a mapping (a JSON object)")
    return out
