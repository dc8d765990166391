"""The plugin registry: built-ins load lazily, other packages add backends through entry
points (a real dist-info on sys.path, as pip would install it), errors name the key."""

from __future__ import annotations

import sys
import textwrap

import pytest
from pydantic import BaseModel

from harmtrace.graders.registry import GRADERS, GraderConfigError, grader_class
from harmtrace.plugins import PluginError, Registry
from harmtrace.targets.registry import TARGETS, TargetConfigError, make_target_spec
from harmtrace.trees.registry import GENERATORS


@pytest.fixture
def plugin_package(tmp_path, monkeypatch):
    """An installed third-party package ``toyplug`` that adds a grader and a generator."""
    (tmp_path / "toyplug").mkdir()
    (tmp_path / "toyplug" / "__init__.py").write_text(
        textwrap.dedent(
            """
            from pydantic import BaseModel

            class ToySpec(BaseModel):
                level: int = 0

            class ToyGrader:
                name = "toy-plugin"
                Spec = ToySpec
                trains_in_workflow = True

                def __init__(self, spec):
                    self.spec = spec

            class ToyGenerator(ToyGrader):
                name = "toy-trees"
            """
        )
    )
    dist = tmp_path / "toyplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toyplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[harmtrace.graders]\ntoy-plugin = toyplug:ToyGrader\n\n"
        "[harmtrace.tree_generators]\ntoy-trees = toyplug:ToyGenerator\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for reg in (GRADERS, GENERATORS):
        monkeypatch.setattr(reg, "_plugins", None)
    yield
    for reg, name in ((GRADERS, "toy-plugin"), (GENERATORS, "toy-trees")):
        reg.classes.pop(name, None)
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
