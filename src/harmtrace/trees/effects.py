"""The vocabulary of harm-benefit trees, read from the data files shipped in the package.

``data/harm_effects.yaml`` and ``data/benefit_effects.yaml`` list the effect categories
of each side (physical, psychological, social, property, liberty, collective,
ecological), with numbered subcategories so an answer such as "7. financial loss" maps
to its category by number; ``data/scales.yaml`` defines the extent and likelihood
levels; ``data/air_links.yaml`` says how the offline proxy generator turns an AIR
level-2 category into effects. Everything that names a category imports it from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml

from harmtrace.errors import HarmtraceError

Side = Literal["harm", "benefit"]
SIDES: tuple[Side, ...] = ("harm", "benefit")
EXTENTS: tuple[str, ...] = ("minor", "significant", "substantial", "major")
"""Extent levels, least to most serious (the aggregation keeps their weights monotone)."""
LIKELIHOODS: tuple[str, ...] = ("low", "medium", "high")
STAKEHOLDER_ROLES: tuple[str, ...] = ("requester", "third parties", "society")
"""Stakeholders the offline proxy generator uses; LLM generators name their own."""


class VocabularyError(HarmtraceError):
    """A package data file of the tree vocabulary is malformed."""


@dataclass(frozen=True)
class EffectTaxonomy:
    """One side's effect categories: names in order, titles, descriptions, subcategories."""

    side: Side
    categories: tuple[str, ...]
    titles: dict[str, str]
    descriptions: dict[str, str]
    subcategories: dict[int, tuple[str, str]]
    """number -> (category, subcategory text)"""

    def resolve(self, text: str) -> str | None:
        """The category an answer names: by subcategory number, name, title or subcategory."""
        t = " ".join(str(text).strip().lower().split())
        m = re.match(r"^#?\s*(\d+)\s*[.):-]?\s*", t)
        if m and int(m.group(1)) in self.subcategories:
            return self.subcategories[int(m.group(1))][0]
        bare = re.sub(r"[^a-z ]+", " ", t)
        bare = " ".join(
            w for w in bare.split() if w not in ("harm", "harms", "benefit", "benefits")
        )
        for name in self.categories:
            if bare == name or bare == self.titles[name].lower():
                return name
        for name, sub in self.subcategories.values():
            if bare and (bare == sub.lower() or bare in sub.lower()):
                return name
        return None


def _read(name: str) -> Any:
    text = resources.files("harmtrace.trees").joinpath("data", name).read_text("utf-8")
    return yaml.safe_load(text)


@cache
def effect_taxonomy(side: Side) -> EffectTaxonomy:
    """The harm or benefit effect taxonomy from its package data file."""
    raw = _read(f"{side}_effects.yaml")
    try:
        cats = raw["categories"]
        subs = {
            int(n): (name, str(text))
            for name, spec in cats.items()
            for n, text in spec["subcategories"].items()
        }
        return EffectTaxonomy(
            side=side,
            categories=tuple(cats),
            titles={k: v["title"] for k, v in cats.items()},
            descriptions={k: v["description"] for k, v in cats.items()},
            subcategories=dict(sorted(subs.items())),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise VocabularyError(f"harmtrace/trees/data/{side}_effects.yaml: {exc}") from exc


@cache
def scales() -> dict[str, Any]:
    """Extent, likelihood and immediacy definitions (``data/scales.yaml``)."""
    raw = _read("scales.yaml")
    if tuple(raw["extent"]) != EXTENTS or tuple(raw["likelihood"]) != LIKELIHOODS:
        raise VocabularyError("harmtrace/trees/data/scales.yaml: levels out of order")
    return raw


def likelihood_of(probability: float) -> str:
    """The likelihood level whose probability band holds ``probability`` (scales.yaml)."""
    for level, spec in scales()["likelihood"].items():
        if probability < spec["below"]:
            return level
    return LIKELIHOODS[-1]


@dataclass(frozen=True)
class AirLink:
    """How the proxy generator expands one AIR level-2 category (``data/air_links.yaml``)."""

    effects: tuple[str, ...]
    stakeholder: str
    immediate: bool
    grader: tuple[str, ...]


@cache
def air_links() -> dict[str, AirLink]:
    from harmtrace.taxonomy import CATEGORIES

    harm = effect_taxonomy("harm").categories
    out = {}
    for l2, spec in _read("air_links.yaml").items():
        link = AirLink(
            effects=tuple(spec["effects"]),
            stakeholder=spec["stakeholder"],
            immediate=bool(spec["immediate"]),
            grader=tuple(spec["grader"]),
        )
        bad = [e for e in link.effects if e not in harm] + [
            g for g in link.grader if g not in CATEGORIES
        ]
        if bad or link.stakeholder not in STAKEHOLDER_ROLES:
            raise VocabularyError(f"harmtrace/trees/data/air_links.yaml: {l2}: unknown {bad}")
        out[l2] = link
    return out
