"""The config schema's grader blocks name exactly the fields of the backends' pydantic specs,
at every depth, so the two declarations of a grader's config cannot drift apart."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from harmtrace.graders.registry import grader_class
from tests.schemacheck import SCHEMA

BLOCKS = SCHEMA["properties"]["grader"]["properties"]


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
    model_keys = set(model.model_fields)
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
