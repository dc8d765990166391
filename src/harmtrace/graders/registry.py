"""Grader backends by name, each with a pydantic spec: the grader kind of
:mod:`harmtrace.plugins`, so a judgment says which backend and settings made it.

Built-in backends live in their own modules and register themselves with
:func:`register_grader` when imported; the registry imports a built-in lazily, so asking
for one backend never imports another's client. Other packages add backends through the
``harmtrace.graders`` entry-point group.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from harmtrace.errors import HarmtraceError
from harmtrace.graders.base import Grader
from harmtrace.plugins import Registry


class GraderConfigError(HarmtraceError):
    """A grader name is unknown or its config block does not fit the backend's spec."""


GRADERS: Registry[type[Grader]] = Registry(
    kind="grader",
    where="grader.{name}",
    group="harmtrace.graders",
    builtin={
        "embedded": "harmtrace.graders.embedded",
        "openai": "harmtrace.graders.openai",
        "human": "harmtrace.graders.human",
    },
    error=GraderConfigError,
)
BUILTIN = GRADERS.builtin
"""Backend name -> module that registers it."""

register_grader = GRADERS.register
grader_names = GRADERS.names
grader_class = GRADERS.get
make_spec = GRADERS.spec


def make_grader(name: str, options: Mapping[str, Any] | None = None, **overrides: Any) -> Grader:
    """A ready backend from the block ``grader.<name>`` of the config."""
    return GRADERS.make(name, options, **overrides)


def default_grader() -> str:
    """The backend used when a command names none: the first built-in one the workflow
    trains itself (offline, no endpoint or labels needed)."""
    return GRADERS.having("trains_in_workflow", list(GRADERS.builtin))[0]


def training_api(name: str | None = None) -> Any:
    """The training interface (:class:`~harmtrace.graders.base.TrainingAPI`) of a grader the
    workflow trains: the module its class names in ``training_api``. The verbs that train,
    evaluate and load such a model reach it here instead of importing a backend by name."""
    name = name or default_grader()
    cls = GRADERS.get(name)
    if not (cls.trains_in_workflow and cls.training_api):
        raise GraderConfigError(f"grader {name!r} is not one the workflow trains")
    return importlib.import_module(cls.training_api)
