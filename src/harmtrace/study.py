"""What a run is about: the ``study:`` block, and what each stage and analysis takes from it.

Method. ``study.datasets`` names the datasets the paper reports on, ``study.targets`` the
models under test (their answers to ``respond.prompt_sets`` are study datasets too),
``study.grader`` whose judgments the analyses read, and ``study.reference_grader`` the
grader of human labels the others are checked against. An analysis entry either names its
datasets (``datasets``) or takes the study's datasets of one kind (``select``):

* ``answers``: prompt-response records of a benchmark or a user file (registered
  ``has_responses`` sets that do not exist only to test the grader, user files with a
  response column);
* ``labelled``: datasets that carry labels a grader can be checked against (registered
  ``labels``; the study's user files when a reference grader reads their labels);
* ``model_answers``: the respond stage's answers of the study's targets.

An entry that gets no dataset, or names one the study leaves out, is left out of the run
with one log line that says why, so a study of one's own file needs no switching off by
hand. The registered datasets the run builds are ``data.datasets`` plus whatever the
study, its graders, its prompt sets and its running entries need.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SELECTIONS = ("answers", "labelled", "model_answers")
"""Kinds of study dataset an analysis entry can select (``analysis.<name>.select``)."""


def study_block(config: Mapping[str, Any]) -> Mapping[str, Any]:
    return config.get("study") or {}


def study_targets(config: Mapping[str, Any]) -> list[str]:
    return list(study_block(config).get("targets") or [])


def respond_enabled(config: Mapping[str, Any]) -> bool:
    block = config.get("respond") or {}
    return bool(block.get("enabled", True)) and bool(study_targets(config))


def answer_sets(config: Mapping[str, Any]) -> dict[str, tuple[str, str, str]]:
    """Answer datasets of the respond stage: ``<prompt set>--<target>`` -> (prompt set,
    target, harmful | benign): prompt sets sorted by name (a mapping's key order is no
    product's business: a re-saved config must not replan), targets in list order."""
    from harmtrace.targets.respond import answer_dataset

    if not respond_enabled(config):
        return {}
    prompt_sets = (config.get("respond") or {}).get("prompt_sets") or {}
    return {
        answer_dataset(prompt_set, target): (prompt_set, target, kind)
        for prompt_set, kind in sorted(prompt_sets.items())
        for target in study_targets(config)
    }


def graders(config: Mapping[str, Any]) -> list[str]:
    """``grade.graders``, then the study's grader and reference grader if not listed."""
    out = list(config["grade"]["graders"])
    block = study_block(config)
    for name in (block.get("grader"), block.get("reference_grader")):
        if name and name not in out:
            out.append(name)
    return out


def trained_grader(config: Mapping[str, Any]) -> str | None:
    """The grader backend the workflow trains itself (its class sets
    ``trains_in_workflow``): moderation, the offline tree generator and the transfer checks
    build on its model. The first such backend among the run's graders, then among the
    ``grader:`` blocks of the config; None when none is configured (its rules then do not
    exist)."""
    from harmtrace.graders.registry import GRADERS

    names = list(dict.fromkeys([*graders(config), *(config.get("grader") or {})]))
    trained = GRADERS.having("trains_in_workflow", names)
    return trained[0] if trained else None


def backend_rules(config: Mapping[str, Any], root: str | Path) -> list[str]:
    """The Snakemake files of the run's trained grader (its class's ``workflow_rules``), as
    absolute paths: the Snakefile includes them, so its training rules exist only when it
    is configured, and a backend from another package brings its own rules file."""
    from harmtrace.graders.registry import GRADERS, GraderConfigError

    trained = trained_grader(config)
    if trained is None:
        return []
    files = [Path(root, path) for path in GRADERS.get(trained).workflow_rules]
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise GraderConfigError(
            f"grader {trained!r} declares workflow rules that do not exist: {missing} "
            f"(workflow_rules of {GRADERS.module_of(trained)}: relative to {root} or absolute)"
        )
    return [str(path) for path in files]


def reads_labels(name: str | None) -> bool:
    """Whether grader ``name`` reads labels the records carry (the human backend)."""
    from harmtrace.graders.registry import grader_class, grader_names

    return bool(name) and name in grader_names() and grader_class(name).reads_record_labels


def labels_grader(config: Mapping[str, Any]) -> str | None:
    """The grader of human labels: ``study.reference_grader``, else the study's grader when
    it reads labels from the records (the labels are then the study's measurement)."""
    block = study_block(config)
    if block.get("reference_grader"):
        return block["reference_grader"]
    grader = block.get("grader")
    return grader if reads_labels(grader) else None


def primary_grader(config: Mapping[str, Any]) -> str:
    """The study's grader (``study.grader``), else the first of ``grade.graders``."""
    return study_block(config).get("grader") or graders(config)[0]


def relevance_check_dataset(config: Mapping[str, Any]) -> str | None:
    """``grade.relevance_check.dataset`` when the study includes it (the check reports on
    the study's data), else None (:func:`log_left_out` says so)."""
    name = (config["grade"].get("relevance_check") or {}).get("dataset")
    return name if name and name in study_datasets(config) else None


def grader_datasets(config: Mapping[str, Any], tested: bool = False) -> list[str]:
    """Datasets a configured backend trains or calibrates on (its spec says which); with
    ``tested``, also those it is only tested on."""
    from harmtrace.graders.registry import GraderConfigError, grader_names, make_spec

    out: list[str] = []
    for name in graders(config):
        if name not in grader_names():
            continue  # reported by check_config
        try:
            spec = make_spec(name, (config.get("grader") or {}).get(name) or {})
        except (GraderConfigError, ImportError):
            continue  # reported by check_config
        named = (*spec.datasets_needed(), *(spec.datasets_tested() if tested else ()))
        out += [d for d in named if d not in out]
    return out


def source_datasets(config: Mapping[str, Any]) -> list[str]:
    """Datasets read from files: ``data.datasets``, then the registered datasets the study,
    its graders and its prompt sets need (by name), then user datasets, in config order."""
    from harmtrace.data.registry import load_registry

    data = config["data"]
    user = list(data.get("user_datasets") or {})
    listed = list(data["datasets"])
    registry = load_registry()
    needed = [
        *study_block(config).get("datasets", []),
        *grader_datasets(config),
        *((config.get("respond") or {}).get("prompt_sets") or {} if study_targets(config) else []),
    ]
    extra = sorted({d for d in needed if d in registry and d not in listed and d not in user})
    return [*listed, *extra, *user]


def all_datasets(config: Mapping[str, Any]) -> list[str]:
    """Every dataset the DAG builds records of: source datasets, then answer datasets."""
    return [*source_datasets(config), *answer_sets(config)]


def study_datasets(config: Mapping[str, Any]) -> list[str]:
    """The study's datasets, then its targets' answer datasets."""
    return [*study_block(config).get("datasets", []), *answer_sets(config)]


def kinds(config: Mapping[str, Any], name: str) -> set[str]:
    """The selections (:data:`SELECTIONS`) a dataset of this run belongs to."""
    from harmtrace.data.registry import load_registry

    if name in answer_sets(config):
        return {"model_answers"}
    user = (config["data"].get("user_datasets") or {}).get(name)
    if user is not None:
        out = {"answers"} if user.get("response_column") else set()
        if labels_grader(config):
            out.add("labelled")
        return out
    spec = load_registry().get(name)
    if spec is None:
        return set()
    out = {"labelled"} if spec.labels else set()
    if spec.has_responses and not spec.evaluation_only:
        out.add("answers")
    return out


def selection_of(entry: Mapping[str, Any]) -> str | None:
    """What an entry selects from the study (None when it names its datasets)."""
    return None if entry.get("datasets") else entry.get("select", "answers")


@dataclass(frozen=True)
class AnalysisPlan:
    """Analysis entries that run (datasets and grader filled in) and why others do not."""

    running: dict[str, dict[str, Any]] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)


def plan_analyses(config: Mapping[str, Any]) -> AnalysisPlan:
    """Resolve every ``analysis`` entry against the study (see the module docstring)."""
    in_study = study_datasets(config)
    reference = labels_grader(config)
    running: dict[str, dict[str, Any]] = {}
    left_out: dict[str, str] = {}
    for name, entry in (config.get("analysis") or {}).items():
        if not entry.get("enabled", True):
            left_out[name] = "enabled: false"
            continue
        spec = dict(entry)
        spec["grader"] = entry.get("grader") or primary_grader(config)
        if entry.get("datasets"):
            outside = [d for d in entry["datasets"] if d not in in_study]
            if outside:
                left_out[name] = f"its datasets {outside} are not in the study"
                continue
            spec["datasets"] = list(entry["datasets"])
        else:
            selection = selection_of(entry)
            spec["datasets"] = [d for d in in_study if selection in kinds(config, d)]
            if not spec["datasets"]:
                left_out[name] = f"no study dataset is of the kind it selects ({selection})"
                continue
        params = dict(entry.get("parameters") or {})
        if reference and "reference_grader" in params and params["reference_grader"] is None:
            params["reference_grader"] = reference
            if spec["grader"] == reference and not entry.get("grader"):
                # the labels are the study's measurement: check the other grader against them
                spec["grader"] = next(g for g in [*graders(config), reference] if g != reference)
            spec["inputs"] = [
                *(entry.get("inputs") or []),
                f"results/judgments/{reference}/{{dataset}}.parquet",
            ]
        if selection_of(entry) == "model_answers":
            targets = study_targets(config)
            for role, index in (("baseline", 0), ("treatment", 1)):
                if role in params and params[role] is None and len(targets) > index:
                    params[role] = targets[index]
        spec["parameters"] = params
        running[name] = spec
    return AnalysisPlan(running=running, left_out=left_out)


def enabled_analyses(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Analysis entries that run, each with its datasets and grader (:func:`plan_analyses`)."""
    return plan_analyses(config).running


def log_left_out(config: Mapping[str, Any]) -> None:
    """One log line per analysis entry the study leaves out, saying why."""
    for name, why in plan_analyses(config).left_out.items():
        if why != "enabled: false":
            log.warning("analysis.%s: left out of this run: %s", name, why)
    check = (config["grade"].get("relevance_check") or {}).get("dataset")
    if check and relevance_check_dataset(config) is None:
        log.warning("grade.relevance_check: left out of this run: %r is not in the study", check)


def graded_datasets(config: Mapping[str, Any], grader: str) -> list[str]:
    """Datasets one backend grades: its ``grade.datasets`` list; else, for a grader that
    reads labels from the records, the study's user files; else every dataset."""
    only = (config["grade"].get("datasets") or {}).get(grader)
    if only is not None:
        return list(only)
    if grader in graders(config) and reads_labels(grader):
        user = config["data"].get("user_datasets") or {}
        return [d for d in study_block(config).get("datasets", []) if d in user]
    return all_datasets(config)


def used_datasets(config: Mapping[str, Any]) -> set[str]:
    """Every dataset something in the run reads: the study, graders' training sets, prompt
    sets, analysis entries, tree datasets and the relevance check."""
    used = set(study_datasets(config)) | set(grader_datasets(config))
    used |= set((config.get("respond") or {}).get("prompt_sets") or {})
    for spec in enabled_analyses(config).values():
        used |= set(spec["datasets"])
    used |= set((config.get("trees") or {}).get("datasets") or [])
    check = relevance_check_dataset(config)
    if check:
        used.add(check)
    return used
