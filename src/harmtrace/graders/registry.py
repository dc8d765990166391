"""Grader backends by name, each with a pydantic spec: the pattern of the dataset and
extractor registries, so a judgment says which backend and settings made it.

Built-in backends live in their own modules and register themselves with
:func:`register_grader` when imported; :func:`grader_class` imports a built-in lazily,
so asking for ``embedded`` never imports an HTTP client and vice versa. A third-party
backend registers by importing its module before :func:`make_grader` is called.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import ValidationError

from harmtrace.errors import HarmtraceError
from harmtrace.graders.base import Grader

BUILTIN: dict[str, str] = {
    "embedded": "harmtrace.graders.embedded",
    "openai": "harmtrace.graders.openai",
    "human": "harmtrace.graders.human",
}
"""Backend name -> module that registers it."""

GRADERS: dict[str, type[Grader]] = {}

G = TypeVar("G", bound=type[Grader])


class GraderConfigError(HarmtraceError):
    """A grader name is unknown or its config block does not fit the backend's spec."""


def register_grader(cls: G) -> G:
    """Class decorator: make a backend available under ``cls.name``."""
    if cls.name in GRADERS and GRADERS[cls.name] is not cls:
        raise GraderConfigError(f"grader {cls.name!r} is registered twice")
    GRADERS[cls.name] = cls
    return cls


def grader_names() -> list[str]:
    return sorted(set(BUILTIN) | set(GRADERS))


def grader_class(name: str) -> type[Grader]:
    if name not in GRADERS and name in BUILTIN:
        try:
            importlib.import_module(BUILTIN[name])
        except ModuleNotFoundError as exc:
            raise GraderConfigError(
                f"grader {name!r} needs a module that is not installed ({exc.name})"
            ) from exc
    if name not in GRADERS:
        raise GraderConfigError(f"unknown grader {name!r}; registered: {', '.join(grader_names())}")
    return GRADERS[name]


def make_spec(name: str, options: Mapping[str, Any] | None = None, **overrides: Any) -> Any:
    """The backend's validated spec from a config block plus overrides (None = keep)."""
    cls = grader_class(name)
    values = {**(options or {}), **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return cls.Spec.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"grader.{name}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors()
        )
        raise GraderConfigError(f"invalid config for grader {name!r}: {problems}") from exc


def make_grader(name: str, options: Mapping[str, Any] | None = None, **overrides: Any) -> Grader:
    """A ready backend: ``make_grader("embedded", config["grader"]["embedded"])``."""
    return grader_class(name)(make_spec(name, options, **overrides))
