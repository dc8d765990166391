"""One plugin registry for every kind of backend: name -> pydantic spec -> implementation.

Graders, tree generators, targets (models under study), feature extractors and moderation
policies are all looked up the same way, so a judgment, a tree, an answer or a decision
records which implementation and which validated settings made it. A kind is a
:class:`Registry`; an implementation is a class with a ``name`` and a pydantic ``Spec``
that is built from one config block. A *data* kind (policies) registers validated specs
instead of classes: its ``adopt`` hook turns a shipped file or what an entry point loads
into the registered item, so lookup, entry points and errors stay this module's.

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

   The groups are ``harmtrace.graders``, ``harmtrace.tree_generators``,
   ``harmtrace.targets``, ``harmtrace.extractors`` (a
   :class:`~harmtrace.graders.base.FeatureExtractor` subclass) and ``harmtrace.policies``
   (a ``PolicySpec``, a mapping or a YAML path: :mod:`harmtrace.moderate.policies`).
   Entry points are read once, when a name is first missing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from harmtrace.errors import HarmtraceError

C = TypeVar("C")


class PluginError(HarmtraceError):
    """A backend name is unknown, registered twice, or its config does not fit its spec."""


@dataclass
class Registry(Generic[C]):
    """The backends of one kind.

    ``kind`` names it in messages ("grader"), ``where`` is the config path of one backend's
    block with ``{name}`` in it ("grader.{name}"), ``builtin`` maps built-in names to the
    module that registers them, and ``group`` is the entry-point group third parties use.
    ``error`` is the exception class raised (each kind keeps its own for callers that
    catch it); ``unknown_hint`` ends the message for an unknown name.

    ``adopt(name, source)`` makes a data kind: it turns a ``builtin`` value (then not a
    module but, say, a shipped file) or whatever an entry point loads into the item to
    register under ``name``. Without it a loaded class is registered as it is.
    """

    kind: str
    where: str
    group: str
    builtin: Mapping[str, Any]
    error: type[HarmtraceError] = PluginError
    missing_hint: str = ""
    unknown_hint: str = ""
    adopt: Callable[[str, Any], C] | None = None
    classes: dict[str, C] = field(default_factory=dict)
    _plugins: dict[str, EntryPoint] | None = field(default=None, repr=False)

    def register(self, cls: C) -> C:
        """Class decorator: make ``cls`` (or a data kind's item) available under its ``name``."""
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
            known = ", ".join(self.names()) + self.unknown_hint
            raise self.error(f"unknown {self.kind} {name!r}; registered: {known}")
        return self.classes[name]

    def _load(self, name: str) -> None:
        try:
            if name in self.builtin:
                if self.adopt is None:
                    importlib.import_module(self.builtin[name])
                    return
                source = self.builtin[name]
            elif name in self.plugins():
                source = self.plugins()[name].load()
            else:
                return
            if self.adopt is not None:
                source = self.adopt(name, source)
            elif not isinstance(source, type):
                return  # a module, which registers what it implements on import
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] == "harmtrace":
                raise  # a broken harmtrace module, not a missing dependency
            raise self.error(
                f"{self.kind} {name!r} needs a module that is not installed ({exc.name})"
                + self.missing_hint
            ) from exc
        given = getattr(source, "name", None)
        if given != name:
            raise self.error(f"{self.kind} {name!r} loads one named {given!r}")
        if name not in self.classes:
            self.register(source)

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
        """A ready implementation built from its validated spec (by the class's
        ``from_spec`` where it has one, else by calling the class with the spec)."""
        cls = self.get(name)
        return getattr(cls, "from_spec", cls)(self.spec(name, options, **overrides))

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
