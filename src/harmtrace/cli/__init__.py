"""The ``harmtrace`` command line: one verb per workflow stage.

Snakemake rules call these verbs; nothing imports this package, so all logic stays
testable in the library. Each stage's verbs live in their own module, registered on
one typer app by importing it here.
"""

from harmtrace.cli import (  # noqa: F401  (registers the verbs)
    data,
    grade,
    models,
    moderate,
    report,
    respond,
    study,
    transfer,
    trees,
)
from harmtrace.cli._app import app


def main() -> None:  # pragma: no cover - console entry
    app()


__all__ = ["app", "main"]
