"""Extractor comparison table and the default-extractor rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harmtrace.graders.compare import (
    choose_default_extractor,
    compare_extractors,
    summarize_comparison,
)
from harmtrace.graders.labels import category_targets
from harmtrace.taxonomy import CATEGORIES
from tests.devdata import mirror_records, mirror_root, prompt_frame


@pytest.mark.skipif(
    not (mirror_root() / "openai-moderation").is_dir(), reason="dataset mirror not available"
)
def test_compare_on_a_small_subset():
    frame = mirror_records("openai-moderation")
    t = category_targets(frame)
    rare = (t["self_harm"].fillna(False) | t["violence"].fillna(False)).to_numpy(dtype=bool)
    keep = np.sort(np.concatenate([np.flatnonzero(rare), np.flatnonzero(~rare)[::6]]))
    small = frame.iloc[keep].reset_index(drop=True)
    per_seed = compare_extractors(
        small, extractors=("tfidf",), n_splits=3, seeds=(0, 1), inner_splits=3, per_seed=True
    )
    assert len(per_seed) == 2 * len(CATEGORIES)
    for metric in ("auroc", "auprc", "f1"):
        assert per_seed[metric].between(0, 1).all()
    assert (per_seed["texts_per_s"] > 0).all()
    # seeds change the folds, so results differ somewhere
    a, b = (per_seed[per_seed.seed == s].set_index("category")["auprc"] for s in (0, 1))
    assert not np.allclose(a, b)
    summary = summarize_comparison(per_seed)
    assert list(summary["category"]) == list(CATEGORIES)
    assert {"auroc_mean", "auroc_sd", "auprc_mean", "auprc_sd", "f1_mean", "f1_sd"} <= set(
        summary.columns
    )
    assert (summary["n_seeds"] == 2).all()


@pytest.mark.skipif(
    not (mirror_root() / "openai-moderation").is_dir(), reason="dataset mirror not available"
)
def test_compare_with_an_embedding_cache_gives_the_same_metrics_and_no_speed():
    from harmtrace.graders.features import EmbeddingCache, make_extractor

    frame = mirror_records("openai-moderation")
    t = category_targets(frame)
    rare = (t["self_harm"].fillna(False) | t["violence"].fillna(False)).to_numpy(dtype=bool)
    keep = np.sort(np.concatenate([np.flatnonzero(rare)[::2], np.flatnonzero(~rare)[::12]]))
    small = frame.iloc[keep].reset_index(drop=True)
    cache = EmbeddingCache("wordllama")
    cache.lookup(small["prompt"].tolist(), make_extractor("wordllama").transform)
    kw = {"extractors": ("tfidf+wordllama",), "n_splits": 2, "seeds": (0,), "inner_splits": 2}
    live = compare_extractors(small, per_seed=True, **kw)
    cached = compare_extractors(small, per_seed=True, embedding_caches={"wordllama": cache}, **kw)
    np.testing.assert_allclose(cached["auprc"], live["auprc"], rtol=1e-6)
    assert (live["texts_per_s"] > 0).all() and cached["texts_per_s"].isna().all()


def _summary(rows):
    return pd.DataFrame(
        [{"extractor": e, "category": c, "auprc_mean": a} for e, a in rows for c in CATEGORIES]
    )


def _loso(rows):
    return pd.DataFrame(
        [
            {"extractor": e, "dataset": f"s{i}", "auroc": v}
            for e, vs in rows
            for i, v in enumerate(vs)
        ]
    )


def test_default_rule_ranks_by_out_of_source_auroc_then_auprc():
    summary = _summary([("a", 0.9), ("b", 0.6), ("c", 0.7)])
    # b transfers best although a is the most accurate in source
    assert choose_default_extractor(summary, _loso([("a", [0.7, 0.8]), ("b", [0.9, 0.9]),
                                                    ("c", [0.8, 0.9])])) == "b"  # fmt: skip
    # mean AUROC tied to 2 decimals (NaN sources skipped): the higher AUPRC wins
    tie = _loso([("a", [0.801, float("nan")]), ("b", [0.804, 0.804]), ("c", [0.5, 0.5])])
    assert choose_default_extractor(summary, tie) == "a"
    # tied on both: the one listed first
    same = _summary([("b", 0.6), ("a", 0.6)])
    assert choose_default_extractor(same, _loso([("a", [0.8]), ("b", [0.8])])) == "b"
    # no prompt set to hold out (a user's moderation-only training): AUPRC decides
    empty = pd.DataFrame({"extractor": [], "dataset": [], "auroc": []})
    assert choose_default_extractor(summary, empty) == "a"
    with pytest.raises(ValueError, match="no leave-one-source-out AUROC"):
        choose_default_extractor(summary, _loso([("a", [0.8])]))


@pytest.mark.skipif(
    not (mirror_root() / "openai-moderation").is_dir(), reason="dataset mirror not available"
)
def test_loso_comparison_is_the_transfer_evaluation_per_extractor():
    from harmtrace.graders.compare import loso_comparison
    from harmtrace.graders.transfer import loso_scores, transfer_metrics

    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdefgh"), 6)) for _ in range(160)]

    frame = prompt_frame

    harmful = frame("strongreject", [f"hurt them badly {w}" for w in words[:40]],
                    sr_category="Violence")  # fmt: skip
    benign = frame("rho-overrefusal", [f"bake a cake {w}" for w in words[40:80]],
                   rho_category="medical")  # fmt: skip
    advbench = frame("advbench", [f"attack and hurt {w}" for w in words[80:]],
                     adv_harm_categories="Violence/armed conflict")  # fmt: skip
    # benign prompts that are never held out, so every fit sees both classes
    pairs = frame("rho-refusal-pairs", [f"plant a tree {w}" for w in words[120:]],
                  rho_side="benign", rho_domain="garden")  # fmt: skip
    # moderation texts give every category head positives in every fit
    moderation = mirror_records("openai-moderation").iloc[::4]
    recs = pd.concat([moderation, harmful, benign, advbench, pairs], ignore_index=True)
    sources = ["strongreject", "rho-overrefusal"]
    got = loso_comparison(recs, ["tfidf"], sources, inner_splits=2)
    scores = loso_scores(recs, sources, extractor="tfidf", inner_splits=2)
    want = transfer_metrics(recs, scores, "loso", sources)
    assert got["extractor"].tolist() == ["tfidf", "tfidf"]
    assert got["dataset"].tolist() == want["dataset"].tolist()
    np.testing.assert_allclose(got["auroc"], want["auroc"])
    assert got.set_index("dataset").loc["strongreject", "auroc"] > 0.9  # "hurt" transfers
