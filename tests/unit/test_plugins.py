"""The plugin registry: built-ins load lazily, other packages add backends, extractors and
policies through entry points (a real dist-info on sys.path, as pip would install it),
errors name the key."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel

from harmtrace.graders.features import EXTRACTORS, ExtractorError, embedding_parts, make_extractor
from harmtrace.graders.registry import GRADERS, GraderConfigError, grader_class
from harmtrace.moderate.policies import (
    POLICIES,
    PolicyError,
    get_policy,
    load_registry,
    policy_config_problems,
)
from harmtrace.plugins import PluginError, Registry
from harmtrace.study import backend_rules
from harmtrace.targets.registry import TARGETS, TargetConfigError, make_target_spec
from harmtrace.trees.registry import GENERATORS

TOYPLUG = """
import pathlib

import numpy as np
from pydantic import BaseModel

from harmtrace.graders.base import ExtractorSpec, FeatureExtractor
from harmtrace.moderate.policies import PolicySpec

class ToySpec(BaseModel):
    level: int = 0

class ToyGrader:
    name = "toy-plugin"
    Spec = ToySpec
    trains_in_workflow = True
    workflow_rules = (str(pathlib.Path(__file__).with_name("toy_train.smk")),)

    def __init__(self, spec):
        self.spec = spec

class ToyGenerator(ToyGrader):
    name = "toy-trees"

class ToyBagSpec(ExtractorSpec):
    width: int = 4

class ToyBag(FeatureExtractor):
    name = "toy-bag"
    Spec = ToyBagSpec
    dense = True
    stateless = True

    def __init__(self, width=4):
        self.width = int(width)

    def params(self):
        return {"width": self.width}

    def fit(self, texts):
        return self

    def transform(self, texts):
        return np.array([[len(t) % (i + 2) for i in range(self.width)] for t in texts], float)

STRICT = {
    "name": "toy_strict",
    "version": "1",
    "description": "blocks from medium",
    "actions": {"low": "annotate", "medium": "block", "high": "block"},
}
SPEC = PolicySpec.model_validate({**STRICT, "name": "toy_spec"})
LAX_YAML = pathlib.Path(__file__).with_name("toy_lax.yaml")
BAD = {**STRICT, "name": "toy_bad", "basis": "vibes"}
"""

TOY_LAX = """
name: toy_lax
version: "2"
description: annotates only
basis: probability
thresholds: {default: {low: 0.5, medium: 0.8, high: 0.95}}
actions: {low: pass, medium: annotate, high: annotate}
"""

ENTRY_POINTS = """
[harmtrace.graders]
toy-plugin = toyplug:ToyGrader

[harmtrace.tree_generators]
toy-trees = toyplug:ToyGenerator

[harmtrace.extractors]
toy-bag = toyplug:ToyBag

[harmtrace.policies]
toy_strict = toyplug:STRICT
toy_spec = toyplug:SPEC
toy_lax = toyplug:LAX_YAML
toy_bad = toyplug:BAD
toy_misnamed = toyplug:STRICT
"""


@pytest.fixture
def plugin_package(tmp_path, monkeypatch):
    """An installed third-party package ``toyplug`` that adds a grader, a generator, an
    extractor and policies (one of them invalid, one under the wrong name)."""
    (tmp_path / "toyplug").mkdir()
    (tmp_path / "toyplug" / "__init__.py").write_text(TOYPLUG)
    (tmp_path / "toyplug" / "toy_lax.yaml").write_text(textwrap.dedent(TOY_LAX))
    (tmp_path / "toyplug" / "toy_train.smk").write_text("# the toy grader's training rules\n")
    dist = tmp_path / "toyplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toyplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    registries = (GRADERS, GENERATORS, EXTRACTORS, POLICIES)
    for reg in registries:
        monkeypatch.setattr(reg, "_plugins", None)
    yield
    for reg in registries:
        for name in [n for n in reg.classes if n.startswith("toy")]:
            reg.classes.pop(name)
        reg._plugins = None
    sys.modules.pop("toyplug", None)


def test_another_package_adds_a_grader_through_an_entry_point(plugin_package):
    assert "toy-plugin" in GRADERS.names()
    grader = GRADERS.make("toy-plugin", {"level": 2})
    assert type(grader).__module__ == "toyplug" and grader.spec.level == 2
    assert grader_class("toy-plugin") is type(grader)
    assert "toy-plugin" in GRADERS.having("trains_in_workflow")
    assert GENERATORS.get("toy-trees").name == "toy-trees"
    with pytest.raises(GraderConfigError, match=r"grader\.toy-plugin\.level"):
        GRADERS.make("toy-plugin", {"level": "high"})


def test_a_trained_backend_brings_its_own_rules_file_and_only_when_configured(
    plugin_package, tmp_path
):
    root = Path(__file__).resolve().parents[2]
    shipped = tmp_path / "toyplug" / "toy_train.smk"
    assert backend_rules({"grade": {"graders": ["toy-plugin"]}}, root) == [str(shipped)]
    builtin = backend_rules({"grade": {"graders": ["embedded"]}}, root)
    assert builtin == [
        str(root / "workflow/rules/train.smk"),
        str(root / "workflow/rules/transfer.smk"),
    ]
    assert backend_rules({"grade": {"graders": ["openai"]}}, root) == []
    shipped.unlink()
    with pytest.raises(GraderConfigError, match=r"'toy-plugin' .*toy_train\.smk.*toyplug"):
        backend_rules({"grade": {"graders": ["toy-plugin"]}}, root)


def test_without_the_package_the_name_is_unknown_and_the_message_lists_the_known():
    with pytest.raises(
        GraderConfigError, match=r"unknown grader 'toy-plugin'; registered: .*human"
    ):
        grader_class("toy-plugin")


def test_builtins_resolve_and_carry_their_declarations():
    assert {"embedded", "openai", "human"} <= set(GRADERS.names())
    assert GRADERS.having("reads_record_labels") == ["human"]
    assert {"openai", "transformers"} <= set(TARGETS.names())


def test_a_missing_dependency_is_named_with_the_hint(monkeypatch):
    reg = Registry(
        kind="target backend",
        where="targets.{name}",
        group="harmtrace.none",
        builtin={"ghost": "harmtrace_no_such_module"},
        error=TargetConfigError,
        missing_hint="; install the extra",
    )
    with pytest.raises(
        TargetConfigError, match="not installed .harmtrace_no_such_module.; install"
    ):
        reg.get("ghost")


def test_registering_two_classes_under_one_name_fails():
    class Spec(BaseModel):
        pass

    reg: Registry = Registry(
        kind="thing", where="things.{name}", group="harmtrace.none", builtin={}
    )
    one = type("One", (), {"name": "x", "Spec": Spec})
    two = type("Two", (), {"name": "x", "Spec": Spec})
    reg.register(one)
    reg.register(one)  # the same class again is harmless (a module imported twice)
    with pytest.raises(PluginError, match="thing 'x' is registered twice"):
        reg.register(two)


def test_a_target_block_names_its_condition_in_errors():
    with pytest.raises(TargetConfigError, match=r"targets\.plain: missing `backend`"):
        make_target_spec("plain", {})
    with pytest.raises(TargetConfigError, match=r"targets\.plain\.max_new_tokens"):
        make_target_spec("plain", {"backend": "openai", "model": "m", "max_new_tokens": "many"})


def test_another_package_adds_an_extractor_that_stacks_and_caches(plugin_package):
    assert "toy-bag" in EXTRACTORS.names()
    bag = make_extractor("toy-bag", width=3)
    assert type(bag).__module__ == "toyplug" and bag.width == 3
    assert bag.transform(["abc"]).shape == (1, 3)
    assert make_extractor("toy-bag").width == 4  # the spec's default
    stack = make_extractor("tfidf+toy-bag", weights=[1.0, 0.5])
    assert [p.name for p in stack.parts] == ["tfidf", "toy-bag"] and stack.weights == [1.0, 0.5]
    assert embedding_parts("tfidf+toy-bag") == ["toy-bag"]  # stateless: cached like minilm
    with pytest.raises(ExtractorError, match=r"extractor 'toy-bag': toy-bag\.width: "):
        make_extractor("toy-bag", width="wide")
    with pytest.raises(ExtractorError, match=r"toy-bag\.depth: Extra inputs"):
        make_extractor("toy-bag", depth=2)


def test_an_unknown_extractor_lists_the_registered_and_mentions_stacking():
    with pytest.raises(
        ExtractorError, match=r"unknown extractor 'toy-bag'; registered: .*tfidf.*'\+' to stack"
    ):
        make_extractor("toy-bag")
    with pytest.raises(ValueError, match=r"'bert' in 'tfidf\+bert'; registered: .*wordllama"):
        embedding_parts("tfidf+bert")


@pytest.mark.parametrize("name", ["tfidf", "wordllama", "minilm"])
def test_a_builtin_extractor_spec_keeps_its_constructor_defaults(name):
    cls = EXTRACTORS.get(name)
    own = inspect.signature(cls.__init__).parameters
    assert {k: f.default for k, f in cls.Spec.model_fields.items()} == {
        k: p.default for k, p in own.items() if k != "self"
    }


def test_asking_for_tfidf_never_imports_an_encoder():
    code = (
        "import sys; from harmtrace.graders.features import make_extractor; "
        "make_extractor('tfidf', min_df=1).fit_transform(['hello world', 'world peace']); "
        "print([m for m in ('torch', 'sentence_transformers', 'wordllama') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (out.returncode, out.stdout.strip()) == (0, "[]"), out.stderr


def test_another_package_adds_policies_as_a_mapping_a_spec_or_a_yaml_file(plugin_package):
    assert {"toy_strict", "toy_spec", "toy_lax", "observe"} <= set(POLICIES.names())
    assert get_policy("toy_strict").actions["medium"] == "block"
    assert get_policy("toy_spec").name == "toy_spec"
    lax = get_policy("toy_lax")
    assert lax.policy_version.startswith("toy_lax@2+") and lax.category_thresholds("hate")[1] == 0.8
    assert policy_config_problems(["toy_strict", "toy_lax", "observe"], None) == []
    taken = policy_config_problems([], {"toy_lax": {"version": "1", "description": "x"}})
    assert taken and "may not take a shipped name (nor an installed policy's)" in taken[0]


def test_an_invalid_installed_policy_names_its_key_and_a_misnamed_one_its_name(plugin_package):
    with pytest.raises(PolicyError, match=r"'toy_bad'.*invalid policy: basis: Input should be"):
        get_policy("toy_bad")
    with pytest.raises(PolicyError, match=r"toy_bad.*basis"):
        load_registry()  # listing every policy surfaces the broken one
    with pytest.raises(PolicyError, match="declares name 'toy_strict'; it must be 'toy_misnamed'"):
        get_policy("toy_misnamed")


def test_without_the_package_a_policy_name_is_unknown_and_the_shipped_still_load():
    with pytest.raises(
        PolicyError, match=r"unknown policy 'toy_strict'; known policies: .*observe"
    ):
        get_policy("toy_strict")
    assert set(load_registry()) == {
        "block_high",
        "block_medium",
        "observe",
        "redact_medium_block_high",
    }
