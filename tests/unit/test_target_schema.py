"""The config schema's target blocks follow the targets' pydantic specs: a field added to
a spec without its schema entry (or the reverse) fails here."""

from __future__ import annotations

import typing
from pathlib import Path

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from harmtrace.llm.settings import GenerationSettings
from harmtrace.targets.registry import BUILTIN, target_class

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}
BOUNDS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}
NESTED = {GenerationSettings: "#/$defs/generation"}


def expected(field) -> dict:
    """Type(s), enum, bounds and description a schema property must carry for a field."""
    annotation = field.annotation
    args = typing.get_args(annotation)
    nullable = type(None) in args
    core = next((a for a in args if a is not type(None)), annotation) if nullable else annotation
    if isinstance(core, type) and issubclass(core, BaseModel):
        ref = NESTED.get(core) or "#/$defs/endpoint"
        return {"description": field.description, "$ref": ref}
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


def squash(prop: dict) -> dict:
    return {k: " ".join(v.split()) if k == "description" else v for k, v in prop.items()}


def variants() -> dict[str, dict]:
    return {v["properties"]["backend"]["const"]: v for v in SCHEMA["$defs"]["target"]["oneOf"]}


def test_generation_defs_follow_the_settings_model():
    props = SCHEMA["$defs"]["generation"]["properties"]
    assert list(props) == list(GenerationSettings.model_fields)
    for name, field in GenerationSettings.model_fields.items():
        assert squash(props[name]) == squash(expected(field)), name


@pytest.mark.parametrize("backend", sorted(BUILTIN))
def test_each_backend_has_a_schema_variant_with_its_spec_fields(backend):
    variant = variants()[backend]
    assert variant["additionalProperties"] is False
    props = dict(variant["properties"])
    props.pop("backend")
    spec = target_class(backend).Spec
    assert list(props) == list(spec.model_fields)
    for name, field in spec.model_fields.items():
        assert squash(props[name]) == squash(expected(field)), f"{backend}.{name}"
    required = {n for n, f in spec.model_fields.items() if f.is_required()} | {"backend"}
    assert set(variant["required"]) == required


def test_the_schema_refuses_a_key_of_the_other_backend():
    schema = {"$defs": SCHEMA["$defs"], "$ref": "#/$defs/target"}
    good = {"backend": "transformers", "model": "smollm2-135m-instruct"}
    jsonschema.validate(good, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "endpoint": {"model": "m"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {"backend": "openai", "endpoint": {"model": "m"}, "batch_size": 2}, schema
        )
