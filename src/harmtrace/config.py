"""Cross-field checks of the workflow config, run when the Snakefile is parsed.

The JSON schema (``workflow/schemas/config.schema.yaml``) checks each value on its own;
what it cannot say is how values relate: an analysed dataset must be one the DAG builds,
a grader must be registered and its block must fit its pydantic spec, a user dataset may
not take a registered name. Failing here, at parse time, puts the message on the
terminal instead of in a job's log file halfway through a run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harmtrace.errors import HarmtraceError
from harmtrace.study import (
    all_datasets,
    answer_sets,
    enabled_analyses,
    graded_datasets,
    graders,
    log_left_out,
    primary_grader,
    relevance_check_dataset,
    respond_enabled,
    selection_of,
    source_datasets,
    study_targets,
    trained_grader,
    used_datasets,
)

__all__ = [
    "ConfigError",
    "all_datasets",
    "answer_sets",
    "check_config",
    "enabled_analyses",
    "graded_datasets",
    "paper_enabled",
    "refusal_sources",
    "respond_enabled",
    "source_datasets",
    "stage_off_problems",
]

log = logging.getLogger(__name__)


class ConfigError(HarmtraceError):
    """The config's values do not fit together."""


def _respond_problems(config: Mapping[str, Any], sources: list[str]) -> list[str]:
    """The study's targets must be defined and valid, prompt sets built by the DAG."""
    from harmtrace.targets.registry import TargetConfigError, make_target_spec

    if not respond_enabled(config):
        return []
    block = config.get("respond") or {}
    targets = config.get("targets") or {}
    problems = []
    for name in study_targets(config):
        if name not in targets:
            problems.append(
                f"study.targets: {name!r} is not defined under `targets` "
                f"(defined: {', '.join(sorted(targets)) or 'none'})"
            )
            continue
        try:
            make_target_spec(name, targets[name])
        except TargetConfigError as exc:
            problems.append(str(exc))
    for name in block.get("prompt_sets") or {}:
        if name not in sources:
            problems.append(
                f"respond.prompt_sets: {name!r} is not configured "
                "(add it to data.datasets or data.user_datasets)"
            )
    if not block.get("prompt_sets"):
        problems.append(
            f"study.targets: no prompt set is sent to {study_targets(config)} "
            "(respond.prompt_sets is empty); name prompt sets there, or set study.targets: []"
        )
    clash = [name for name in answer_sets(config) if name in sources]
    problems += [f"respond: answer dataset {name!r} clashes with a dataset name" for name in clash]
    return problems


def _study_problems(config: Mapping[str, Any], datasets: list[str]) -> list[str]:
    """The study names datasets the run builds and graders it has; a user file nothing
    reads is a mistake, not a silent no-op."""
    from harmtrace.graders.registry import grader_names

    block = config.get("study") or {}
    problems = [
        f"study.datasets: {name!r} is neither registered nor in data.user_datasets"
        for name in block.get("datasets") or []
        if name not in datasets
    ]
    for key in ("grader", "reference_grader"):
        name = block.get(key)
        if name and name not in grader_names():
            problems.append(f"study.{key}: unknown grader {name!r} ({', '.join(grader_names())})")
    if block.get("grader") and block.get("grader") == block.get("reference_grader"):
        problems.append("study.reference_grader: must differ from study.grader")
    used = used_datasets(config)
    problems += [
        f"data.user_datasets.{name}: nothing in the run reads it; add it to study.datasets "
        "(or respond.prompt_sets, or an analysis entry's datasets)"
        for name in config["data"].get("user_datasets") or {}
        if name not in used
    ]
    return problems


def stage_off_problems(config: Mapping[str, Any], notebook: str, stage: str, key: str) -> list[str]:
    """Enabled analysis entries running ``notebook`` while the stage that feeds it is off
    (``key`` is false): each would fail later on missing inputs, so name it now."""
    return [
        f"analysis.{name}: notebook {notebook} needs the {stage} stage ({key} is off); "
        f"set analysis.{name}.enabled: false"
        for name, spec in enabled_analyses(config).items()
        if spec["notebook"] == notebook
    ]


def paper_enabled(config: Mapping[str, Any]) -> bool:
    """Whether `rule all` builds the PDF (paper.build); its sections follow the study, so
    any config can have one."""
    return bool((config.get("paper") or {}).get("build", True))


def refusal_sources(config: Mapping[str, Any], datasets: list[str]) -> list[str]:
    """The refusal detector's training sets and the test-only sets this run builds."""
    trained = trained_grader(config)
    refusal = ((config.get("grader") or {}).get(trained or "") or {}).get("refusal") or {}
    labels = list(refusal.get("labels") or [])
    return labels + [n for n in refusal.get("evaluate") or [] if n in datasets]


def _comparison_problems(config: Mapping[str, Any], where: str, spec: Mapping[str, Any]):
    """An entry comparing two conditions of a model compares targets of the study."""
    targets = study_targets(config)
    params = spec.get("parameters") or {}
    return [
        f"{where}.parameters.{role}: {params[role]!r} is not in study.targets ({targets})"
        if params[role] is not None
        else f"{where}.parameters.{role}: null takes a study target, but study.targets has "
        f"{len(targets)}; name two targets (or the {role})"
        for role in ("baseline", "treatment")
        if role in params and params[role] not in targets
    ]


def _data_problems(config: Mapping[str, Any], registry: Mapping[str, Any], workdir: Path):
    """``data:`` names registered datasets, samples and user files that exist."""
    problems: list[str] = []
    data = config["data"]
    known = ", ".join(sorted(registry))
    for name in data["datasets"]:
        if name not in registry:
            problems.append(f"data.datasets: {name!r} is not a registered dataset ({known})")
    for name in data.get("sample") or {}:
        if name not in data["datasets"] and name not in (data.get("user_datasets") or {}):
            problems.append(
                f"data.sample: {name!r} is neither in data.datasets nor in data.user_datasets"
            )
    for name in data.get("allow_unpinned") or []:
        if name not in data["datasets"]:
            problems.append(f"data.allow_unpinned: {name!r} is not in data.datasets")
    for name, spec in (data.get("user_datasets") or {}).items():
        where = f"data.user_datasets.{name}"
        if name in registry:
            problems.append(f"{where}: a user dataset may not take the registered name {name!r}")
        if not (workdir / spec["path"]).is_file():
            problems.append(f"{where}.path: no such file {spec['path']!r}")
    return problems


def _grader_problems(config: Mapping[str, Any], datasets: list[str]) -> list[str]:
    """Each grader is registered, its block fits its spec and its backend's own checks
    (:meth:`~harmtrace.graders.base.Grader.config_problems`); every dataset is graded."""
    from harmtrace.graders.registry import GraderConfigError, grader_class, grader_names, make_spec

    problems: list[str] = []
    run_graders = graders(config)
    for name in run_graders:
        if name not in grader_names():
            if name in config["grade"]["graders"]:
                problems.append(
                    f"grade.graders: unknown grader {name!r} ({', '.join(grader_names())})"
                )
            continue
        try:
            spec = make_spec(name, (config.get("grader") or {}).get(name) or {})
        except GraderConfigError as exc:
            problems.append(str(exc))
            continue
        problems += grader_class(name).config_problems(spec, datasets, f"grader.{name}")
    for name, names in (config["grade"].get("datasets") or {}).items():
        if name not in run_graders:
            problems.append(f"grade.datasets.{name}: {name!r} is not in grade.graders")
        for dataset in names:
            if dataset not in datasets:
                problems.append(
                    f"grade.datasets.{name}: {dataset!r} is not configured "
                    "(add it to data.datasets or data.user_datasets)"
                )
    if run_graders:
        graded_by_any = {d for g in run_graders for d in graded_datasets(config, g)}
        listed = ", ".join(f"grade.datasets.{g}" for g in run_graders)
        problems += [
            f"data: {name!r} is graded by no grader (each of grade.graders has its own "
            f"list: {listed}); add it to one of them, or leave the dataset out"
            for name in datasets
            if name not in graded_by_any
        ]
    check = relevance_check_dataset(config)
    primary = primary_grader(config)  # the grader whose judgments validate_relevance reads
    if check and check not in datasets:
        problems.append(f"grade.relevance_check.dataset: {check!r} is not in data.datasets")
    elif check and check not in graded_datasets(config, primary):
        problems.append(
            f"grade.relevance_check.dataset: {check!r} is not graded by the study's grader "
            f"{primary!r} (grade.datasets.{primary})"
        )
    return problems


def _entry_problems(
    config: Mapping[str, Any], where: str, spec: Mapping[str, Any], datasets: list[str]
) -> list[str]:
    """One resolved analysis entry: its grader runs and grades its datasets (and its
    reference grader too), its comparison names study targets."""
    problems: list[str] = []
    run_graders = graders(config)
    if selection_of(config["analysis"][where.split(".", 1)[1]]) == "model_answers":
        problems += _comparison_problems(config, where, spec)
    if spec["grader"] not in run_graders:
        problems.append(f"{where}.grader: {spec['grader']!r} is not in grade.graders")
    graded = graded_datasets(config, spec["grader"])
    for name in spec["datasets"]:
        if name not in datasets:
            continue  # reported by _analysis_problems
        if spec["grader"] in run_graders and name not in graded:
            problems.append(
                f"{where}.datasets: {name!r} is not graded by {spec['grader']!r} "
                f"(grade.datasets.{spec['grader']})"
            )
    reference = (spec.get("parameters") or {}).get("reference_grader")
    if reference and reference in run_graders:
        by_reference = graded_datasets(config, reference)
        problems += [
            f"{where}.datasets: {name!r} is not graded by the reference grader "
            f"{reference!r} (grade.datasets.{reference}); name the entry's datasets"
            for name in spec["datasets"]
            if name not in by_reference
        ]
    return problems


def _analysis_problems(
    config: Mapping[str, Any], datasets: list[str], registry: Mapping[str, Any], workdir: Path
) -> list[str]:
    """Analysis entries name producible datasets and existing notebooks."""
    problems: list[str] = []
    for block, entry in (config.get("analysis") or {}).items():
        if entry.get("enabled", True):  # a name nothing can produce is a mistake, in or out
            problems += [
                f"analysis.{block}.datasets: {name!r} is not configured "
                "(add it to data.datasets or data.user_datasets)"
                for name in entry.get("datasets") or []
                if name not in datasets and name not in registry
            ]
    for block, spec in enabled_analyses(config).items():
        where = f"analysis.{block}"
        problems += _entry_problems(config, where, spec, datasets)
        nb = workdir / "notebooks" / f"{spec['notebook']}.ipynb"
        if not nb.is_file():
            problems.append(f"{where}.notebook: no notebook {nb}")
    return problems


def check_config(config: Mapping[str, Any], workdir: Path = Path(".")) -> list[str]:
    """Raise :class:`ConfigError` listing every problem; return the dataset names."""
    from harmtrace.data.registry import load_registry

    registry = load_registry()
    problems = _data_problems(config, registry, workdir)
    problems += _respond_problems(config, source_datasets(config))
    datasets = all_datasets(config)
    problems += _study_problems(config, datasets)
    problems += _grader_problems(config, datasets)
    problems += _analysis_problems(config, datasets, registry, workdir)
    if problems:
        raise ConfigError("config problems:\n  - " + "\n  - ".join(problems))
    log_left_out(config)
    return datasets
