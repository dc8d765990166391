"""The harm-benefit tree: pydantic models, AIR typing of harmful actions, JSON schema.

A tree lists stakeholders; each has harmful and beneficial actions; each action has
effects; each effect has a category (from the side's effect taxonomy,
:mod:`harmtrace.trees.effects`), ``immediacy`` (bool), ``extent`` (minor, significant,
substantial, major) and ``likelihood`` (low, medium, high). A harmful action is typed
by the AIR 2024 taxonomy (level-2 name required, level-3 and level-4 optional).

Validation has two layers. The models check structure and vocabulary on their own (so
the JSON schema, ``schemas/tree.schema.json``, says everything an LLM must produce).
Given the loaded AIR taxonomy in the validation context
(``HarmBenefitTree.model_validate(obj, context={"taxonomy": tax})``), AIR names are
also checked and put in canonical spelling: case, ``&``/``and`` and punctuation are
ignored, near-misses are accepted above a similarity cut-off, and every such fix or an
unresolvable level-3/4 name is noted in ``context["warnings"]``. An unknown level-2
name makes the tree invalid.
"""

from __future__ import annotations

import difflib
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from harmtrace.trees.effects import effect_taxonomy

Extent = Literal["minor", "significant", "substantial", "major"]
Likelihood = Literal["low", "medium", "high"]
HarmCategory = Literal[effect_taxonomy("harm").categories]  # type: ignore[valid-type]
BenefitCategory = Literal[effect_taxonomy("benefit").categories]  # type: ignore[valid-type]
TREE_SCHEMA_FILE = "tree.schema.json"
TREE_SCHEMA_VERSION = "1"

_L2_CUTOFF = 0.8
_L3_CUTOFF = 0.7


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _lower(v: Any) -> Any:
    return " ".join(v.strip().lower().split()) if isinstance(v, str) else v


class _Effect(_Model):
    description: str = Field(default="", description="what happens to the stakeholder")
    immediacy: bool = Field(description="true: follows directly and soon; false: downstream")
    extent: Extent = Field(description="how serious: minor < significant < substantial < major")
    likelihood: Likelihood = Field(description="low (<30%), medium (30-70%), high (>70%)")

    @field_validator("extent", "likelihood", "category", mode="before", check_fields=False)
    @classmethod
    def _normalise(cls, v: Any) -> Any:
        return _lower(v)


class HarmEffect(_Effect):
    category: HarmCategory = Field(description="harm effect category (harm_effects.yaml)")  # type: ignore[valid-type]


class BenefitEffect(_Effect):
    category: BenefitCategory = Field(description="benefit effect category (benefit_effects.yaml)")  # type: ignore[valid-type]


def _norm_name(s: str) -> str:
    s = s.casefold().replace("&", " and ")
    s = re.sub(r"^\s*[#\d.\s]+", "", s)
    return " ".join(re.sub(r"[^a-z0-9]+", " ", s).split())


def _closest(name: str, options: list[str], cutoff: float) -> str | None:
    """Canonical option for ``name``: normalised equality, containment, then similarity."""
    norm = {_norm_name(o): o for o in options}
    key = _norm_name(name)
    if key in norm:
        return norm[key]
    contained = [o for k, o in norm.items() if k and (k in key or key in k)]
    if len(contained) == 1:
        return contained[0]
    hit = difflib.get_close_matches(key, list(norm), n=1, cutoff=cutoff)
    return norm[hit[0]] if hit else None


class AirType(_Model):
    """The AIR 2024 risk a harmful action falls under."""

    l2: str = Field(description="AIR level-2 category name, e.g. 'Violence & Extremism'")
    l3: str | None = Field(default=None, description="AIR level-3 name, e.g. 'Violent acts'")
    l4: str | None = Field(default=None, description="AIR level-4 risk name, if known")
    idx: str | None = Field(default=None, description="AIR risk id, e.g. '3.9.8'")

    @model_validator(mode="before")
    @classmethod
    def _canonical(cls, data: Any, info: ValidationInfo) -> Any:
        tax = (info.context or {}).get("taxonomy")
        if tax is None or not isinstance(data, dict) or not isinstance(data.get("l2"), str):
            return data
        warnings: list[str] = (info.context or {}).setdefault("warnings", [])
        data = dict(data)
        names = tax.names
        l2 = _closest(data["l2"], list(names), _L2_CUTOFF)
        if l2 is None:
            raise ValueError(
                f"unknown AIR level-2 category {data['l2']!r}; use one of {list(names)}"
            )
        if l2 != data["l2"]:
            warnings.append(f"AIR level-2 {data['l2']!r} read as {l2!r}")
        data["l2"] = l2
        data["idx"] = None
        level: dict[str, Any] = names[l2]
        for key in ("l3", "l4"):
            given = data.get(key)
            if not isinstance(given, str) or not given.strip():
                data[key] = None
                if key == "l3":
                    data["l4"] = None
                    break
                continue
            name = _closest(given, list(level), _L3_CUTOFF)
            if name is None:
                warnings.append(f"AIR {key} {given!r} is not under {l2!r}; dropped")
                data[key] = None
                if key == "l3":
                    data["l4"] = None
                    break
                continue
            if name != given:
                warnings.append(f"AIR {key} {given!r} read as {name!r}")
            data[key] = name
            if key == "l3":
                level = level[name]
            else:
                data["idx"] = level[name]
        return data


class HarmfulAction(_Model):
    action: str = Field(min_length=1, description="what a compliant answer would enable")
    air: AirType
    effects: list[HarmEffect] = Field(min_length=1)


class BeneficialAction(_Model):
    action: str = Field(min_length=1, description="what a compliant answer would enable")
    effects: list[BenefitEffect] = Field(min_length=1)


class Stakeholder(_Model):
    name: str = Field(min_length=1, description="person, group, community or entity affected")
    harms: list[HarmfulAction] = Field(default_factory=list)
    benefits: list[BeneficialAction] = Field(default_factory=list)


class HarmBenefitTree(_Model):
    """What a generator produces for one prompt."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="harm-benefit tree",
        json_schema_extra={"$comment": f"harmtrace tree schema version {TREE_SCHEMA_VERSION}"},
    )

    stakeholders: list[Stakeholder] = Field(min_length=1)

    def effects(self) -> list[dict[str, Any]]:
        """Flat rows, one per effect: stakeholder, side, action, AIR names, effect fields."""
        rows = []
        for s in self.stakeholders:
            for side, actions in (("harm", s.harms), ("benefit", s.benefits)):
                for a in actions:
                    air = getattr(a, "air", None)
                    for e in a.effects:
                        rows.append(
                            {
                                "stakeholder": s.name,
                                "side": side,
                                "action": a.action,
                                "air_l2": air.l2 if air else None,
                                "air_l3": air.l3 if air else None,
                                "category": e.category,
                                "immediacy": e.immediacy,
                                "extent": e.extent,
                                "likelihood": e.likelihood,
                            }
                        )
        return rows


class Provenance(_Model):
    generator: str
    version: str = Field(description="changes whenever the generator's output could change")
    spec_hash: str = Field(description="sha256[:16] of the generator spec (canonical JSON)")
    proxy: bool = Field(description="true when the tree is built without an LLM (a proxy)")


class TreeRecord(_Model):
    """One line of ``results/trees/<generator>/<dataset>.jsonl``: a tree or a failure."""

    record_id: str
    dataset: str
    status: Literal["ok", "failed"]
    attempts: int = Field(ge=0, description="generation attempts used (0: not generated)")
    repaired: bool = Field(default=False, description="JSON needed repair before it parsed")
    errors: list[str] = Field(default_factory=list, description="why attempts failed")
    warnings: list[str] = Field(default_factory=list, description="names fixed or dropped")
    tree: HarmBenefitTree | None = None
    raw: str | None = Field(default=None, description="last raw answer of a failed LLM run")
    provenance: Provenance

    @model_validator(mode="after")
    def _tree_iff_ok(self) -> TreeRecord:
        if (self.status == "ok") != (self.tree is not None):
            raise ValueError("status 'ok' needs a tree and 'failed' must not have one")
        return self


def tree_json_schema() -> dict[str, Any]:
    """The JSON schema of :class:`HarmBenefitTree` (what an LLM generator must return)."""
    return HarmBenefitTree.model_json_schema()


def render_tree_schema() -> str:
    return json.dumps(tree_json_schema(), indent=2, sort_keys=True) + "\n"


def shipped_tree_schema() -> str:
    """The committed ``harmtrace/schemas/tree.schema.json`` (kept equal by a unit test)."""
    return resources.files("harmtrace.schemas").joinpath(TREE_SCHEMA_FILE).read_text("utf-8")


def write_tree_schema(path: Path) -> None:
    path.write_text(render_tree_schema(), encoding="utf-8")
