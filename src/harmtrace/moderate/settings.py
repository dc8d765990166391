"""The workflow's ``moderate`` config block, checked against the rest of the config.

Run when the Snakefile is parsed (``workflow/rules/moderate.smk``), like
:func:`harmtrace.config.check_config`: every problem is listed on the terminal before a
job starts, not found in a log halfway through a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harmtrace.config import (
    ConfigError,
    enabled_analyses,
    graded_datasets,
    stage_off_problems,
)
from harmtrace.errors import HarmtraceError
from harmtrace.graders.registry import GRADERS
from harmtrace.moderate.clock import parse_clock
from harmtrace.moderate.policies import policy_config_problems
from harmtrace.study import study_datasets, trained_grader

NOTEBOOK = "06_moderation_policy"
INJECTED = ("model_dir", "user_policies", "traces_dir", "trace_policies", "judge_dir")
"""Notebook 06 parameters the workflow derives from other config blocks (one source of
truth): see :func:`notebook_injection`."""
JUDGE_DIR = "results/models/moderation-judge"
"""The judge's model folder: its own, so that it can never be mistaken for the trigger's."""


@dataclass(frozen=True)
class ModerateSettings:
    grader: str
    policies: list[str]
    user_policies: dict[str, dict[str, Any]]
    datasets: list[str]
    """Configured datasets that have responses (the only ones with something to moderate)
    and that the moderation grader grades."""
    clock: str
    workers: int
    notebook_entries: list[str] = field(default_factory=list)
    judge_extractor: str | None = None
    """Feature extractor of the judge that counts what policies removed (None: the
    trigger counts; :mod:`harmtrace.moderate.judge`)."""

    @property
    def judge_dir(self) -> str | None:
        """Where the DAG keeps the judge's model (rule train_judge)."""
        return JUDGE_DIR if self.judge_extractor else None

    def policy_spec_args(self, policy: str) -> list[str]:
        """CLI arguments for a policy: ``--policy-spec <json>`` for a user policy from the
        config, nothing for a shipped one."""
        import json

        spec = self.user_policies.get(policy)
        if spec is None:
            return []
        return ["--policy-spec", json.dumps({"name": policy, **spec}, sort_keys=True)]

    def policies_args(self, outputs: Sequence[str]) -> list[str]:
        """CLI arguments for one `harmtrace moderate` call under every policy: ``--policy``,
        its ``--out`` (``outputs`` in policy order) and its spec if it is the user's."""
        if len(outputs) != len(self.policies):
            raise HarmtraceError(f"{len(self.policies)} policies, {len(outputs)} outputs")
        return [
            arg
            for policy, out in zip(self.policies, outputs, strict=True)
            for arg in ("--policy", policy, "--out", str(out), *self.policy_spec_args(policy))
        ]


def datasets_with_responses(config: Mapping[str, Any], datasets: list[str]) -> list[str]:
    """Registered datasets whose registry entry has responses, user datasets with a
    response column, and the respond stage's answer datasets, in config order."""
    from harmtrace.config import answer_sets
    from harmtrace.data.registry import load_registry

    registry = load_registry()
    user = config["data"].get("user_datasets") or {}
    answers = answer_sets(config)
    out = []
    for name in datasets:
        if name in answers:  # a target's answers to a prompt set
            out.append(name)
        elif name in user:
            if user[name].get("response_column"):
                out.append(name)
        elif name in registry and registry[name].has_responses:
            out.append(name)
    return out


def check_moderate_config(config: Mapping[str, Any], datasets: list[str]) -> ModerateSettings:
    """Raise :class:`~harmtrace.config.ConfigError` listing every problem of the
    ``moderate`` block and of the analysis entries that run notebook 06."""
    block = config.get("moderate") or {}
    problems: list[str] = []
    if not block.get("enabled", True):
        problems = stage_off_problems(config, NOTEBOOK, "moderation", "moderate.enabled")
        if problems:
            raise ConfigError("invalid moderation config:\n  " + "\n  ".join(problems))
        return ModerateSettings(
            grader=block.get("grader") or trained_grader(config) or "",
            policies=[],
            user_policies={},
            datasets=[],
            clock=str(block.get("clock", "now")),
            workers=int(block.get("workers", 1)),
        )
    grader = block.get("grader") or trained_grader(config) or ""
    problems += _scorer_problems(config, grader)
    policies = list(block.get("default") or [])
    user = {k: dict(v) for k, v in (block.get("policies") or {}).items()}
    problems += policy_config_problems(policies, user)
    clock = str(block.get("clock", "now"))
    try:
        parse_clock(clock)
    except HarmtraceError as exc:
        problems.append(f"moderate.clock: {exc}")
    graded = graded_datasets(config, grader)
    in_study = set(study_datasets(config))
    with_responses = [
        d for d in datasets_with_responses(config, datasets) if d in graded and d in in_study
    ]
    judge_extractor = _judge_extractor(config, block, problems)

    entries = [
        name for name, spec in enabled_analyses(config).items() if spec["notebook"] == NOTEBOOK
    ]
    for name in entries:
        problems += _entry_problems(config, name, grader, user, graded, with_responses)
    if problems:
        raise ConfigError("invalid moderation config:\n  " + "\n  ".join(problems))
    return ModerateSettings(
        grader=grader,
        policies=policies,
        user_policies=user,
        datasets=with_responses,
        clock=clock,
        workers=int(block.get("workers", 1)),
        notebook_entries=entries,
        judge_extractor=judge_extractor,
    )


def _scorer_problems(config: Mapping[str, Any], grader: str) -> list[str]:
    """The moderation grader runs, scores single sentences and is the trained one (the
    flow scores sentences with its model)."""
    problems = []
    graders = config["grade"]["graders"]
    if grader not in graders:
        problems.append(f"moderate.grader: {grader!r} is not in grade.graders {graders}")
    scorers = GRADERS.having("scores_sentences")
    if grader not in scorers:
        problems.append(
            f"moderate.grader: {grader!r} cannot score single sentences; use one of {scorers}"
        )
    elif grader != (trained := trained_grader(config)):
        problems.append(
            f"moderate.grader: {grader!r} is not the grader the workflow trains "
            f"({trained!r}), whose model the flow scores sentences with"
        )
    return problems


def _entry_problems(
    config: Mapping[str, Any],
    name: str,
    grader: str,
    user: dict[str, dict[str, Any]],
    graded: list[str],
    with_responses: list[str],
) -> list[str]:
    """One analysis entry of notebook 06: it follows moderate.grader, leaves the injected
    parameters to the workflow, and names graded datasets with responses."""
    problems = []
    spec = enabled_analyses(config)[name]
    where = f"analysis.{name}"
    params = spec.get("parameters") or {}
    named = (config["analysis"][name] or {}).get("grader")  # else it follows moderate
    if named and named != grader:
        problems.append(f"{where}.grader: must be moderate.grader ({grader!r})")
    for key in INJECTED:
        if key in params:
            problems.append(
                f"{where}.parameters.{key}: set by the workflow from the moderate and "
                "grader blocks; remove it"
            )
    problems += policy_config_problems(
        list(params.get("policies") or []),
        user,
        where=f"{where}.parameters.policies",
        check_user=False,
    )
    for d in spec["datasets"]:
        if d not in graded:
            problems.append(f"{where}.datasets: {d!r} is not graded by {grader!r}")
        elif d not in with_responses:
            problems.append(f"{where}.datasets: {d!r} has no responses to moderate")
    return problems


def _judge_extractor(
    config: Mapping[str, Any], block: Mapping[str, Any], problems: list[str]
) -> str | None:
    """The judge's extractor: known, and not the trigger's own (that would count with the
    same features that trigger, the construction the judge exists to remove)."""
    from harmtrace.graders.features import embedding_parts

    judge = block.get("judge")
    if not judge:
        return None
    name = str(judge.get("extractor", ""))
    try:
        parts = embedding_parts(name)
    except ValueError as exc:
        problems.append(f"moderate.judge.extractor: {exc}")
        return None
    trained = trained_grader(config)
    spec = (config.get("grader") or {}).get(trained or "") or {}
    trigger = spec.get("extractor")
    others = [trigger or "", *((spec.get("compare") or {}).get("extractors") or [])]
    try:
        cached_parts = {p for name in others if name for p in embedding_parts(name)}
    except ValueError:  # an unknown trigger or compared extractor: reported by the grader checks
        cached_parts = set(parts)
    if set(parts) - cached_parts:
        problems.append(
            f"moderate.judge.extractor: no rule embeds the training texts for "
            f"{sorted(set(parts) - cached_parts)}; use tfidf, or parts of "
            f"grader.{trained}.extractor or grader.{trained}.compare.extractors"
        )
    if name == trigger:
        problems.append(
            f"moderate.judge.extractor: {name!r} is the trigger's own extractor "
            f"(grader.{trained}.extractor); the judge must read the texts another way"
        )
    return name


def notebook_injection(
    settings: ModerateSettings,
    notebook_policies: list[str],
    model_dir: str,
    traces_dir: str,
    embeddings: Sequence[str] = (),
    datasets: Sequence[str] = (),
) -> tuple[dict[str, Any], list[str]]:
    """Parameters and extra inputs of a notebook-06 analysis entry, derived from the
    ``moderate`` block and the trained grader's model folder.

    The notebook checks the traces of every simulated policy that the workflow also
    traces (``trace_policies``), so those trace files are inputs of the notebook job.
    ``embeddings`` are the grader's vector files of a dataset (``{dataset}`` in the
    path): the notebook reads the sentence vectors the moderation jobs read
    (``embedding_caches``, one per dataset of ``datasets``) instead of encoding every
    sentence again.
    """
    trace_policies = [p for p in settings.policies if p in notebook_policies]
    params = {
        "model_dir": model_dir,
        "user_policies": settings.user_policies,
        "traces_dir": traces_dir,
        "trace_policies": trace_policies,
        "judge_dir": settings.judge_dir or "",
        "embedding_caches": [e.format(dataset=d) for d in datasets for e in embeddings],
    }
    inputs = [f"{model_dir}/model.pkl"]
    if settings.judge_dir:
        inputs.append(f"{settings.judge_dir}/model.pkl")
    inputs += [f"{traces_dir}/{p}/{{dataset}}.jsonl" for p in trace_policies]
    inputs += list(embeddings)
    return params, inputs


def with_moderation(
    analyses: Mapping[str, dict[str, Any]],
    settings: ModerateSettings,
    model_dir: str,
    traces_dir: str,
    backend_module: str,
    embeddings: Sequence[str] = (),
) -> dict[str, dict[str, Any]]:
    """The resolved analysis entries with each notebook-06 entry completed from the
    ``moderate`` block: its grader, the injected parameters and inputs, and the backend
    module its code hash covers. A new mapping; nothing the config holds is changed."""
    out = {name: dict(spec) for name, spec in analyses.items()}
    for name in settings.notebook_entries:
        spec = out[name]
        params, inputs = notebook_injection(
            settings,
            list(spec["parameters"]["policies"]),
            model_dir,
            traces_dir,
            embeddings,
            spec["datasets"],
        )
        spec["grader"] = settings.grader
        spec["backend_modules"] = [backend_module]
        spec["parameters"] = {**spec["parameters"], **params}
        spec["inputs"] = [*(spec.get("inputs") or []), *inputs]
    return out
