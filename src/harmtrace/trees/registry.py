"""Tree generators by name, each with a pydantic spec (the pattern of
:mod:`harmtrace.graders.registry`).

Built-in generators register themselves with :func:`register_generator` when their
module is imported; :func:`generator_class` imports a built-in lazily, so asking for
``embedded`` never imports an HTTP client and ``openai`` never loads the grader.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import ValidationError

from harmtrace.errors import HarmtraceError
from harmtrace.trees.base import TreeGenerator

BUILTIN: dict[str, str] = {
    "embedded": "harmtrace.trees.proxy",
    "openai": "harmtrace.trees.llm_generator",
}
"""Generator name -> module that registers it."""

GENERATORS: dict[str, type[TreeGenerator]] = {}

T = TypeVar("T", bound=type[TreeGenerator])


class GeneratorConfigError(HarmtraceError):
    """A generator name is unknown or its config block does not fit its spec."""


def register_generator(cls: T) -> T:
    """Class decorator: make a generator available under ``cls.name``."""
    if cls.name in GENERATORS and GENERATORS[cls.name] is not cls:
        raise GeneratorConfigError(f"tree generator {cls.name!r} is registered twice")
    GENERATORS[cls.name] = cls
    return cls


def generator_names() -> list[str]:
    return sorted(set(BUILTIN) | set(GENERATORS))


def generator_class(name: str) -> type[TreeGenerator]:
    if name not in GENERATORS and name in BUILTIN:
        try:
            importlib.import_module(BUILTIN[name])
        except ModuleNotFoundError as exc:
            raise GeneratorConfigError(
                f"tree generator {name!r} needs a module that is not installed ({exc.name})"
            ) from exc
    if name not in GENERATORS:
        raise GeneratorConfigError(
            f"unknown tree generator {name!r}; registered: {', '.join(generator_names())}"
        )
    return GENERATORS[name]


def make_spec(name: str, options: Mapping[str, Any] | None = None, **overrides: Any) -> Any:
    """The generator's validated spec from a config block plus overrides (None = keep)."""
    cls = generator_class(name)
    values = {**(options or {}), **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return cls.Spec.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"trees.generator.{name}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors()
        )
        raise GeneratorConfigError(
            f"invalid config for tree generator {name!r}: {problems}"
        ) from exc


def make_generator(
    name: str, options: Mapping[str, Any] | None = None, **overrides: Any
) -> TreeGenerator:
    """A ready generator, e.g. ``make_generator("embedded", config_block)`` with the block
    ``trees.generator.embedded`` of the config."""
    return generator_class(name)(make_spec(name, options, **overrides))
