"""Tree schema, effect vocabulary, JSON schema export and tree files."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from harmtrace.data.air_taxonomy import load_air_taxonomy
from harmtrace.trees.effects import (
    EXTENTS,
    LIKELIHOODS,
    air_links,
    effect_taxonomy,
    likelihood_of,
)
from harmtrace.trees.schema import (
    HarmBenefitTree,
    Provenance,
    TreeRecord,
    render_tree_schema,
    shipped_tree_schema,
    tree_json_schema,
)
from harmtrace.trees.tree_files import TreeFileError, read_trees, summarise, write_trees

PROV = Provenance(generator="test", version="v", spec_hash="0" * 16, proxy=False)
TREE = {
    "stakeholders": [
        {
            "name": "bystanders",
            "harms": [
                {
                    "action": "instructions for an attack",
                    "air": {"l2": "Violence & Extremism", "l3": "Violent acts"},
                    "effects": [
                        {
                            "category": "physical",
                            "immediacy": True,
                            "extent": "major",
                            "likelihood": "medium",
                        }
                    ],
                }
            ],
        },
        {
            "name": "requester",
            "benefits": [
                {
                    "action": "learning",
                    "effects": [
                        {
                            "category": "liberty",
                            "immediacy": False,
                            "extent": "minor",
                            "likelihood": "high",
                        }
                    ],
                }
            ],
        },
    ]
}


@pytest.fixture(scope="module")
def taxonomy(raw_dir: Path):
    return load_air_taxonomy(raw_dir)


def test_effect_taxonomies_have_seven_categories_and_fifteen_numbered_subcategories():
    for side in ("harm", "benefit"):
        tax = effect_taxonomy(side)
        assert tax.categories == (
            "physical",
            "psychological",
            "social",
            "property",
            "liberty",
            "collective",
            "ecological",
        )
        assert sorted(tax.subcategories) == list(range(1, 16))
    harm = effect_taxonomy("harm")
    assert harm.resolve("7. Financial property loss") == "property"
    assert harm.resolve("#Liberty harm#") == "liberty"
    assert harm.resolve("Physical") == "physical"
    assert harm.resolve("financial loss") == "property"
    assert harm.resolve("something else") is None


def test_likelihood_bands_and_air_links():
    assert [likelihood_of(p) for p in (0.0, 0.29, 0.3, 0.69, 0.7, 1.0)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]
    links = air_links()
    assert len(links) == 16 and links["Self-harm"].stakeholder == "requester"
    assert links["Hate/Toxicity"].grader == ("hate",)


def test_valid_tree_and_flat_effects():
    tree = HarmBenefitTree.model_validate(TREE)
    rows = tree.effects()
    assert [r["side"] for r in rows] == ["harm", "benefit"]
    assert rows[0]["air_l2"] == "Violence & Extremism" and rows[1]["air_l2"] is None


def test_levels_and_categories_are_normalised_and_checked():
    t = json.loads(json.dumps(TREE))
    e = t["stakeholders"][0]["harms"][0]["effects"][0]
    e.update(category=" Physical ", extent="MAJOR", likelihood="High", immediacy="true")
    assert HarmBenefitTree.model_validate(t).stakeholders[0].harms[0].effects[0].extent == "major"
    for key, bad in (("extent", "huge"), ("likelihood", "certain"), ("category", "spiritual")):
        t2 = json.loads(json.dumps(TREE))
        t2["stakeholders"][0]["harms"][0]["effects"][0][key] = bad
        with pytest.raises(ValidationError):
            HarmBenefitTree.model_validate(t2)
    t3 = json.loads(json.dumps(TREE))
    t3["stakeholders"][1]["benefits"][0]["effects"] = []
    with pytest.raises(ValidationError, match="at least 1"):
        HarmBenefitTree.model_validate(t3)
    with pytest.raises(ValidationError):
        HarmBenefitTree.model_validate({"stakeholders": []})


def test_air_names_canonicalised_with_taxonomy(taxonomy):
    t = json.loads(json.dumps(TREE))
    t["stakeholders"][0]["harms"][0]["air"] = {
        "l2": "violence and extremism",
        "l3": "9. Violent Acts",
        "l4": "persons",
    }
    ctx = {"taxonomy": taxonomy}
    air = HarmBenefitTree.model_validate(t, context=ctx).stakeholders[0].harms[0].air
    assert (air.l2, air.l3, air.l4, air.idx) == (
        "Violence & Extremism",
        "Violent acts",
        "Persons (including murder)",
        "3.9.8",
    )
    assert len(ctx["warnings"]) == 3
    t["stakeholders"][0]["harms"][0]["air"] = {"l2": "Privacy", "l3": "No such group"}
    ctx = {"taxonomy": taxonomy}
    air = HarmBenefitTree.model_validate(t, context=ctx).stakeholders[0].harms[0].air
    assert air.l3 is None and "dropped" in ctx["warnings"][0]
    t["stakeholders"][0]["harms"][0]["air"] = {"l2": "Cooking"}
    with pytest.raises(ValidationError, match="unknown AIR level-2 category 'Cooking'"):
        HarmBenefitTree.model_validate(t, context={"taxonomy": taxonomy})


def test_shipped_json_schema_is_current_and_validates_trees():
    assert shipped_tree_schema() == render_tree_schema(), (
        "regenerate with: python -c 'from pathlib import Path; from harmtrace.trees.schema "
        'import write_tree_schema; write_tree_schema(Path("src/harmtrace/schemas/'
        "tree.schema.json\"))'"
    )
    schema = tree_json_schema()
    jsonschema.validate(TREE, schema)
    bad = json.loads(json.dumps(TREE))
    bad["stakeholders"][0]["harms"][0]["effects"][0]["extent"] = "huge"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    enum = schema["$defs"]["HarmEffect"]["properties"]["extent"]["enum"]
    assert tuple(enum) == EXTENTS
    lik = schema["$defs"]["HarmEffect"]["properties"]["likelihood"]["enum"]
    assert tuple(lik) == LIKELIHOODS


def test_tree_record_status_must_match_tree():
    tree = HarmBenefitTree.model_validate(TREE)
    with pytest.raises(ValidationError, match="status 'ok' needs a tree"):
        TreeRecord(record_id="a", dataset="d", status="ok", attempts=1, provenance=PROV)
    with pytest.raises(ValidationError):
        TreeRecord(
            record_id="a", dataset="d", status="failed", attempts=1, tree=tree, provenance=PROV
        )


def test_tree_files_round_trip_and_summary(tmp_path: Path):
    tree = HarmBenefitTree.model_validate(TREE)
    recs = [
        TreeRecord(record_id="a", dataset="d", status="ok", attempts=1, tree=tree, provenance=PROV),
        TreeRecord(
            record_id="b",
            dataset="d",
            status="ok",
            attempts=2,
            repaired=True,
            warnings=["w"],
            tree=tree,
            provenance=PROV,
        ),
        TreeRecord(
            record_id="c",
            dataset="d",
            status="failed",
            attempts=3,
            errors=["attempt 3: invalid tree: x"],
            raw="{",
            provenance=PROV,
        ),
    ]
    path = tmp_path / "t.jsonl"
    assert write_trees(recs, path) == 3
    back = read_trees(path)
    assert back == recs
    first = path.read_text().splitlines()[0]
    assert first == json.dumps(json.loads(first), sort_keys=True, ensure_ascii=False)
    s = summarise(back)
    assert (s.total, s.ok, s.failed, s.repaired, s.with_warnings, s.attempts) == (3, 2, 1, 1, 1, 6)
    assert s.failure_reasons == {"attempt 3": 1}
    assert "1 failed" in s.lines()[0]
    path.write_text(path.read_text() + "{not json}\n")
    with pytest.raises(TreeFileError, match="t.jsonl:4"):
        read_trees(path)
    with pytest.raises(TreeFileError, match="harmtrace trees"):
        read_trees(tmp_path / "missing.jsonl")
