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

log = logging.getLogger(__name__)


class ConfigError(HarmtraceError):
    """The config's values do not fit together."""


def source_datasets(config: Mapping[str, Any]) -> list[str]:
    """Registered datasets to fetch, then user datasets, in config order."""
    data = config["data"]
    return [*data["datasets"], *(data.get("user_datasets") or {})]


def respond_enabled(config: Mapping[str, Any]) -> bool:
    block = config.get("respond") or {}
    return bool(block.get("enabled", True)) and bool(block.get("targets"))


def answer_sets(config: Mapping[str, Any]) -> dict[str, tuple[str, str, str]]:
    """Answer datasets of the respond stage: ``<prompt set>--<target>`` -> (prompt set,
    target, harmful | benign): prompt sets sorted by name (a mapping's key order is no
    product's business: a re-saved config must not replan), targets in list order."""
    from harmtrace.targets.respond import answer_dataset

    if not respond_enabled(config):
        return {}
    block = config["respond"]
    return {
        answer_dataset(prompt_set, target): (prompt_set, target, kind)
        for prompt_set, kind in sorted((block.get("prompt_sets") or {}).items())
        for target in block["targets"]
    }


def all_datasets(config: Mapping[str, Any]) -> list[str]:
    """Every dataset the DAG builds records of: source datasets, then answer datasets."""
    return [*source_datasets(config), *answer_sets(config)]


def _respond_problems(config: Mapping[str, Any], sources: list[str]) -> list[str]:
    """Targets must be defined and valid, prompt sets built by the DAG."""
    from harmtrace.targets.registry import TargetConfigError, make_target_spec

    if not respond_enabled(config):
        return []
    block = config["respond"]
    targets = config.get("targets") or {}
    problems = []
    for name in block["targets"]:
        if name not in targets:
            problems.append(
                f"respond.targets: {name!r} is not defined under `targets` "
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
        problems.append("respond.prompt_sets: name at least one prompt set (or enabled: false)")
    clash = [name for name in answer_sets(config) if name in sources]
    problems += [f"respond: answer dataset {name!r} clashes with a dataset name" for name in clash]
    return problems


def enabled_analyses(config: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Analysis entries that run: a config file merges into the defaults and cannot delete
    an entry, so ``enabled: false`` is how a user's config leaves one out."""
    out = {}
    for name, spec in (config.get("analysis") or {}).items():
        if not spec.get("enabled", True):
            continue
        if spec.get("datasets_from") == "respond":  # every answer dataset
            spec = {**spec, "datasets": list(answer_sets(config))}
        out[name] = spec
    return out


def stage_off_problems(config: Mapping[str, Any], notebook: str, stage: str, key: str) -> list[str]:
    """Enabled analysis entries running ``notebook`` while the stage that feeds it is off
    (``key`` is false): each would fail later on missing inputs, so name it now."""
    return [
        f"analysis.{name}: notebook {notebook} needs the {stage} stage ({key} is off); "
        f"set analysis.{name}.enabled: false"
        for name, spec in enabled_analyses(config).items()
        if spec["notebook"] == notebook
    ]


def graded_datasets(config: Mapping[str, Any], grader: str) -> list[str]:
    """Datasets one backend grades: its ``grade.datasets`` list, else every dataset.

    A backend that reads labels from the records (``human``) can only grade datasets that
    carry them, so it is given its own list.
    """
    only = (config["grade"].get("datasets") or {}).get(grader)
    return list(only) if only is not None else all_datasets(config)


def paper_enabled(config: Mapping[str, Any]) -> bool:
    """Whether `rule all` builds the PDF; its text reports the shipped analyses, so a
    config analysing only its own data stops at the macros (results/paper/numbers.tex)."""
    return bool((config.get("paper") or {}).get("build", True))


def _refusal_evaluate_problems(names: list[str], datasets: list[str], where: str) -> list[str]:
    """Test-only refusal sets must be registered; one the run does not build is left out of
    the refusal transfer evaluation with a log line (`refusal_sources`), not an error."""
    from harmtrace.data.registry import load_registry

    registered = load_registry()
    problems = []
    for name in names:
        if name in datasets:
            continue
        if name not in registered:
            problems.append(
                f"{where}.refusal.evaluate: {name!r} is neither in data.datasets nor registered"
            )
        else:
            log.warning(
                "%s.refusal.evaluate: %r is not in data.datasets: left out of the refusal "
                "transfer evaluation",
                where,
                name,
            )
    return problems


def refusal_sources(config: Mapping[str, Any], datasets: list[str]) -> list[str]:
    """The refusal detector's training sets and the test-only sets this run builds."""
    refusal = ((config.get("grader") or {}).get("embedded") or {}).get("refusal") or {}
    labels = list(refusal.get("labels") or [])
    return labels + [n for n in refusal.get("evaluate") or [] if n in datasets]


def _embedded_problems(block: Mapping[str, Any] | None, datasets: list[str]) -> list[str]:
    """Datasets the embedded grader trains, weights, learns refusal from and holds out
    must all be built by the DAG (and the weighted and held-out ones trained on)."""
    from harmtrace.graders.registry import GraderConfigError, make_spec

    try:
        spec = make_spec("embedded", block or {})
    except GraderConfigError:
        return []  # already reported by the spec check
    where = "grader.embedded"
    problems = [
        f"{where}.train_datasets: {name!r} is not in data.datasets"
        for name in spec.train_datasets
        if name not in datasets
    ]
    if len(set(spec.train_datasets)) != len(spec.train_datasets):
        problems.append(f"{where}.train_datasets: a dataset is listed twice")
    problems += [
        f"{where}.source_weights: {name!r} is not in grader.embedded.train_datasets"
        for name in spec.source_weights
        if name not in spec.train_datasets
    ]
    refusal = spec.refusal
    named_refusal = [("lexicon", refusal.lexicon)]
    named_refusal += [("labels", n) for n in refusal.labels]
    for key, name in named_refusal:
        if name not in datasets:
            problems.append(f"{where}.refusal.{key}: {name!r} is not in data.datasets")
    problems += _refusal_evaluate_problems(refusal.evaluate, datasets, where)
    problems += [
        f"{where}.refusal.evaluate: {name!r} is also a training set (refusal.labels)"
        for name in sorted(set(refusal.labels) & set(refusal.evaluate))
    ]
    transfer = spec.transfer
    named = [("holdout", name) for name in transfer.holdout]
    if transfer.harm_word_source is not None:
        named.append(("harm_word_source", transfer.harm_word_source))
    problems += [
        f"{where}.transfer.{key}: {name!r} is not in grader.embedded.train_datasets"
        for key, name in named
        if name not in spec.train_datasets
    ]
    return problems


def _study_entry_problems(config: Mapping[str, Any], where: str, spec: Mapping[str, Any]):
    """An entry analysing the respond stage's answers needs that stage, and the conditions
    it compares must be among its targets."""
    if not respond_enabled(config):
        return [f"{where}: datasets_from respond, but the respond stage is off; "
                f"set {where}.enabled: false"]  # fmt: skip
    targets = config["respond"]["targets"]
    params = spec.get("parameters") or {}
    return [
        f"{where}.parameters.{role}: {params[role]!r} is not in respond.targets ({targets})"
        for role in ("baseline", "treatment")
        if role in params and params[role] not in targets
    ]


def check_config(config: Mapping[str, Any], workdir: Path = Path(".")) -> list[str]:
    """Raise :class:`ConfigError` listing every problem; return the dataset names."""
    from harmtrace.data.registry import load_registry
    from harmtrace.graders.registry import GraderConfigError, grader_names, make_spec

    problems: list[str] = []
    registry = load_registry()
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
    problems += _respond_problems(config, source_datasets(config))
    datasets = all_datasets(config)

    graders = config["grade"]["graders"]
    for name in graders:
        if name not in grader_names():
            problems.append(f"grade.graders: unknown grader {name!r} ({', '.join(grader_names())})")
            continue
        try:
            make_spec(name, (config.get("grader") or {}).get(name) or {})
        except GraderConfigError as exc:
            problems.append(str(exc))
    if "embedded" in graders:
        problems += _embedded_problems((config.get("grader") or {}).get("embedded"), datasets)
    for name, names in (config["grade"].get("datasets") or {}).items():
        if name not in graders:
            problems.append(f"grade.datasets.{name}: {name!r} is not in grade.graders")
        for dataset in names:
            if dataset not in datasets:
                problems.append(
                    f"grade.datasets.{name}: {dataset!r} is not configured "
                    "(add it to data.datasets or data.user_datasets)"
                )
    if graders:
        graded_by_any = {d for g in graders for d in graded_datasets(config, g)}
        listed = ", ".join(f"grade.datasets.{g}" for g in graders)
        problems += [
            f"data: {name!r} is graded by no grader (each of grade.graders has its own "
            f"list: {listed}); add it to one of them, or leave the dataset out"
            for name in datasets
            if name not in graded_by_any
        ]
    check = config["grade"].get("relevance_check") or {}
    if check.get("dataset"):
        if check["dataset"] not in datasets:
            problems.append(
                f"grade.relevance_check.dataset: {check['dataset']!r} is not in data.datasets"
            )
        elif check["dataset"] not in graded_datasets(config, graders[0]):
            problems.append(
                f"grade.relevance_check.dataset: {check['dataset']!r} is not graded by the "
                f"reference grader {graders[0]!r} (grade.datasets.{graders[0]})"
            )

    for block, spec in enabled_analyses(config).items():
        where = f"analysis.{block}"
        if spec.get("datasets_from") == "respond":
            problems += _study_entry_problems(config, where, spec)
        if spec["grader"] not in graders:
            problems.append(f"{where}.grader: {spec['grader']!r} is not in grade.graders")
        graded = graded_datasets(config, spec["grader"])
        for name in spec["datasets"]:
            if name not in datasets:
                problems.append(
                    f"{where}.datasets: {name!r} is not configured "
                    "(add it to data.datasets or data.user_datasets)"
                )
            elif spec["grader"] in graders and name not in graded:
                problems.append(
                    f"{where}.datasets: {name!r} is not graded by {spec['grader']!r} "
                    f"(grade.datasets.{spec['grader']})"
                )
        nb = workdir / "notebooks" / f"{spec['notebook']}.ipynb"
        if not nb.is_file():
            problems.append(f"{where}.notebook: no notebook {nb}")
    if problems:
        raise ConfigError("config problems:\n  - " + "\n  - ".join(problems))
    return datasets
