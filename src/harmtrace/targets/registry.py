"""Targets (models under study) by backend: the target kind of :mod:`harmtrace.plugins`.

A built-in backend lives in its own module and registers itself with
:func:`register_target` when imported; it is imported lazily, so the OpenAI-compatible
target never imports torch and the in-process one never imports an HTTP client. Other
packages add backends through the ``harmtrace.targets`` entry-point group. Unlike graders,
a target's config block is named for the condition (``targets.<name>``) and its
``backend`` key picks the implementation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harmtrace.errors import HarmtraceError
from harmtrace.plugins import Registry
from harmtrace.targets.base import Target, TargetSpec


class TargetConfigError(HarmtraceError):
    """A target's backend is unknown or its config block does not fit the backend's spec."""


TARGETS: Registry[type[Target]] = Registry(
    kind="target backend",
    where="targets.{name}",
    group="harmtrace.targets",
    builtin={
        "transformers": "harmtrace.targets.transformers",
        "openai": "harmtrace.targets.openai",
    },
    error=TargetConfigError,
    missing_hint="; install harmtrace with the `model` extra",
)
BUILTIN = TARGETS.builtin
"""Backend name -> module that registers it."""

register_target = TARGETS.register
backend_names = TARGETS.names
target_class = TARGETS.get


def make_target_spec(name: str, block: Mapping[str, Any], **overrides: Any) -> TargetSpec:
    """Validate ``targets.<name>`` (its ``backend`` key picks the spec; None overrides kept)."""
    backend = block.get("backend")
    if not backend:
        raise TargetConfigError(f"targets.{name}: missing `backend` ({', '.join(backend_names())})")
    values = {k: v for k, v in block.items() if k != "backend"}
    return TARGETS.validate(str(backend), name, values, **overrides)


def make_target(name: str, block: Mapping[str, Any], **overrides: Any) -> Target:
    """A ready target: ``make_target("smollm2-plain", config["targets"]["smollm2-plain"])``."""
    return target_class(str(block.get("backend")))(make_target_spec(name, block, **overrides))
