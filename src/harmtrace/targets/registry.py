"""Targets (models under study) by name: name -> spec -> implementation.

The pattern of the grader and tree-generator registries: a built-in backend lives in its
own module and registers itself with :func:`register_target` when imported, and
:func:`target_class` imports it lazily, so the ``openai`` target never imports torch and
the ``transformers`` target never imports an HTTP client.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import ValidationError

from harmtrace.errors import HarmtraceError
from harmtrace.targets.base import Target, TargetSpec

BUILTIN: dict[str, str] = {
    "transformers": "harmtrace.targets.transformers",
    "openai": "harmtrace.targets.openai",
}
"""Backend name -> module that registers it."""

TARGETS: dict[str, type[Target]] = {}

T = TypeVar("T", bound=type[Target])


class TargetConfigError(HarmtraceError):
    """A target's backend is unknown or its config block does not fit the backend's spec."""


def register_target(cls: T) -> T:
    if cls.name in TARGETS and TARGETS[cls.name] is not cls:
        raise TargetConfigError(f"target backend {cls.name!r} is registered twice")
    TARGETS[cls.name] = cls
    return cls


def backend_names() -> list[str]:
    return sorted(set(BUILTIN) | set(TARGETS))


def target_class(backend: str) -> type[Target]:
    if backend not in TARGETS and backend in BUILTIN:
        try:
            importlib.import_module(BUILTIN[backend])
        except ModuleNotFoundError as exc:
            raise TargetConfigError(
                f"target backend {backend!r} needs a module that is not installed "
                f"({exc.name}); install harmtrace with the `model` extra"
            ) from exc
    if backend not in TARGETS:
        raise TargetConfigError(
            f"unknown target backend {backend!r}; registered: {', '.join(backend_names())}"
        )
    return TARGETS[backend]


def make_target_spec(name: str, block: Mapping[str, Any], **overrides: Any) -> TargetSpec:
    """Validate ``targets.<name>`` (its ``backend`` key picks the spec; None overrides kept)."""
    values = {k: v for k, v in block.items() if k != "backend"}
    values.update({k: v for k, v in overrides.items() if v is not None})
    backend = block.get("backend")
    if not backend:
        raise TargetConfigError(f"targets.{name}: missing `backend` ({', '.join(backend_names())})")
    cls = target_class(str(backend))
    try:
        return cls.Spec.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"targets.{name}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors()
        )
        raise TargetConfigError(f"invalid config for target {name!r}: {problems}") from exc


def make_target(name: str, block: Mapping[str, Any], **overrides: Any) -> Target:
    """A ready target: ``make_target("smollm2-plain", config["targets"]["smollm2-plain"])``."""
    return target_class(str(block.get("backend")))(make_target_spec(name, block, **overrides))
