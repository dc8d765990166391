"""What a JSON-schema property must say about a pydantic field, so a test can hold the
config schema to the models it is written for (one helper for every such test)."""

from __future__ import annotations

import typing
from pathlib import Path

import yaml
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}
BOUNDS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}


def expected_property(field, refs: dict[type, str] | None = None) -> dict:
    """Type(s), enum, bounds and description; a nested model is a ``$ref`` from ``refs``."""
    annotation = field.annotation
    args = typing.get_args(annotation)
    nullable = type(None) in args
    core = next((a for a in args if a is not type(None)), annotation) if nullable else annotation
    if isinstance(core, type) and issubclass(core, BaseModel):
        if not refs or core not in refs:
            raise AssertionError(f"no $ref known for nested model {core.__name__}")
        return {"description": field.description, "$ref": refs[core]}
    out: dict = {"description": field.description}
    if typing.get_origin(core) is typing.Literal:
        out["type"], out["enum"] = "string", list(typing.get_args(core))
    else:
        out["type"] = JSON_TYPES[core]
    if nullable:
        out["type"] = [out["type"], "null"]
    for meta in field.metadata:
        for attr, key in BOUNDS.items():
            if getattr(meta, attr, None) is not None:
                out[key] = getattr(meta, attr)
        if getattr(meta, "min_length", None) is not None:
            out["minLength"] = meta.min_length
    return out


def squashed(prop: dict) -> dict:
    """The property with its description's whitespace folded (YAML wraps long lines)."""
    return {k: " ".join(v.split()) if k == "description" else v for k, v in prop.items()}
