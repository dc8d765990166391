"""The ``trees:`` block of the workflow config, checked when the Snakefile is parsed.

The JSON schema checks each value; this checks how they fit together (a generator must
be registered and its block must fit its spec, tree datasets must be configured, the
fitting datasets must get trees, the fit settings and profiles must be valid), so that a
mistake stops the run on the terminal, not halfway through in a job's log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from harmtrace.config import ConfigError, enabled_analyses, stage_off_problems
from harmtrace.study import trained_grader

log = logging.getLogger(__name__)

NOTEBOOK = "05_harm_benefit"
"""The analysis notebook that reads the trees stage's outputs."""


@dataclass(frozen=True)
class TreesConfig:
    """The checked ``trees:`` block (empty when the config has none or turns it off)."""

    generators: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    blocks: dict[str, dict[str, Any]] = field(default_factory=dict)
    fit: dict[str, Any] = field(default_factory=dict)
    profiles: dict[str, Any] = field(default_factory=dict)

    @property
    def fit_datasets(self) -> tuple[str, ...]:
        return (*self.fit.get("harmful", ()), *self.fit.get("benign", ()))

    def block(self, generator: str) -> dict[str, Any]:
        return self.blocks.get(generator) or {}


def check_trees_config(config: Mapping[str, Any], datasets: Sequence[str]) -> TreesConfig:
    """Raise :class:`harmtrace.config.ConfigError` listing every problem of ``trees:``."""
    from harmtrace.trees.harm_benefit import FitSettings
    from harmtrace.trees.registry import (
        GeneratorConfigError,
        generator_class,
        generator_names,
        make_spec,
    )
    from harmtrace.trees.steering import ProfileError, profile_specs

    block = config.get("trees")
    readers = [s for s in enabled_analyses(config).values() if s["notebook"] == NOTEBOOK]
    if block and block.get("enabled", True) and not readers:
        log.warning("trees: left out of this run: no analysis that reads trees runs (%s)", NOTEBOOK)
        return TreesConfig()
    if not block or not block.get("enabled", True):
        problems = stage_off_problems(config, NOTEBOOK, "trees", "trees.enabled")
        if problems:
            raise ConfigError("config problems:\n  - " + "\n  - ".join(problems))
        return TreesConfig()
    problems: list[str] = []
    generators = tuple(block.get("generators") or ())
    blocks = dict(block.get("generator") or {})
    for name in generators:
        if name not in generator_names():
            problems.append(
                f"trees.generators: unknown generator {name!r} ({', '.join(generator_names())})"
            )
            continue
        try:
            make_spec(name, blocks.get(name) or {})
        except GeneratorConfigError as exc:
            problems.append(str(exc))
    for name in blocks:
        if name not in generators:
            problems.append(f"trees.generator.{name}: not in trees.generators")
    for name in generators:
        if (
            name in generator_names()
            and generator_class(name).uses_trained_grader
            and trained_grader(config) is None
        ):
            problems.append(
                f"trees.generators: {name!r} builds on the grader the workflow trains, and "
                "the config names none; add its block under grader:"
            )
    tree_datasets = tuple(block.get("datasets") or ())
    for name in tree_datasets:
        if name not in datasets:
            problems.append(f"trees.datasets: {name!r} is not configured (add it to data.datasets)")
    try:
        fit = FitSettings.model_validate(block.get("fit") or {})
    except ValidationError as exc:
        problems.append(f"trees.fit: {exc}")
        fit = FitSettings()
    for key, names in (("harmful", fit.harmful), ("benign", fit.benign)):
        for name in names:
            if name not in tree_datasets:
                problems.append(f"trees.fit.{key}: {name!r} is not in trees.datasets")
    try:
        profile_specs(block.get("profiles") or {})
    except ProfileError as exc:
        problems.append(str(exc))
    if problems:
        raise ConfigError("config problems:\n  - " + "\n  - ".join(problems))
    return TreesConfig(
        generators=generators,
        datasets=tree_datasets,
        blocks={k: dict(v or {}) for k, v in blocks.items()},
        fit=fit.model_dump(mode="json"),
        profiles=dict(block.get("profiles") or {}),
    )
