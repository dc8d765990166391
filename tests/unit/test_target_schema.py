"""The config schema's target blocks follow the targets' pydantic specs: a field added to
a spec without its schema entry (or the reverse) fails here."""

from __future__ import annotations

import jsonschema
import pytest

from harmtrace.llm.settings import EndpointSettings, GenerationSettings
from harmtrace.targets.registry import BUILTIN, target_class
from tests.schemacheck import SCHEMA, expected_property, squashed

NESTED = {GenerationSettings: "#/$defs/generation", EndpointSettings: "#/$defs/endpoint"}


def variants() -> dict[str, dict]:
    return {v["properties"]["backend"]["const"]: v for v in SCHEMA["$defs"]["target"]["oneOf"]}


def test_generation_defs_follow_the_settings_model():
    props = SCHEMA["$defs"]["generation"]["properties"]
    assert list(props) == list(GenerationSettings.model_fields)
    for name, field in GenerationSettings.model_fields.items():
        assert squashed(props[name]) == squashed(expected_property(field, NESTED)), name


@pytest.mark.parametrize("backend", sorted(BUILTIN))
def test_each_backend_has_a_schema_variant_with_its_spec_fields(backend):
    variant = variants()[backend]
    assert variant["additionalProperties"] is False
    props = dict(variant["properties"])
    props.pop("backend")
    spec = target_class(backend).Spec
    assert list(props) == list(spec.model_fields)
    for name, field in spec.model_fields.items():
        assert squashed(props[name]) == squashed(expected_property(field, NESTED)), (
            f"{backend}.{name}"
        )
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
