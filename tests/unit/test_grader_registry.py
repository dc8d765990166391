from __future__ import annotations

import pandas as pd
import pytest
import yaml
from pydantic import Field

from harmtrace.graders import (
    Grader,
    GraderSpec,
    empty_judgments,
    grader_names,
    judgment_columns,
    make_grader,
    mark_failed,
    register_grader,
    validate_judgments,
)
from harmtrace.graders.registry import GRADERS, GraderConfigError, make_spec
from harmtrace.io import SchemaError, column_specs
from harmtrace.taxonomy import CATEGORIES, SIDES


class ToySpec(GraderSpec):
    level: int = Field(0, ge=0, le=3, description="severity given to every text")
    timeout: float = Field(1.0, json_schema_extra={"affects_judgments": False})


class ToyGrader(Grader):
    name = "toy"
    Spec = ToySpec
    backend_version = "7"

    def grade(self, records: pd.DataFrame) -> pd.DataFrame:
        out = empty_judgments(records["record_id"], self.name, self.version)
        for cat in CATEGORIES:
            out[f"prompt_severity_{cat}"] = pd.array([self.spec.level] * len(out), dtype="Int8")
        return out


@pytest.fixture
def toy():
    register_grader(ToyGrader)
    yield ToyGrader
    GRADERS.classes.pop("toy", None)


def test_builtin_names_resolve_lazily():
    assert {"embedded", "openai", "human"} <= set(grader_names())
    g = make_grader("embedded", {"extractor": "tfidf"})
    assert g.version.startswith("embedded-") and "/spec-" in g.version


def test_spec_hash_ignores_settings_that_cannot_change_judgments(toy):
    a = make_grader("toy", {"level": 1, "timeout": 1.0})
    b = make_grader("toy", {"level": 1, "timeout": 99.0})
    c = make_grader("toy", {"level": 2})
    assert a.version == b.version != c.version
    assert a.version.startswith("toy-7/spec-")


def test_overrides_win_and_none_keeps_the_config(toy):
    assert make_spec("toy", {"level": 1}, level=3).level == 3
    assert make_spec("toy", {"level": 1}, level=None).level == 1


def test_bad_config_names_the_key(toy):
    with pytest.raises(GraderConfigError, match=r"grader\.toy\.level"):
        make_grader("toy", {"level": 9})
    with pytest.raises(GraderConfigError, match=r"grader\.toy\.levle"):
        make_grader("toy", {"levle": 1})
    with pytest.raises(GraderConfigError, match="unknown grader 'nope'; registered: "):
        make_grader("nope")


def test_registering_another_class_under_a_taken_name_fails(toy):
    class Other(ToyGrader):
        pass

    with pytest.raises(GraderConfigError, match="registered twice"):
        register_grader(Other)


def test_judgment_columns_come_from_the_schema_file():
    from importlib import resources

    raw = yaml.safe_load(
        resources.files("harmtrace.schemas").joinpath("judgments.yaml").read_text()
    )
    cols = judgment_columns()
    assert cols[: len(raw["columns"])] == list(raw["columns"])
    per_template = [
        len(SIDES if "{side}" in t else [""]) * len(CATEGORIES if "{category}" in t else [""])
        for t in raw["templated_columns"]
    ]
    assert per_template == [8, 8, 8, 2, 2]
    assert len(cols) == len(raw["columns"]) + sum(per_template)
    assert cols == list(column_specs("judgments"))
    assert {f"{s}_severity_{c}" for s in SIDES for c in CATEGORIES} <= set(cols)


def test_failed_rows_keep_their_place_and_reason(toy):
    recs = pd.DataFrame({"record_id": pd.array(["a" * 16, "b" * 16], dtype="string")})
    out = make_grader("toy", {"level": 2}).grade(recs)
    validate_judgments(out)
    mark_failed(out, [1], "timeout after 3 retries")
    validate_judgments(out)
    assert out["status"].tolist() == ["ok", "failed"]
    assert out.loc[1, "error"] == "timeout after 3 retries"
    assert out[[f"prompt_severity_{c}" for c in CATEGORIES]].iloc[1].isna().all()


def test_ok_rows_need_prompt_severities(toy):
    recs = pd.DataFrame({"record_id": pd.array(["a" * 16], dtype="string")})
    out = make_grader("toy").grade(recs)
    out["prompt_severity_hate"] = pd.array([pd.NA], dtype="Int8")
    with pytest.raises(SchemaError, match="prompt_severity_hate.*null where status == 'ok'"):
        validate_judgments(out)
