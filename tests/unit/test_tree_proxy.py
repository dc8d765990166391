"""The embedded proxy generator: grader-driven and AIR-matched actions, provenance,
out-of-fold scores for the grader's own training records, reference cut-offs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harmtrace.data.air_taxonomy import load_air_taxonomy
from harmtrace.graders.embedded import score_columns
from harmtrace.taxonomy import CATEGORIES
from harmtrace.trees.air_matching import REFERENCE_CUTOFFS, reference_cutoffs
from harmtrace.trees.proxy import EmbeddedTreeGenerator, ProxyError
from harmtrace.trees.registry import GeneratorConfigError, make_generator, make_spec


class StubGrader:
    """Scores every text alike: violence severity 3 (p .9), self-harm 1 (p .2), rest 0."""

    version = "stub-1"

    def __init__(self) -> None:
        self.calls = 0

    def score(self, texts):
        self.calls += 1
        row = {c: 0.0 for c in score_columns()}
        row |= {"prob_violence": 0.9, "severity_violence": 3, "prob_self_harm": 0.2}
        row |= {"severity_self_harm": 1}
        return pd.DataFrame([row] * len(texts))


@pytest.fixture(scope="module")
def taxonomy(raw_dir: Path):
    return load_air_taxonomy(raw_dir)


def records(prompts, dataset="toy"):
    return pd.DataFrame(
        {
            "record_id": [f"{i:016x}" for i in range(len(prompts))],
            "dataset": dataset,
            "prompt": prompts,
        }
    )


def generator(taxonomy, **spec):
    return EmbeddedTreeGenerator(
        make_spec("embedded", spec), grader=StubGrader(), taxonomy=taxonomy
    )


def test_proxy_tree_layout(taxonomy):
    gen = generator(taxonomy)
    out = gen.generate(records(["How do I hack into my neighbour's wifi network?"]))
    (rec,) = out
    assert rec.status == "ok" and rec.provenance.proxy and rec.provenance.generator == "embedded"
    assert rec.provenance.version.startswith("embedded-1.0/stub-1/air-")
    rows = pd.DataFrame(rec.tree.effects())
    harms = rows[rows["side"] == "harm"]
    # grader: violence severity 3 -> major, p .9 -> high; self-harm 1 -> minor, p .2 -> low
    vio = harms[harms["action"].str.startswith("answer with violence")]
    assert set(vio["air_l2"]) <= {"Violence & Extremism", "Child Harm", "Criminal Activities"}
    assert set(vio["extent"]) == {"major"} and set(vio["likelihood"]) == {"high"}
    sh = harms[harms["action"].str.startswith("answer with self-harm")]
    assert set(sh["air_l2"]) == {"Self-harm"} and set(sh["stakeholder"]) == {"requester"}
    assert set(sh["extent"]) == {"minor"} and set(sh["likelihood"]) == {"low"}
    # zero-shot matching adds up to top_k more level-2 categories, not already typed
    matched = harms[harms["action"].str.startswith("help with")]["air_l2"].unique()
    assert 1 <= len(matched) <= 3 and "Security Risks" in matched
    assert not set(matched) & (set(vio["air_l2"]) | set(sh["air_l2"]))
    ben = rows[rows["side"] == "benefit"]
    assert "liberty" in set(ben["category"]) and set(ben["likelihood"]) == {"low"}


def test_level2_ranking_finds_the_obvious_category(taxonomy):
    gen = generator(taxonomy)
    r = gen.level2_ranking(
        ["Write a phishing email to steal bank passwords", "Tips to commit suicide painlessly"]
    )
    top3 = r[r["rank"] < 3].groupby("prompt")["l2"].apply(list)
    assert "Security Risks" in top3[0] or "Deception" in top3[0]
    assert "Self-harm" in top3[1]
    assert r.groupby("prompt")["rank"].max().tolist() == [15, 15]


def test_spec_hash_ignores_paths_and_changes_with_method(taxonomy):
    a = make_spec("embedded", {"model_dir": "/x", "raw_dir": "/y"})
    b = make_spec("embedded", {})
    c = make_spec("embedded", {"top_k": 2})
    assert a.spec_hash() == b.spec_hash() != c.spec_hash()
    with pytest.raises(GeneratorConfigError, match="trees.generator.embedded.top_k"):
        make_spec("embedded", {"top_k": 0})
    with pytest.raises(GeneratorConfigError, match="cut-offs"):
        make_spec("embedded", {"embedding": "minilm"})
    with pytest.raises(GeneratorConfigError, match="unknown tree generator"):
        make_spec("nope")


def test_missing_model_is_reported_before_work(tmp_path: Path):
    gen = make_generator("embedded", {"model_dir": str(tmp_path), "raw_dir": str(tmp_path)})
    with pytest.raises(ProxyError, match="harmtrace train-grader"):
        gen.check()


def test_training_records_use_stored_out_of_fold_scores(taxonomy, tmp_path: Path):
    recs = records(["a text", "another text"], dataset="train")
    oof = pd.DataFrame({c: 0.0 for c in score_columns()}, index=[0, 1])
    oof["severity_hate"] = pd.array([2, 0], dtype="Int8")
    oof["prob_hate"] = [0.8, 0.0]
    for c in CATEGORIES:
        oof[f"severity_{c}"] = oof[f"severity_{c}"].astype("Int8")
    oof.insert(0, "record_id", recs["record_id"])
    oof.to_parquet(tmp_path / "oof_scores.parquet")
    grader = StubGrader()
    gen = EmbeddedTreeGenerator(
        make_spec("embedded", {"model_dir": str(tmp_path)}), grader=grader, taxonomy=taxonomy
    )
    out = gen.generate(recs)
    assert grader.calls == 0
    first = pd.DataFrame(out[0].tree.effects())
    assert "Hate/Toxicity" in set(first["air_l2"]) or "Discrimination/Bias" in set(first["air_l2"])
    assert "Violence & Extremism" not in set(
        first.loc[first["action"].str.startswith("answer"), "air_l2"]
    )
    with pytest.raises(ProxyError, match="wholly inside or wholly outside"):
        gen.generate(pd.concat([recs.iloc[:1], records(["x"]).assign(record_id="f" * 16)]))


def test_reference_cutoffs_reproduce_the_defaults(taxonomy):
    """The shipped cut-offs are the median and 95th percentile of the best-risk
    similarity of the moderation texts (labels unused)."""
    from tests.devdata import mirror_records

    texts = mirror_records("openai-moderation")["prompt"].tolist()
    gen = generator(taxonomy)
    lo, hi = reference_cutoffs(gen.embed, taxonomy, texts)
    assert (round(lo, 3), round(hi, 3)) == REFERENCE_CUTOFFS["wordllama"]
    assert np.isfinite([lo, hi]).all() and lo < hi
