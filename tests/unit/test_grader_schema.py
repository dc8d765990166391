"""The config schema's backend blocks (graders, tree generators) name exactly the fields of
the backends' pydantic specs, at every depth, with the same defaults, so the two
declarations of a backend's config cannot drift apart."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from harmtrace.graders.registry import grader_class
from harmtrace.trees.registry import generator_class
from tests.schemacheck import SCHEMA

BLOCKS = SCHEMA["properties"]["grader"]["properties"]
GENERATOR_BLOCKS = SCHEMA["properties"]["trees"]["properties"]["generator"]["properties"]


def _resolve(prop: dict) -> dict:
    ref = prop.get("$ref")
    if ref:
        node = SCHEMA
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return node
    return prop


def field_mismatches(model: type[BaseModel], prop: dict, where: str) -> list[str]:
    """Keys in one declaration and not the other, for the model and each nested model."""
    prop = _resolve(prop)
    schema_keys = set(prop.get("properties", {}))
    model_keys = {  # a field the workflow fills from another block has no key of its own
        name
        for name, field in model.model_fields.items()
        if not (field.json_schema_extra or {}).get("set_by_workflow")  # type: ignore[union-attr]
    }
    out = [f"{where}: only in the schema: {k}" for k in sorted(schema_keys - model_keys)]
    out += [f"{where}: only in the spec: {k}" for k in sorted(model_keys - schema_keys)]
    if prop.get("additionalProperties", True) is not False:
        out.append(f"{where}: the schema does not refuse unknown keys")
    for name in sorted(schema_keys & model_keys):
        annotation = model.model_fields[name].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out += field_mismatches(annotation, prop["properties"][name], f"{where}.{name}")
        if (
            not prop["properties"][name].get("description")
            and "$ref" not in prop["properties"][name]
        ):
            out.append(f"{where}.{name}: no description")
    return out


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_a_grader_block_and_its_spec_name_the_same_keys(name):
    assert field_mismatches(grader_class(name).Spec, BLOCKS[name], f"grader.{name}") == []


def test_the_check_sees_a_key_missing_from_the_schema():
    block = {**BLOCKS["embedded"], "properties": dict(BLOCKS["embedded"]["properties"])}
    del block["properties"]["folds"]
    assert field_mismatches(grader_class("embedded").Spec, block, "grader.embedded") == [
        "grader.embedded: only in the spec: folds"
    ]


def default_mismatches(model: type[BaseModel], prop: dict, where: str) -> list[str]:
    """Keys whose schema default differs from the spec's (at every depth): defaults are
    stated once in substance, whichever declaration a reader opens."""
    prop = _resolve(prop)
    out: list[str] = []
    for name, field in model.model_fields.items():
        if name not in prop.get("properties", {}):
            continue
        sub = _resolve(prop["properties"][name])
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            out += default_mismatches(field.annotation, sub, f"{where}.{name}")
            continue
        if "default" not in sub:
            continue
        default = field.get_default(call_default_factory=True)
        if default is PydanticUndefined:
            out.append(f"{where}.{name}: the schema has a default, the spec requires a value")
            continue
        value = list(default) if isinstance(default, tuple) else default
        if value != sub["default"]:
            out.append(f"{where}.{name}: schema default {sub['default']!r}, spec {value!r}")
    return out


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_a_grader_block_and_its_spec_share_their_defaults(name):
    assert default_mismatches(grader_class(name).Spec, BLOCKS[name], f"grader.{name}") == []


@pytest.mark.parametrize("name", sorted(GENERATOR_BLOCKS))
def test_a_tree_generator_block_and_its_spec_agree(name):
    spec, block = generator_class(name).Spec, GENERATOR_BLOCKS[name]
    where = f"trees.generator.{name}"
    assert field_mismatches(spec, block, where) + default_mismatches(spec, block, where) == []


def test_the_default_check_sees_a_changed_default():
    block = {**BLOCKS["embedded"], "properties": dict(BLOCKS["embedded"]["properties"])}
    block["properties"]["folds"] = {**_resolve(block["properties"]["folds"]), "default": 99}
    found = default_mismatches(grader_class("embedded").Spec, block, "grader.embedded")
    assert len(found) == 1 and found[0].startswith("grader.embedded.folds: schema default 99")
