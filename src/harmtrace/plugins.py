"""One plugin registry for every kind of backend: name -> pydantic spec -> implementation.

Graders, tree generators and targets (models under study) are all looked up the same way,
so a judgment, a tree or an answer records which backend and which validated settings made
it. A kind is a :class:`Registry`; an implementation is a class with a ``name`` and a
pydantic ``Spec`` that is built from one config block.

Where implementations come from, in this order:

1. classes registered with :meth:`Registry.register` (a decorator) when their module is
   imported;
2. built-ins: a name -> module table per kind, imported lazily, so asking for one backend
   never imports another's dependencies (the ``openai`` grader never imports torch);
3. entry points: another installed package adds a backend without editing harmtrace by
   declaring, in its own ``pyproject.toml``::

       [project.entry-points."harmtrace.graders"]
       mygrader = "mypackage.grading"      # a module that registers, or
       other = "mypackage.grading:Other"   # the class itself

   The groups are ``harmtrace.graders``, ``harmtrace.tree_generators`` and
   ``harmtrace.targets``. Entry points are read once, when a name is first missing.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from harmtrace.errors import HarmtraceError

C = TypeVar("C", bound=type)


class PluginError(HarmtraceError):
    """A backend name is unknown, registered twice, or its config does not fit its spec."""


@dataclass
class Registry(Generic[C]):
    """The backends of one kind.

    ``kind`` names it in messages ("grader"), ``where`` is the config path of one backend's
    block with ``{name}`` in it ("grader.{name}"), ``builtin`` maps built-in names to the
    module that registers them, and ``group`` is the entry-point group third parties use.
    ``error`` is the exception class raised (each kind keeps its own for callers that
    catch it).
    """

    kind: str
    where: str
    group: str
    builtin: Mapping[str, str]
    error: type[HarmtraceError] = PluginError
    missing_hint: str = ""
    classes: dict[str, C] = field(default_factory=dict)
    _plugins: dict[str, EntryPoint] | None = field(default=None, repr=False)

    def register(self, cls: C) -> C:
        """Class decorator: make ``cls`` available under ``cls.name``."""
        name = cls.name  # type: ignore[attr-defined]
        if name in self.classes and self.classes[name] is not cls:
            raise self.error(f"{self.kind} {name!r} is registered twice")
        self.classes[name] = cls
        return cls

    def plugins(self) -> dict[str, EntryPoint]:
        """Entry points of other installed packages for this kind (read once)."""
        if self._plugins is None:
            self._plugins = {ep.name: ep for ep in entry_points(group=self.group)}
        return self._plugins

    def names(self) -> list[str]:
        return sorted(set(self.builtin) | set(self.classes) | set(self.plugins()))

    def get(self, name: str) -> C:
        """The implementation registered under ``name``, importing it on first use."""
        if name not in self.classes:
            self._load(name)
        if name not in self.classes:
            raise self.error(f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}")
        return self.classes[name]

    def _load(self, name: str) -> None:
        try:
            if name in self.builtin:
                importlib.import_module(self.builtin[name])
            elif name in self.plugins():
                loaded = self.plugins()[name].load()
                if isinstance(loaded, type) and name not in self.classes:
                    self.register(loaded)  # type: ignore[arg-type]
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] == "harmtrace":
                raise  # a broken harmtrace module, not a missing dependency
            raise self.error(
                f"{self.kind} {name!r} needs a module that is not installed ({exc.name})"
                + self.missing_hint
            ) from exc

    def spec(self, name: str, options: Mapping[str, Any] | None = None, **overrides: Any) -> Any:
        """The backend's validated spec from its config block plus overrides (None = keep)."""
        return self.validate(name, name, options, **overrides)

    def validate(
        self, backend: str, block: str, options: Mapping[str, Any] | None, **overrides: Any
    ) -> Any:
        """``backend``'s spec from the config block named ``block`` (messages name the key)."""
        cls = self.get(backend)
        values = {**(options or {}), **{k: v for k, v in overrides.items() if v is not None}}
        try:
            return cls.Spec.model_validate(values)  # type: ignore[attr-defined]
        except ValidationError as exc:
            where = self.where.format(name=block)
            problems = "; ".join(
                f"{where}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                for err in exc.errors()
            )
            raise self.error(f"invalid config for {self.kind} {block!r}: {problems}") from exc

    def make(self, name: str, options: Mapping[str, Any] | None = None, **overrides: Any) -> Any:
        """A ready implementation built from its validated spec."""
        return self.get(name)(self.spec(name, options, **overrides))

    def module_of(self, name: str) -> str:
        """The module that implements ``name`` (what a job's code hash must cover)."""
        if name in self.builtin:
            return self.builtin[name]
        if name in self.plugins():
            return self.plugins()[name].module
        return self.get(name).__module__

    def having(self, attribute: str, names: list[str] | None = None) -> list[str]:
        """Names (of ``names``, default all) whose class sets ``attribute`` true: how the
        workflow asks "which configured backend trains in the DAG" without naming one."""
        return [n for n in (self.names() if names is None else names) if self.flag(n, attribute)]

    def flag(self, name: str, attribute: str) -> bool:
        return name in self.names() and bool(getattr(self.get(name), attribute, False))
