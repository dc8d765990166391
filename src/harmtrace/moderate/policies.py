"""Moderation policies: versioned data files, validated by pydantic, found by name.

A policy maps what the safety analysis found to one action. Scores are turned into
*levels* (``low``, ``medium``, ``high``: the names of severities 1-3 in
:mod:`harmtrace.taxonomy`) by per-category thresholds, and each level has an action:

=============  =====================================================================
``pass``       show the response unchanged
``annotate``   show it unchanged, with the flags attached for the reader
``redact``     modify: replace each sentence flagged at or above the level with a
               placeholder (``redaction``)
``rewrite``    modify: an LLM rewrites the flagged sentences (needs an LLM backend)
``block``      replace the response with the policy's safe message
``regenerate`` an LLM writes a new response under the policy's constraints (needs an
               LLM backend)
=============  =====================================================================

Thresholds are on the grader's severity (``basis: severity``, integers 1-3: the level
starts at that severity) or on its calibrated probability (``basis: probability``,
floats in (0, 1]). ``thresholds.default`` applies to every category; a category entry
overrides the keys it sets (``null`` switches a level off for that category). Actions
must not get milder as the level rises, and thresholds must not fall.

Policies are found by name in :data:`POLICIES`, the policy kind of
:mod:`harmtrace.plugins` (a registry of validated specs, not classes): shipped ones are
YAML files beside this module (``policies/<name>.yaml``), and another package adds its own
through the ``harmtrace.policies`` entry-point group. The entry point's name is the
policy's name and it loads to a :class:`PolicySpec`, a mapping of its fields, or the path
of a YAML file holding them (a ``str``, a path, or an ``importlib.resources`` file)::

    [project.entry-points."harmtrace.policies"]
    strict = "mypackage.policies:STRICT_YAML"   # files("mypackage") / "strict.yaml"

User policies (e.g. from the workflow config) are the same :class:`PolicySpec` and may not
take a registered name. A policy using ``rewrite`` or ``regenerate`` fails validation
unless an LLM backend is named in the validation context (:func:`validate_policy`), so an
LLM-only action never degrades silently into something else.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pathlib
from collections.abc import Mapping
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from harmtrace.errors import HarmtraceError
from harmtrace.moderate.levels import ACTION_RANK, LEVELS, LLM_ACTIONS, SENTENCE_ACTIONS, Action
from harmtrace.moderate.levels import ACTIONS as ACTIONS
from harmtrace.moderate.levels import INTERVENTION_KIND as INTERVENTION_KIND
from harmtrace.moderate.levels import LEVEL_CODE as LEVEL_CODE
from harmtrace.plugins import Registry
from harmtrace.taxonomy import CATEGORIES

DEFAULT_SAFE_MESSAGE = (
    "This response was withheld because it did not meet the content policy. "
    "The audit trail records why."
)


class PolicyError(HarmtraceError):
    """A policy is unknown, malformed, or needs a backend that is not configured."""


class LevelThresholds(BaseModel):
    """Where each level starts for one category; ``None`` switches a level off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float | None = None
    medium: float | None = None
    high: float | None = None

    def values(self) -> tuple[float | None, float | None, float | None]:
        return (self.low, self.medium, self.high)


_SEVERITY_DEFAULT = LevelThresholds(low=1, medium=2, high=3)


class PolicySpec(BaseModel):
    """One moderation policy (see the module docstring for the semantics)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="registry name, snake_case")
    version: str = Field(pattern=r"^[0-9]+(\.[0-9]+)*$", description="bump on any change")
    description: str = Field(min_length=1)
    basis: Literal["severity", "probability"] = "severity"
    thresholds: dict[str, LevelThresholds] = Field(default_factory=dict)
    actions: dict[str, Action]
    safe_message: str = Field(DEFAULT_SAFE_MESSAGE, min_length=1)
    redaction: str = Field(
        "[sentence removed]",
        description=(
            "placeholder for a redacted sentence; may name {category}. The default names "
            "none because the placeholder is re-scored with the output, and a category "
            "word would score as that category"
        ),
    )
    unlocalized: Literal["pass", "annotate", "block"] = Field(
        "block",
        description=(
            "what a sentence action (redact, rewrite) does when the whole response reaches "
            "its level but no single sentence does, so there is nothing to cut"
        ),
    )
    constraints: str = Field(
        "Do not include hateful, sexual, violent or self-harm content; keep to the user's "
        "legitimate need.",
        description="instructions given to the LLM for rewrite and regenerate",
    )

    @field_validator("thresholds")
    @classmethod
    def _known_categories(cls, v: dict[str, LevelThresholds]) -> dict[str, LevelThresholds]:
        unknown = sorted(set(v) - {"default", *CATEGORIES})
        if unknown:
            raise ValueError(
                f"unknown threshold key(s) {unknown}; use 'default' or one of {list(CATEGORIES)}"
            )
        return v

    @field_validator("actions")
    @classmethod
    def _all_levels(cls, v: dict[str, str]) -> dict[str, str]:
        if set(v) != set(LEVELS):
            raise ValueError(
                f"actions must name every level {list(LEVELS)} exactly, got {sorted(v)}"
            )
        ranks = [ACTION_RANK[v[level]] for level in LEVELS]
        if ranks != sorted(ranks):
            shown = ", ".join(f"{level}: {v[level]}" for level in LEVELS)
            raise ValueError(f"actions get milder as the level rises ({shown}); reorder them")
        return v

    @field_validator("redaction")
    @classmethod
    def _placeholder(cls, v: str) -> str:
        try:
            v.format(category="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"redaction may only use the field {{category}}: {exc}") from None
        return v

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> PolicySpec:
        for cat in CATEGORIES:
            values = self.category_thresholds(cat)
            given = [x for x in values if x is not None]
            if self.basis == "severity":
                bad = [x for x in given if x not in (1, 2, 3)]
                if bad:
                    raise ValueError(f"{cat}: severity thresholds must be 1, 2 or 3, got {bad}")
            else:
                bad = [x for x in given if not (0.0 < x <= 1.0 and math.isfinite(x))]
                if bad:
                    raise ValueError(f"{cat}: probability thresholds must lie in (0, 1]: {bad}")
            if given != sorted(given):
                shown = dict(zip(LEVELS, values, strict=True))
                raise ValueError(f"{cat}: thresholds fall as the level rises: {shown}")
        if self.basis == "probability" and "default" not in self.thresholds:
            missing = [c for c in CATEGORIES if c not in self.thresholds]
            if missing:
                raise ValueError(
                    f"basis 'probability' has no built-in default; give thresholds.default "
                    f"or entries for {missing}"
                )
        context = info.context if isinstance(info.context, Mapping) else None
        if context is not None and "llm" in context:
            check_backend(self, context["llm"])
        return self

    # ----------------------------------------------------------------- derived
    def category_thresholds(self, category: str) -> tuple[float | None, ...]:
        """Thresholds (low, medium, high) for one category after applying the default."""
        if self.basis == "severity":
            base = self.thresholds.get("default", _SEVERITY_DEFAULT)
            if "default" in self.thresholds:
                base = _merge(_SEVERITY_DEFAULT, base)
        else:
            base = self.thresholds.get("default", LevelThresholds())
        own = self.thresholds.get(category)
        merged = _merge(base, own) if own is not None else base
        return merged.values()

    @property
    def requires_llm(self) -> bool:
        return any(a in LLM_ACTIONS for a in self.actions.values())

    def action_at(self, level: int) -> str:
        """Action for level code 0..3 (0: nothing reached, always ``pass``)."""
        return "pass" if level <= 0 else self.actions[LEVELS[level - 1]]

    @property
    def first_sentence_level(self) -> int:
        """Lowest level code whose action edits sentences (redact/rewrite); 4 if none."""
        for i, level in enumerate(LEVELS, start=1):
            if self.actions[level] in SENTENCE_ACTIONS:
                return i
        return len(LEVELS) + 1

    def canonical(self) -> dict[str, Any]:
        """Every field, defaults included, as plain JSON (the basis of the fingerprint)."""
        return self.model_dump(mode="json")

    @property
    def fingerprint(self) -> str:
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]

    @property
    def policy_version(self) -> str:
        """``name@version+fingerprint``: changes when any field of the policy changes."""
        return f"{self.name}@{self.version}+{self.fingerprint}"

    def rule_text(self, level: int) -> str:
        """The rule behind a level's action, in words, for justifications."""
        name = LEVELS[level - 1]
        unit = "severity" if self.basis == "severity" else "probability"
        groups: dict[float, list[str]] = {}
        for cat in CATEGORIES:
            t = self.category_thresholds(cat)[level - 1]
            if t is not None:
                groups.setdefault(float(t), []).append(cat)
        parts = []
        for t, cats in sorted(groups.items()):
            shown = f"{int(t)}" if self.basis == "severity" else f"{t:g}"
            who = "any category" if len(cats) == len(CATEGORIES) else " or ".join(cats)
            parts.append(f"{who} at {unit} >= {shown}")
        starts = "; ".join(parts) if parts else "never reached"
        return f"{name} -> {self.actions[name]} ({starts})"


def _merge(base: LevelThresholds, own: LevelThresholds) -> LevelThresholds:
    values = {k: getattr(base, k) for k in LEVELS}
    for key in own.model_fields_set:
        values[key] = getattr(own, key)
    return LevelThresholds(**values)


def check_backend(policy: PolicySpec, llm: object | None) -> None:
    """Refuse a policy whose actions need an LLM when none is configured."""
    if policy.requires_llm and llm is None:
        used = ", ".join(
            f"{level}: {policy.actions[level]}"
            for level in LEVELS
            if policy.actions[level] in LLM_ACTIONS
        )
        raise PolicyError(
            f"policy {policy.name!r} uses LLM-only action(s) ({used}) but no LLM backend is "
            "configured; configure one, or use redact/block instead"
        )


def validate_policy(
    data: Mapping[str, Any], llm: object | None = None, where: str = ""
) -> PolicySpec:
    """A :class:`PolicySpec` from a mapping, checked against the available backends."""
    return _validated(data, where, {"llm": llm})


POLICY_GROUP = "harmtrace.policies"
"""The entry-point group through which another package adds policies."""


def _validated(
    data: Mapping[str, Any], where: str, context: dict[str, Any] | None = None
) -> PolicySpec:
    """The spec, or a :class:`PolicyError` naming ``where`` and every offending key."""
    try:
        return PolicySpec.model_validate(dict(data), context=context)
    except ValidationError as exc:
        place = where or f"policy {data.get('name', '?')!r}"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(policy)'}: {e['msg']}" for e in exc.errors()
        )
        raise PolicyError(f"{place}: invalid policy: {problems}") from None
    except PolicyError as exc:
        raise PolicyError(f"{where}: {exc}" if where else str(exc)) from None


def _adopt(name: str, source: Any) -> PolicySpec:
    """A registered policy from a shipped file or an entry point (module docstring), checked
    for structure only: LLM availability is checked when it is used (:func:`get_policy`)."""
    where = f"policy {name!r} (entry point in {POLICY_GROUP!r})"
    if isinstance(source, str | os.PathLike):
        source = pathlib.Path(source)
    if hasattr(source, "read_text"):  # a path or an importlib.resources file
        where = str(source)
        source = yaml.safe_load(source.read_text(encoding="utf-8"))
    if isinstance(source, Mapping):
        source = _validated(source, where)
    if not isinstance(source, PolicySpec):
        raise PolicyError(
            f"{where}: gives {type(source).__name__}, not a PolicySpec, a mapping of its "
            "fields or a YAML file path"
        )
    if source.name != name:
        raise PolicyError(f"{where}: declares name {source.name!r}; it must be {name!r}")
    return source


_SHIPPED = resources.files("harmtrace.moderate").joinpath("policies")
POLICIES: Registry[PolicySpec] = Registry(
    kind="policy",
    where="policy {name}",
    group=POLICY_GROUP,
    builtin={
        f.name.removesuffix(".yaml"): f for f in _SHIPPED.iterdir() if f.name.endswith(".yaml")
    },
    error=PolicyError,
    adopt=_adopt,
)
"""Shipped and installed policies by name, each parsed and validated on first use."""


def load_registry() -> dict[str, PolicySpec]:
    """Every shipped and installed policy, validated for structure, by name."""
    return {name: POLICIES.get(name) for name in POLICIES.names()}


def get_policy(
    name: str, llm: object | None = None, user: Mapping[str, Mapping[str, Any]] | None = None
) -> PolicySpec:
    """A policy by name: from ``user`` specs (e.g. config) first, then the registered ones.

    Raises :class:`PolicyError` for unknown names and for LLM-only actions without ``llm``.
    """
    if user and name in user:
        spec = dict(user[name])
        if spec.setdefault("name", name) != name:
            raise PolicyError(f"user policy {name!r} declares name {spec['name']!r}")
        return validate_policy(spec, llm=llm, where=f"user policy {name!r}")
    if name not in POLICIES.names():
        known = sorted({*POLICIES.names(), *(user or {})})
        raise PolicyError(f"unknown policy {name!r}; known policies: {', '.join(known)}")
    policy = POLICIES.get(name)
    check_backend(policy, llm)
    return policy


def policy_with(policy: PolicySpec, **changes: Any) -> PolicySpec:
    """A validated copy with some fields replaced (used to sweep thresholds)."""
    data = policy.model_dump(mode="json")
    data.update(changes)
    try:
        return PolicySpec.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(f"policy {data.get('name')!r} with {sorted(changes)}: {exc}") from None


def policy_config_problems(
    names: list[str],
    user: Mapping[str, Mapping[str, Any]] | None,
    where: str = "moderate",
    check_user: bool = True,
) -> list[str]:
    """Every problem with a workflow's policy settings, for a parse-time config check:
    unknown names, and (with ``check_user``) user policies that are invalid, take a
    registered (shipped or installed) name, or need an LLM."""
    problems: list[str] = []
    shipped = POLICIES.names()
    user = dict(user or {})
    for name in user if check_user else ():
        if name in shipped:
            problems.append(
                f"{where}.policies.{name}: a user policy may not take a shipped name "
                "(nor an installed policy's)"
            )
            continue
        try:
            get_policy(name, llm=None, user=user)
        except PolicyError as exc:
            problems.append(f"{where}.policies.{name}: {exc}")
    for name in names:
        if name not in shipped and name not in user:
            known = ", ".join(sorted({*shipped, *user}))
            problems.append(f"{where}: unknown policy {name!r} (known: {known})")
    return problems
