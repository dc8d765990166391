"""The study manifest: what the paper is rendered for (``results/paper/study.json``).

The paper's sections are templates; this says which datasets, targets, graders and
analyses the run has, in the words the templates need (title, citation, kind of each
dataset), so that no section names a dataset the run does not have. It is derived from
the config (:mod:`harmtrace.study`) and from which producers write numbers for the paper,
never from the shipped defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harmtrace.study import (
    all_datasets,
    answer_sets,
    grader_datasets,
    graders,
    plan_analyses,
    primary_grader,
    reads_labels,
    respond_enabled,
    study_block,
    study_datasets,
    study_targets,
)


def _kind(config: Mapping[str, Any], name: str) -> str:
    """answers | prompts | texts | labelled_answers | model_answers."""
    from harmtrace.data.registry import load_registry

    if name in answer_sets(config):
        return "model_answers"
    user = (config["data"].get("user_datasets") or {}).get(name)
    if user is not None:
        return "answers" if user.get("response_column") else "prompts"
    spec = load_registry()[name]
    if spec.has_responses:
        return "labelled_answers" if spec.evaluation_only else "answers"
    return "texts" if "category" in spec.labels else "prompts"


def _dataset_entry(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    from harmtrace.data.registry import load_registry

    kind = _kind(config, name)
    user = name in (config["data"].get("user_datasets") or {})
    if kind == "model_answers":
        prompt_set, target, _ = answer_sets(config)[name]
        spec = load_registry().get(prompt_set)
        title = f"{spec.title if spec else prompt_set}, answered by {target}"
        citation = None
    elif user:  # the file it was read from (its sha256 is in the records' provenance)
        title, citation = f"read from {config['data']['user_datasets'][name]['path']}", None
    else:
        spec = load_registry()[name]
        title, citation = spec.title, spec.citation
    return {
        "title": title,
        "citation": citation,
        "user": user,
        "has_responses": kind in ("answers", "labelled_answers", "model_answers"),
        "kind": kind,
        "records": None,
    }


def dataset_roles(spec: Mapping[str, Any]) -> dict[str, list[str]]:
    """Parameters of an analysis that split its datasets into roles (the harm-benefit fit's
    ``harmful`` and ``benign``), so the paper names each set by what it was used for."""
    return {
        key: list(value)
        for key, value in (spec.get("parameters") or {}).items()
        if isinstance(value, list) and value and set(value) <= set(spec["datasets"])
    }


def scalar_parameters(spec: Mapping[str, Any]) -> dict[str, Any]:
    """An analysis's parameters that are one value (not a list or mapping): what its
    section may name, such as the tree generator it reports."""
    return {
        key: value
        for key, value in (spec.get("parameters") or {}).items()
        if value is None or isinstance(value, str | int | float | bool)
    }


def policy_descriptions(config: Mapping[str, Any], spec: Mapping[str, Any]) -> list[dict[str, str]]:
    """The moderation policies an analysis compares, in its order, with their own
    descriptions (user policies from ``moderate.policies``, else the registered ones), so
    the paper describes the policies of the run and no others. A list, not a mapping: the
    manifest is written with sorted keys and the order is the analysis's."""
    names = (spec.get("parameters") or {}).get("policies") or []
    if not names:
        return []
    from harmtrace.moderate.policies import POLICIES  # only runs that moderate need it

    user = (config.get("moderate") or {}).get("policies") or {}
    described = []
    for name in names:
        text = (user.get(name) or {}).get("description") or POLICIES.get(name).description
        described.append({"name": name, "description": " ".join(str(text).split())})
    return described


def study_manifest(config: Mapping[str, Any], numbers: Iterable[str | Path]) -> dict[str, Any]:
    """The manifest for a run whose paper reads the producers' numbers files ``numbers``."""
    producers = {Path(p).stem for p in numbers}
    plan = plan_analyses(config)
    named = list(study_datasets(config))
    if respond_enabled(config):  # the prompt sets the targets answered
        prompt_sets = sorted((config.get("respond") or {}).get("prompt_sets") or {})
        named += [d for d in prompt_sets if d not in named]
    built = all_datasets(config)
    named += [d for d in grader_datasets(config, tested=True) if d in built and d not in named]
    for spec in plan.running.values():
        named += [d for d in spec["datasets"] if d not in named]
    targets = config.get("targets") or {}
    block = study_block(config)
    return {
        "study": {
            "datasets": list(study_datasets(config)),
            "targets": study_targets(config),
            "grader": primary_grader(config),
            "reference_grader": block.get("reference_grader"),
            "labels_measure": reads_labels(primary_grader(config)),
        },
        "datasets": {name: _dataset_entry(config, name) for name in named},
        "targets": {
            name: {
                "backend": targets[name]["backend"],
                "model": str(
                    targets[name].get("model")
                    or (targets[name].get("endpoint") or {}).get("model")
                    or ""
                ),
                "system_prompt": targets[name].get("system_prompt"),
            }
            for name in study_targets(config)
            if name in targets
        },
        "graders": graders(config),
        "analyses": {
            spec["notebook"]: {
                "entry": name,
                "grader": spec["grader"],
                "datasets": list(spec["datasets"]),
                "roles": dataset_roles(spec),
                "parameters": scalar_parameters(spec),
                "policies": policy_descriptions(config, spec),
                "traced": [
                    p
                    for p in (spec.get("parameters") or {}).get("policies") or []
                    if p in ((config.get("moderate") or {}).get("default") or [])
                ],
            }
            for name, spec in plan.running.items()
        },
        "stages": {
            "respond": respond_enabled(config),
            "trees": "05_harm_benefit" in producers,
            "moderate": "06_moderation_policy" in producers,
            "transfer": "transfer" in producers,
            "refusal_transfer": "refusal_transfer" in producers,
        },
    }
