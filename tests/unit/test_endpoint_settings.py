"""EndpointSettings is the one definition of an endpoint: the config schema's
``$defs/endpoint``, the ``--endpoint KEY=VALUE`` option of the CLI, the spec hashes and
the nested spec blocks must all follow its fields, and these tests fail when one drifts."""

from __future__ import annotations

import re

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from harmtrace.cli import app
from harmtrace.errors import HarmtraceError
from harmtrace.llm.settings import (
    EndpointSettings,
    answer_fields,
    answer_values,
    apply_endpoint_overrides,
    endpoint_keys,
    endpoint_overrides,
)
from tests.schemacheck import ROOT, SCHEMA, expected_property, squashed

FIELDS = EndpointSettings.model_fields
runner = CliRunner()


def test_schema_defs_endpoint_has_exactly_the_settings_fields():
    defs = SCHEMA["$defs"]["endpoint"]
    assert defs["type"] == "object" and defs["additionalProperties"] is False
    props = defs["properties"]
    assert list(props) == list(FIELDS)  # same names, same order
    for name, prop in props.items():
        assert prop.get("description"), f"$defs/endpoint/{name} has no description"
        # type, enum and bounds; no default (a block's own defaults come from its spec)
        assert squashed(prop) == squashed(expected_property(FIELDS[name])), name


def test_every_openai_block_refers_to_the_one_definition():
    props = SCHEMA["properties"]
    grader = props["grader"]["properties"]["openai"]
    trees = props["trees"]["properties"]["generator"]["properties"]["openai"]
    for block in (grader, trees):
        assert block["properties"]["endpoint"]["$ref"] == "#/$defs/endpoint"
        # nothing of the endpoint is restated beside it
        assert not set(block["properties"]) & (set(FIELDS) - {"model"})
    assert grader["properties"]["endpoint"]["required"] == ["model"]


def test_the_schema_accepts_what_the_specs_accept_and_rejects_unknown_keys():
    from harmtrace.graders.registry import make_spec as grader_spec
    from harmtrace.trees.registry import make_spec as tree_spec

    validator = jsonschema.Draft202012Validator(SCHEMA)
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    block = {"endpoint": sample_block(), "prompt_style": "rubric"}
    config["grader"]["openai"] = block
    trees = {k: v for k, v in sample_block().items() if k != "max_reasks"}  # max_attempts
    config["trees"]["generator"]["openai"] = {"endpoint": trees, "max_attempts": 2}
    assert [e.message for e in validator.iter_errors(config)] == []
    grader_spec("openai", block)
    tree_spec("openai", config["trees"]["generator"]["openai"])
    config["grader"]["openai"]["endpoint"]["base_url_typo"] = "x"
    assert any("base_url_typo" in e.message for e in validator.iter_errors(config))


def sample_raw() -> dict[str, str]:
    """A valid command-line value for every field (its default, or a stand-in)."""
    out = {}
    for name, field in FIELDS.items():
        default = None if field.is_required() else field.default
        out[name] = "null" if default is None else str(default)
    return out | {"model": "some-model", "api_key_env": "null", "progress": "off"}


def sample_block() -> dict:
    return endpoint_overrides([f"{k}={v}" for k, v in sample_raw().items()])


def test_the_cli_parser_accepts_exactly_the_settings_fields():
    assert endpoint_keys() == list(FIELDS)
    parsed = sample_block()
    assert list(parsed) == list(FIELDS)
    assert EndpointSettings(**parsed).model_dump() == parsed
    with pytest.raises(HarmtraceError) as err:
        endpoint_overrides(["no_such_key=1"])
    allowed = re.search(r"allowed keys: (.*)$", str(err.value)).group(1).split(", ")
    assert allowed == list(FIELDS)


@pytest.mark.parametrize(
    "item, words",
    [
        ("concurrency=0", ["concurrency", "greater than or equal to 1", "requests in flight"]),
        ("response_format=xml", ["response_format", "'auto'", "'none'"]),
        ("temperature=hot", ["temperature", "valid number"]),
        ("model", ["KEY=VALUE"]),
    ],
)
def test_bad_values_name_their_key(item, words):
    with pytest.raises(HarmtraceError) as err:
        endpoint_overrides([item])
    for w in words:
        assert w.lower() in str(err.value).lower(), (w, str(err.value))


def test_values_are_read_as_their_field_reads_them():
    got = endpoint_overrides(["seed=3", "rps=null", "response_format=none", "top_p=0.5"])
    assert got == {"seed": 3, "rps": None, "response_format": "none", "top_p": 0.5}
    assert endpoint_overrides(["model=123"]) == {"model": "123"}
    assert endpoint_overrides(["base_url=http://h:1/v1?a=b"])["base_url"] == "http://h:1/v1?a=b"


def test_overrides_merge_into_the_block_and_need_an_endpoint():
    from harmtrace.graders.embedded import EmbeddedSpec
    from harmtrace.graders.openai import OpenAISpec

    block = {"endpoint": {"model": "a", "timeout": 9}, "prompt_style": "rubric"}
    out = apply_endpoint_overrides(block, ["model=b"], OpenAISpec, "grader 'openai'")
    assert out == {"endpoint": {"model": "b", "timeout": 9}, "prompt_style": "rubric"}
    assert block["endpoint"]["model"] == "a"  # the caller's block is not changed
    with pytest.raises(HarmtraceError, match="grader 'embedded' has none"):
        apply_endpoint_overrides({}, ["model=b"], EmbeddedSpec, "grader 'embedded'")


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize(
    "verb", [["grade", "toy", "--grader", "openai"], ["trees", "toy", "--generator", "openai"]]
)
def test_the_verbs_take_every_field_and_name_the_allowed_keys(verb, tmp_path):
    res = invoke(*verb, "--endpoint", "no_such_key=1")
    assert res.exit_code == 2
    allowed = re.search(r"allowed keys: ([\w, ]+)", res.output).group(1).split(", ")
    assert allowed == list(FIELDS)
    # every key at once is accepted: the run gets past the spec to the missing input
    raw = sample_raw()
    if verb[0] == "trees":  # re-asks are max_attempts there, and saying so is the test
        res = invoke(*verb, "--endpoint", "max_reasks=1")
        assert res.exit_code == 2 and "endpoint: Value error, max_reasks is not used" in res.output
        del raw["max_reasks"]
    items = [a for k, v in raw.items() for a in ("--endpoint", f"{k}={v}")]
    where = ["--records", tmp_path / "nope.parquet"] if verb[0] == "grade" else [
        "--records-dir", tmp_path, "--raw-dir", tmp_path]  # fmt: skip
    res = invoke(*verb, *items, *where)
    assert res.exit_code == 2
    assert "--endpoint" not in res.output and "invalid config" not in res.output, res.output


@pytest.mark.parametrize("flag", ["--base-url", "--model", "--max-tokens", "--cache"])
def test_the_old_per_field_flags_are_gone(flag):
    res = invoke("grade", "toy", "--grader", "openai", flag, "x")
    assert res.exit_code == 2 and "No such option" in res.output


def test_endpoint_on_a_backend_without_one_is_an_error():
    res = invoke("grade", "toy", "--endpoint", "model=m")
    assert res.exit_code == 2 and "grader 'embedded' has none" in res.output
    res = invoke("trees", "toy", "--endpoint", "model=m")
    assert res.exit_code == 2 and "tree generator 'embedded' has none" in res.output


ANOTHER = {
    "temperature": "0.5", "max_tokens": "64", "top_p": "0.9", "seed": "1",
    "base_url": "http://other/v1", "model": "other", "api_key_env": "OTHER_KEY",
    "response_format": "json_object", "concurrency": "3", "rps": "2", "timeout": "5",
    "max_retries": "1", "max_reasks": "0", "backoff_initial": "0.5", "backoff_max": "2",
    "cache": "c.sqlite", "progress": "log", "progress_interval": "5",
}  # fmt: skip
"""A second value per field: a new field must be added here, deciding whether it changes
answers (and so the grader's version and the trees' spec hash)."""


def test_spec_hashes_skip_exactly_the_run_only_fields():
    from harmtrace.graders.registry import make_grader
    from harmtrace.trees.registry import make_spec as tree_spec

    assert set(ANOTHER) == set(FIELDS)
    run_only = set(FIELDS) - set(answer_fields(EndpointSettings))
    assert {"base_url", "api_key_env", "concurrency", "timeout", "cache"} <= run_only
    assert set(answer_values(EndpointSettings(model="m"))) == set(FIELDS) - run_only
    grader = make_grader("openai", {"endpoint": {"model": "m"}})
    tree = tree_spec("openai", {"endpoint": {"model": "m"}})
    for name, raw in ANOTHER.items():
        value = endpoint_overrides([f"{name}={raw}"])
        assert value[name] != getattr(grader.spec.endpoint, name), name
        other = make_grader("openai", {"endpoint": {"model": "m", **value}})
        assert (other.version == grader.version) == (name in run_only), name
        if name == "max_reasks":
            continue  # the tree generator uses max_attempts instead (an error if set)
        other_tree = tree_spec("openai", {"endpoint": {"model": "m", **value}})
        assert (other_tree.spec_hash() == tree.spec_hash()) == (name in run_only), name
