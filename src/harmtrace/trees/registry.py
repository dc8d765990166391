"""Tree generators by name, each with a pydantic spec: the tree-generator kind of
:mod:`harmtrace.plugins`.

Built-in generators register themselves with :func:`register_generator` when their
module is imported and are imported lazily, so asking for the offline proxy never imports
an HTTP client and the LLM generator never loads the grader. Other packages add generators
through the ``harmtrace.tree_generators`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harmtrace.errors import HarmtraceError
from harmtrace.plugins import Registry
from harmtrace.trees.base import TreeGenerator


class GeneratorConfigError(HarmtraceError):
    """A generator name is unknown or its config block does not fit its spec."""


GENERATORS: Registry[type[TreeGenerator]] = Registry(
    kind="tree generator",
    where="trees.generator.{name}",
    group="harmtrace.tree_generators",
    builtin={
        "embedded": "harmtrace.trees.proxy",
        "openai": "harmtrace.trees.llm_generator",
    },
    error=GeneratorConfigError,
)
BUILTIN = GENERATORS.builtin
"""Generator name -> module that registers it."""
DEFAULT_GENERATOR = "embedded"
"""The generator a command uses when none is named: the offline one (no endpoint)."""

register_generator = GENERATORS.register
generator_names = GENERATORS.names
generator_class = GENERATORS.get
make_spec = GENERATORS.spec


def make_generator(
    name: str, options: Mapping[str, Any] | None = None, **overrides: Any
) -> TreeGenerator:
    """A ready generator from the block ``trees.generator.<name>`` of the config."""
    return GENERATORS.make(name, options, **overrides)
