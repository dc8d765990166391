"""Render the paper's LaTeX templates for what a run actually did.

Method. ``paper/**/*.tex`` are Jinja2 templates. Their context is the *study manifest*
(``results/paper/study.json``: the datasets, targets, graders, analyses and stages of the
run, :class:`StudyManifest`) and the producers' numbers (``results/numbers/*.json``), so
a section whose analysis did not run is not rendered, the Data section lists the run's
own datasets, and wording that depends on a result ("higher"/"lower", "depends on how
ties are handled") is chosen from the raw value instead of being typed.

Why Jinja2 with other delimiters: LaTeX uses ``{}``, ``%`` and ``#`` everywhere, so the
default ``{{ }}``/``{% %}``/``{# #}`` would collide. Here blocks are ``<% %>``, variables
``<< >>`` and comments ``<# #>``. Undefined names fail (``StrictUndefined``) rather than
render as nothing, and every name that comes from data or config (titles, target names,
model ids, system prompts) goes through the ``latex`` filter, the same escaping the tables
use (:func:`harmtrace.report.macros.escape_latex`). Numbers in the text stay macros
(``<< m("transitions", ds ~ " all overall n") >>`` writes ``\\HtTransitions...``):
templates choose words from numbers, they never print one.
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, Literal

import jinja2
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from harmtrace.errors import HarmtraceError
from harmtrace.report.latex import file_stem
from harmtrace.report.macros import Number, escape_latex, macro_name, read_numbers


class RenderError(HarmtraceError):
    """The manifest is invalid, or a template cannot be rendered for it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StudySummary(_Strict):
    datasets: list[str]
    targets: list[str] = []
    grader: str
    reference_grader: str | None = None
    labels_measure: bool = False
    """The study's grader reads the labels its files carry: they are the measurement."""


class DatasetEntry(_Strict):
    title: str
    citation: str | None = None
    user: bool = False
    has_responses: bool
    kind: Literal["answers", "prompts", "texts", "labelled_answers", "lexicon", "model_answers"]
    records: int | None = None


class TargetEntry(_Strict):
    backend: str
    model: str
    system_prompt: str | None = None


class PolicyEntry(_Strict):
    name: str
    description: str


class AnalysisEntry(_Strict):
    entry: str
    grader: str
    datasets: list[str]
    roles: dict[str, list[str]] = {}
    """Datasets by the role an analysis parameter gives them (``harmful``, ``benign``)."""
    policies: list[PolicyEntry] = []
    """Moderation policies compared, in order, with their descriptions."""
    traced: list[str] = []
    """Those of :attr:`policies` whose traces the run writes (a trace viewer each)."""
    parameters: dict[str, str | int | float | bool | None] = {}
    """The analysis's scalar parameters (e.g. the tree generator the harm-benefit section
    reports), so the text names what the run configured."""


class Stages(_Strict):
    respond: bool = False
    trees: bool = False
    moderate: bool = False
    transfer: bool = False
    refusal_transfer: bool = False


class StudyManifest(_Strict):
    """``results/paper/study.json``: what the run did. An analysis absent did not run."""

    study: StudySummary
    datasets: dict[str, DatasetEntry]
    targets: dict[str, TargetEntry] = {}
    graders: list[str]
    analyses: dict[str, AnalysisEntry] = {}
    stages: Stages = Stages()


def load_manifest(path: Path) -> StudyManifest:
    try:
        return StudyManifest.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValidationError) as exc:
        raise RenderError(f"{path}: not a study manifest ({exc})") from exc


_FROM_LINE = re.compile(r"^% from (\S+) \((.+\.json)\)$", re.MULTILINE)


def numbers_files(numbers_tex: Path, numbers_dir: Path) -> list[Path]:
    """The numbers JSON files ``numbers.tex`` was written from, found in ``numbers_dir``.

    Only these are read, so a stale file left in the folder by an earlier run cannot steer
    the wording of a paper whose macros came from other files.
    """
    names = [m.group(2) for m in _FROM_LINE.finditer(numbers_tex.read_text(encoding="utf-8"))]
    missing = [n for n in names if not (numbers_dir / n).is_file()]
    if missing:
        raise RenderError(f"{numbers_tex} was written from {missing}, not found in {numbers_dir}")
    return [numbers_dir / n for n in names]


class Numbers:
    """Producers' raw numbers by file stem (``01_transitions``) or producer name."""

    def __init__(self, paths: Iterable[Path] = ()) -> None:
        self.values: dict[str, dict[str, Number]] = {}
        self.producer: dict[str, str] = {}
        for path in paths:
            producer, numbers = read_numbers(Path(path))
            for name in {Path(path).stem, producer}:
                self.values[name] = numbers
                self.producer[name] = producer

    def has(self, source: str, key: str) -> bool:
        number = self.values.get(source, {}).get(key)
        if number is None:
            return False
        value = number.value
        return not (isinstance(value, float) and math.isnan(value))

    def num(self, source: str, key: str) -> Any:
        """The raw value (a float, int, string or interval); a missing one is an error."""
        if source not in self.values:
            raise RenderError(f"the templates read numbers of {source!r}, which were not given")
        if key not in self.values[source]:
            raise RenderError(f"{source}: no number {key!r} (guard the text with has())")
        return self.values[source][key].value

    def macro(self, source: str, key: str) -> str:
        """``\\Ht...`` for a producer's key: the text shows the number, never the value."""
        return "\\" + macro_name(self.producer.get(source, source), key)


def load_bibkeys(path: Path) -> dict[str, dict[str, Any]]:
    """``datasets.yaml`` beside the templates: dataset -> {bibkey, ...}; empty if absent."""
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        block_start_string="<%",
        block_end_string="%>",
        variable_start_string="<<",
        variable_end_string=">>",
        comment_start_string="<#",
        comment_end_string="#>",
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["latex"] = escape_latex
    return env


def context(
    manifest: StudyManifest, numbers: Numbers, meta: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """What a template sees: the manifest, number helpers and run predicates."""
    analyses = manifest.analyses
    by_entry = {a.entry: key for key, a in analyses.items()}

    def analysis_id(name: str) -> str | None:
        return name if name in analyses else by_entry.get(name)

    def ran(name: str) -> bool:
        """An analysis (``01_transitions`` or its config entry ``transitions``) ran."""
        return analysis_id(name) is not None

    def analysed(name: str, dataset: str) -> bool:
        key = analysis_id(name)
        return key is not None and dataset in analyses[key].datasets

    def in_run(dataset: str) -> bool:
        return dataset in manifest.study.datasets or dataset in manifest.datasets

    def datasets_of(name: str) -> list[str]:
        key = analysis_id(name)
        return list(analyses[key].datasets) if key is not None else []

    def title(dataset: str) -> str:
        entry = manifest.datasets.get(dataset)
        return escape_latex(entry.title if entry else dataset)

    def roles(name: str, role: str) -> list[str]:
        """The datasets an analysis uses in ``role`` (empty when it did not run)."""
        key = analysis_id(name)
        return list(analyses[key].roles.get(role, [])) if key is not None else []

    def param(name: str, key: str) -> Any:
        """A scalar parameter of an analysis that ran; a missing one is an error."""
        key_ = analysis_id(name)
        if key_ is None or key not in analyses[key_].parameters:
            raise RenderError(f"analysis {name!r} has no parameter {key!r} in the manifest")
        return analyses[key_].parameters[key]

    return {
        "manifest": manifest,
        "study": manifest.study,
        "datasets": manifest.datasets,
        "targets": manifest.targets,
        "stages": manifest.stages,
        "meta": meta,
        "ran": ran,
        "analysed": analysed,
        "in_run": in_run,
        "datasets_of": datasets_of,
        "user_datasets": [n for n, d in manifest.datasets.items() if d.user],
        # the study's datasets, then every other dataset the run describes (grader data)
        "run_datasets": [
            *manifest.study.datasets,
            *(n for n in manifest.datasets if n not in manifest.study.datasets),
        ],
        "role": lambda dataset: meta.get(dataset, {}).get("role"),
        "cite": partial(cite, meta),
        "title": title,
        "num": numbers.num,
        "has": numbers.has,
        "m": numbers.macro,
        "camel": camel,
        "stem": file_stem,
        "name": partial(name, meta),
        "names": partial(names, meta),
        "roles": roles,
        # the moderation policies a run compares (name -> description), in its order
        "policies": lambda name: list(analyses[analysis_id(name)].policies) if ran(name) else [],
        "traced": lambda name: list(analyses[analysis_id(name)].traced) if ran(name) else [],
        "below": below,
        "having": partial(having, numbers),
        "param": param,
        "each": partial(each, numbers, meta),
    }


def below(p: float | str, alpha: float) -> bool:
    """A p-value below alpha; words ("not testable") or NaN are never below."""
    return isinstance(p, int | float) and math.isfinite(p) and p < alpha


def having(numbers: Numbers, source: str, key: str, datasets: Iterable[str]) -> list[str]:
    """Those of ``datasets`` for which ``source`` wrote the number ``"<key> <dataset>"``:
    the sets a sentence about that number can name."""
    return [d for d in datasets if numbers.has(source, f"{key} {d}")]


def each(
    numbers: Numbers,
    meta: Mapping[str, Mapping[str, Any]],
    source: str,
    key: str,
    datasets: list[str],
    joiner: str = "on",
) -> str:
    """ "\\HtA{} on A, \\HtB{} on B and \\HtC{} on C": one number per dataset, each
    named beside its own number, so the text cannot pair a value with the wrong set."""
    if not datasets:
        raise RenderError(f"each({key!r}): no dataset, so the phrase would be empty")
    return _phrase(
        [f"{numbers.macro(source, f'{key} {d}')}{{}} {joiner} {name(meta, d)}" for d in datasets]
    )


def cite(meta: Mapping[str, Mapping[str, Any]], dataset: str) -> str:
    key = meta.get(dataset, {}).get("bibkey")
    return f"~\\citep{{{key}}}" if key else ""


def name(meta: Mapping[str, Mapping[str, Any]], dataset: str) -> str:
    """A dataset as running text names it: its short LaTeX name from ``datasets.yaml``,
    else its own name in typewriter type (the Data section gives its title)."""
    return meta.get(dataset, {}).get("short") or f"\\texttt{{{escape_latex(dataset)}}}"


def names(meta: Mapping[str, Mapping[str, Any]], datasets: list[str], cited: bool = True) -> str:
    """Datasets as running text lists them: "A, B and C", each cited once."""
    if not datasets:
        raise RenderError("names(): an empty list of datasets would print an empty phrase")
    return _phrase([name(meta, d) + (cite(meta, d) if cited else "") for d in datasets])


def _phrase(parts: list[str]) -> str:
    """ "A", "A and B", "A, B and C"."""
    if len(parts) == 1:
        return parts[0]
    return f"{', '.join(parts[:-1])} and {parts[-1]}"


def camel(words: str) -> str:
    """The part of a macro name that ``words`` (a sample such as ``hh-rlhf-harmless:chosen``)
    becomes: ``\\HtAsymmetry<< camel(sample) >>Records`` is the macro of key
    ``"<sample> records"``, as :func:`~harmtrace.report.macros.macro_name` builds it."""
    return macro_name("", words).removeprefix("Ht")


def render_text(text: str, ctx: dict[str, Any], name: str = "<template>") -> str:
    try:
        return environment().from_string(text).render(ctx)
    except jinja2.TemplateError as exc:
        where = f"{name}:{exc.lineno}" if getattr(exc, "lineno", None) else name
        raise RenderError(f"{where}: {exc}") from exc
    except RenderError as exc:
        raise RenderError(f"{name}: {exc}") from exc


def render_sources(
    sources: Path,
    out: Path,
    manifest: StudyManifest,
    numbers: Numbers,
) -> list[Path]:
    """Copy ``sources`` to ``out`` and render every ``.tex`` file there in place."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(sources, out)
    ctx = context(manifest, numbers, load_bibkeys(sources / "datasets.yaml"))
    rendered = []
    for tex in sorted(out.rglob("*.tex")):
        name = str(tex.relative_to(out))
        tex.write_text(render_text(tex.read_text(encoding="utf-8"), ctx, name), encoding="utf-8")
        rendered.append(tex)
    return rendered


_TEMPLATE_SYNTAX = re.compile(r"<%|<<|<#")


def has_template_syntax(sources: Path) -> list[Path]:
    """The ``.tex`` files under ``sources`` that are templates (need a manifest)."""
    return [
        p
        for p in sorted(sources.rglob("*.tex"))
        if _TEMPLATE_SYNTAX.search(p.read_text(encoding="utf-8"))
    ]
