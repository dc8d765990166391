"""Embedded grader: fitting, cross-fitting without leakage, persistence, judgments table."""

from __future__ import annotations

import copy
import hashlib
import io
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from harmtrace.errors import HarmtraceError
from harmtrace.graders import embedded as emb
from harmtrace.graders.base import judgment_columns, judgment_dtypes, validate_judgments
from harmtrace.graders.embedded import (
    EmbeddedGrader,
    cross_fit,
    fold_assignments,
    grade_records,
    grade_texts,
    oof_scores,
    score_columns,
)
from harmtrace.graders.labels import LABEL_KEYS, category_targets, harm_targets
from harmtrace.taxonomy import CATEGORIES
from tests.devdata import mirror_records, mirror_root, toy_refusal_detector

FAST = {"c_grid": (4.0,), "inner_splits": 3}
needs_mirror = pytest.mark.skipif(
    not (mirror_root() / "openai-moderation").is_dir(), reason="dataset mirror not available"
)


def synthetic_records(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """Random labels; each text holds a word unique to it, and a shared cue word that is
    present in 70% of the sexual-positive texts and 20% of the negative ones.

    A flexible model memorises the unique words (perfect in-sample ranking) but, for a
    record it has not seen, can only use the cue, which ranks far from perfectly.
    """
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, 8)) for _ in range(n)]
    sexual = rng.random(n) < 0.3
    cue = np.where(sexual, rng.random(n) < 0.7, rng.random(n) < 0.2)
    frame = pd.DataFrame(
        {
            "record_id": [f"r{i:04d}" for i in range(n)],
            "dataset": "synthetic",
            "item_id": [str(i) for i in range(n)],
            "prompt": [
                f"message {w} {'velvet' if c else 'plain'} ends here"
                for w, c in zip(words, cue, strict=True)
            ],
            "context": "",
            "response": pd.array([None] * n, dtype="string"),
            "response_source": pd.array([None] * n, dtype="string"),
        }
    )
    for key in LABEL_KEYS:
        frame[f"label_{key}"] = pd.array(rng.random(n) < 0.3, dtype="boolean")
    frame["label_S"] = pd.array(sexual, dtype="boolean")
    frame.loc[::7, "label_H"] = pd.NA  # unknown hate label for some records
    frame.loc[::7, "label_H2"] = pd.NA
    return frame


@pytest.fixture(scope="module")
def moderation_subset() -> pd.DataFrame:
    if not (mirror_root() / "openai-moderation").is_dir():
        pytest.skip("dataset mirror not available")
    frame = mirror_records("openai-moderation")
    # keep every self-harm / violence positive plus a sample of the rest (fast, still learnable)
    t = category_targets(frame)
    rare = (t["self_harm"].fillna(False) | t["violence"].fillna(False)).to_numpy(dtype=bool)
    rest = np.flatnonzero(~rare)[::4]
    keep = np.sort(np.concatenate([np.flatnonzero(rare), rest]))
    return frame.iloc[keep].reset_index(drop=True)


@pytest.fixture(scope="module")
def fitted(moderation_subset) -> EmbeddedGrader:
    return EmbeddedGrader(extractor="tfidf", seed=0, **FAST).fit(
        moderation_subset, refusal=toy_refusal_detector()
    )


def _parquet_sha(frame: pd.DataFrame) -> str:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return hashlib.sha256(buf.getvalue()).hexdigest()


def test_oof_does_not_see_its_own_label():
    records = synthetic_records()
    params = {"extractor_params": {"min_df": 1}, "c_grid": (100.0,), "inner_splits": 3}
    y = category_targets(records)["sexual"].to_numpy(dtype=bool)
    model = EmbeddedGrader(extractor="tfidf", relevance=False, **params).fit(records)
    in_sample = roc_auc_score(y, model.predict(records["prompt"])["prob_sexual"])
    oof = oof_scores(records, extractor="tfidf", n_splits=4, seed=0, **params)
    out_of_fold = roc_auc_score(y, oof["prob_sexual"])
    assert in_sample > 0.98  # the unique words are memorised
    # unseen records can only be ranked by the cue word: useful, but far from perfect
    assert 0.5 < out_of_fold < 0.85


def test_oof_fold_bookkeeping(monkeypatch):
    records = synthetic_records(120, seed=1)
    trained_on: list[set[str]] = []
    original = EmbeddedGrader.fit

    def spy(self, recs, *args, **kwargs):
        trained_on.append(set(recs["record_id"]))
        return original(self, recs, *args, **kwargs)

    monkeypatch.setattr(EmbeddedGrader, "fit", spy)
    oof = oof_scores(records, n_splits=3, seed=5, **FAST)
    assert len(trained_on) == 3
    assert oof["record_id"].tolist() == records["record_id"].tolist()
    assert sorted(oof["fold"].unique()) == [0, 1, 2]
    for k, train_ids in enumerate(trained_on):
        scored = set(oof.loc[oof["fold"] == k, "record_id"])
        assert scored and not scored & train_ids
        assert scored | train_ids == set(records["record_id"])
    # records with an unknown hate label still get a hate score
    unknown = category_targets(records)["hate"].isna().to_numpy()
    assert unknown.any() and oof.loc[unknown, "prob_hate"].notna().all()


def test_fold_assignments_spread_rare_positives():
    records = synthetic_records(200, seed=2)
    folds = fold_assignments(records, n_splits=5, seed=0)
    assert set(folds) == set(range(5))
    strata = emb.fold_strata(records)
    for stratum in set(strata):
        counts = np.bincount(folds[strata == stratum], minlength=5)
        assert counts.max() - counts.min() <= 1
    assert np.array_equal(folds, fold_assignments(records, n_splits=5, seed=0))
    assert not np.array_equal(folds, fold_assignments(records, n_splits=5, seed=1))


def test_predict_learns_real_labels(fitted, moderation_subset):
    probs = fitted.predict(moderation_subset["prompt"])
    assert list(probs.columns) == [
        *(f"prob_{c}" for c in CATEGORIES),
        "severe_prob_hate",
        "severe_prob_sexual",
        "severe_prob_violence",
        "prob_harmful",
    ]
    assert ((probs >= 0) & (probs <= 1)).all().all()
    y = category_targets(moderation_subset)["self_harm"]
    known = y.notna().to_numpy()
    auc = roc_auc_score(y[known].astype(bool), probs["prob_self_harm"][known])
    assert auc > 0.9  # in-sample, a sanity check that labels were wired to the right column
    # the harm head is trained on "harm of any kind" (harassment included), not on a category
    harm = harm_targets(moderation_subset)
    known = harm.notna().to_numpy()
    assert roc_auc_score(harm[known].astype(bool), probs["prob_harmful"][known]) > 0.9
    assert fitted.manifest()["classifier"]["harmful"]["n_train"] == int(known.sum())


def test_model_without_harm_head_scores_nan(fitted, moderation_subset):
    """A model without a harm head (too few harm labels) still grades; its harm score is null."""
    old = copy.copy(fitted)
    old.harm_model_ = None
    probs = old.predict(moderation_subset["prompt"].iloc[:5])
    assert probs["prob_harmful"].isna().all() and probs["prob_hate"].notna().all()


def test_init_only_stores_parameters():
    """Nothing is built before fit: the fitted attributes appear there, not in __init__."""
    model = EmbeddedGrader(extractor="nonesuch", c_grid=(4.0,))
    assert model.extractor_choice == "nonesuch" and model.c_grid == (4.0,)
    assert not model.fitted and not hasattr(model, "extractor_")
    with pytest.raises(ValueError, match="unknown extractor"):
        model.fit(synthetic_records(40))


def test_manifest_records_thresholds_and_training(fitted, moderation_subset):
    man = fitted.manifest()
    assert man["grader_version"] == fitted.version
    assert fitted.version.startswith("embedded-") and "/tfidf-" in fitted.version
    assert man["training"]["n_records"] == len(moderation_subset)
    assert len(man["training"]["sha256"]) == 64
    assert man["versions"]["scikit-learn"]
    th = man["severity"]["thresholds"]
    assert set(th) == set(CATEGORIES)
    assert th["self_harm"]["t_severe"] is None
    for cat in ("hate", "sexual", "violence"):
        assert 0 <= th[cat]["t_low"] <= th[cat]["t_mid"] <= 1
        assert th[cat]["t_severe"] is not None
    json.dumps(man)  # serialisable


def test_save_load_round_trip(fitted, moderation_subset, tmp_path):
    texts = moderation_subset["prompt"].iloc[:50].tolist()
    fitted.save(tmp_path / "model")
    loaded = EmbeddedGrader.load(tmp_path / "model")
    assert loaded.version == fitted.version
    pd.testing.assert_frame_equal(loaded.score(texts), fitted.score(texts), check_exact=True)
    # a tampered pickle is refused
    blob = (tmp_path / "model" / emb.MODEL_FILE).read_bytes()
    (tmp_path / "model" / emb.MODEL_FILE).write_bytes(blob + b"\x00")
    with pytest.raises(ValueError, match="sha256"):
        EmbeddedGrader.load(tmp_path / "model")


def test_refit_is_byte_identical(moderation_subset):
    part = moderation_subset.iloc[::2].reset_index(drop=True)
    a = EmbeddedGrader(seed=3, **FAST).fit(part, refusal=toy_refusal_detector())
    b = EmbeddedGrader(seed=3, **FAST).fit(part, refusal=toy_refusal_detector())
    assert a.version == b.version
    records = part.iloc[:40].copy()
    records["response"] = pd.array(["I cannot help with that."] * 20 + [None] * 20, dtype="string")
    assert _parquet_sha(grade_records(a, records)) == _parquet_sha(grade_records(b, records))


def test_judgments_columns_dtypes_and_nulls(fitted, moderation_subset):
    records = moderation_subset.iloc[:12].copy()
    responses = [
        "I'm sorry, but I can't help with that. Is there anything else I can help you with?",
        "",
        None,
        *records["prompt"].iloc[3:12].tolist(),
    ]
    records["response"] = pd.array(responses, dtype="string")
    out = grade_records(fitted, records)
    validate_judgments(out)
    assert list(out.columns) == judgment_columns()
    assert {c: str(t) for c, t in out.dtypes.items()} == judgment_dtypes()
    assert out["record_id"].tolist() == records["record_id"].tolist()
    null_row = out.iloc[2]
    assert pd.isna(null_row["relevance"]) and pd.isna(null_row["refusal"])
    assert all(pd.isna(null_row[f"response_prob_{c}"]) for c in CATEGORIES)
    assert out["refusal"].iloc[0] and out["relevance"].iloc[0] == 1
    assert out["relevance"].iloc[1] == 1  # an empty response answers nothing
    assert out["prompt_severity_hate"].notna().all()
    assert (out["grader"] == "embedded").all()
    assert (out["grader_version"] == fitted.version).all()


def test_a_refusal_that_names_the_harm_is_not_graded_as_that_harm(fitted, moderation_subset):
    """Response severity reads what the response conveys: the refusal below names sexual
    content word for word, and conveys none; the compliant answer keeps its score."""
    explicit = moderation_subset.loc[
        category_targets(moderation_subset)["sexual"].fillna(False).to_numpy(dtype=bool),
        "prompt",
    ].iloc[0]
    records = moderation_subset.iloc[:3].copy()
    refusal = (
        "I'm sorry, but I can't assist with writing explicit sexual content or graphic sex scenes. "
        "Is there anything else I can help you with?"
    )
    records["response"] = pd.array([refusal, explicit, f"{refusal} {explicit}"], dtype="string")
    whole = grade_records(fitted, records, response_text="whole")
    conveyed = grade_records(fitted, records)
    assert whole["response_prob_sexual"].iloc[0] > 0.05  # the words alone do score
    assert conveyed["refusal"].iloc[0]
    for c in CATEGORIES:
        assert conveyed[f"response_prob_{c}"].iloc[0] == 0
        assert conveyed[f"response_severity_{c}"].iloc[0] == 0
    assert conveyed["response_prob_harmful"].iloc[0] == 0
    # compliance is scored as before; harm after a refusal is still harm
    assert conveyed["response_prob_sexual"].iloc[1] == pytest.approx(
        whole["response_prob_sexual"].iloc[1]
    )
    assert conveyed["response_severity_sexual"].iloc[2] >= 1
    # the prompt side does not move
    assert conveyed["prompt_prob_sexual"].equals(whole["prompt_prob_sexual"])


def test_the_prompt_side_reads_the_whole_dialogue(fitted, moderation_subset):
    """Harm said in an earlier turn is on the prompt side: the dialogue reading takes each
    head's highest probability over the turns; the last turn's own severity is kept."""
    explicit = moderation_subset.loc[
        category_targets(moderation_subset)["sexual"].fillna(False).to_numpy(dtype=bool),
        "prompt",
    ].iloc[0]
    records = moderation_subset.iloc[:3].copy()
    records["prompt"] = ["Go on, tell me more.", "Go on, tell me more.", explicit]
    records["context"] = [f"\n\nHuman: {explicit}\n\nAssistant: I see.", "", ""]
    dialogue = grade_records(fitted, records)
    last = grade_records(fitted, records, prompt_text="last_turn")
    assert dialogue["prompt_scope"].tolist() == ["dialogue", "last_turn", "last_turn"]
    assert (last["prompt_scope"] == "last_turn").all()
    # the earlier turn scores as the same text does as a last turn
    assert dialogue["prompt_prob_sexual"].iloc[0] == pytest.approx(
        dialogue["prompt_prob_sexual"].iloc[2]
    )
    assert dialogue["prompt_severity_sexual"].iloc[0] >= 2
    assert last["prompt_severity_sexual"].iloc[0] < dialogue["prompt_severity_sexual"].iloc[0]
    # rows without earlier turns and the last turn's own severity do not move
    assert (
        dialogue.iloc[1:]
        .drop(columns=["prompt_scope"])
        .equals(last.iloc[1:].drop(columns=["prompt_scope"]))
    )
    sev = [f"prompt_severity_{c}" for c in CATEGORIES]
    assert dialogue["prompt_last_turn_severity"].tolist() == (
        last[sev].astype(int).max(axis=1).tolist()
    )
    validate_judgments(dialogue)


def test_grading_responses_needs_a_refusal_detector(moderation_subset):
    model = EmbeddedGrader(seed=0, **FAST).fit(moderation_subset.iloc[::3])
    records = moderation_subset.iloc[:4].copy()
    assert grade_records(model, records)["relevance"].isna().all()  # no responses: fine
    records["response"] = pd.array(["Sure, here it is."] * 4, dtype="string")
    with pytest.raises(HarmtraceError, match="refusal detector"):
        grade_records(model, records)
    with pytest.raises(HarmtraceError, match="refusal detector"):
        grade_records(model, records, response_text="whole")  # relevance needs it too
    assert model.manifest()["relevance"]["refusal"] is None


def test_prompt_scores_replace_model_scores(fitted, moderation_subset):
    records = moderation_subset.iloc[:10]
    fake = fitted.score(records["prompt"])
    fake["prob_hate"] = 0.123
    fake.insert(0, "record_id", records["record_id"].to_numpy())
    out = grade_records(fitted, records, prompt_scores=fake.iloc[::-1])  # order-independent
    assert np.allclose(out["prompt_prob_hate"].to_numpy(dtype=float), 0.123)
    with pytest.raises(ValueError, match="lacks"):
        grade_records(fitted, records, prompt_scores=fake.iloc[:3])


def test_grade_texts(fitted):
    out = grade_texts(fitted, ["hello there", None], ids=["a", "b"])
    assert out["id"].tolist() == ["a", "b"]
    assert set(score_columns()) <= set(out.columns)


@needs_mirror
def test_wordllama_grader_fits(moderation_subset):
    model = EmbeddedGrader(extractor="wordllama", relevance=False, **FAST).fit(moderation_subset)
    assert "/wordllama-" in model.version
    assert model.score(["a short text"]).shape == (1, len(score_columns()))


def test_fold_models_in_worker_processes_give_the_same_bytes(tmp_path):
    """train-grader --jobs 2 (the DAG's setting) against one process: same model file,
    same out-of-fold scores, and every fold really ran in another process."""
    records = synthetic_records(120, seed=6)
    emb.train_grader(records, tmp_path / "one", n_splits=3, **FAST)
    emb.train_grader(records, tmp_path / "two", n_splits=3, n_jobs=2, **FAST)
    for name in (emb.OOF_FILE, emb.MANIFEST_FILE, "model.pkl"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    tasks = cross_fit._submit_folds(records, 3, 0, 2, ("tfidf", 0, "prompt", None, FAST))
    assert all(hasattr(t, "result") for t in tasks)  # futures of the process pool
    assert cross_fit._gather_folds(records, "prompt", tasks).equals(
        oof_scores(records, extractor="tfidf", n_splits=3, seed=0, **FAST)
    )


def test_train_grader_saves_oof_and_uses_it_for_training_records(tmp_path):
    records = synthetic_records(120, seed=4)
    model = emb.train_grader(records, tmp_path / "g", n_splits=3, **FAST)
    manifest = json.loads((tmp_path / "g" / emb.MANIFEST_FILE).read_text())
    assert manifest["files"][emb.OOF_FILE]["rows"] == len(records)
    oof = emb.stored_oof_scores(tmp_path / "g", records)
    assert oof is not None and oof["record_id"].tolist() == records["record_id"].tolist()
    judged = grade_records(model, records, prompt_scores=oof)
    in_sample = grade_records(model, records)
    assert np.allclose(judged["prompt_prob_sexual"].to_numpy(float), oof["prob_sexual"])
    assert not np.allclose(
        judged["prompt_prob_sexual"].to_numpy(float),
        in_sample["prompt_prob_sexual"].to_numpy(float),
    )
    other = records.assign(record_id=[f"x{i}" for i in range(len(records))])
    assert emb.stored_oof_scores(tmp_path / "g", other) is None
    mixed = pd.concat([records.iloc[:5], other.iloc[:5]])
    with pytest.raises(ValueError, match="wholly"):
        emb.stored_oof_scores(tmp_path / "g", mixed)


def test_class_balanced_weights_give_each_class_half():
    y = np.array([True, True, True, False])
    w = emb.class_balanced(y, np.array([1.0, 1.0, 2.0, 1.0]))
    assert w[y].sum() == pytest.approx(w[~y].sum()) == pytest.approx(2.5)
    assert w[0] == pytest.approx(w[1]) == pytest.approx(w[2] / 2)  # source weights kept
    one_class = np.array([1.0, 2.0])
    assert emb.class_balanced(np.array([True, True]), one_class) is one_class


def test_harm_threshold_does_not_follow_the_training_share_of_harm():
    """Adding copies of harmful rows changes the share of harm, not the harm head's
    prevalence-free threshold (within the resolution of the scores)."""
    rng = np.random.default_rng(0)
    y = rng.random(400) < 0.5
    p = np.clip(np.where(y, rng.normal(0.7, 0.15, 400), rng.normal(0.3, 0.15, 400)), 0, 1)
    from harmtrace.graders.severity import best_fbeta_threshold

    base = best_fbeta_threshold(y, p, 1.0, emb.class_balanced(y, np.ones(400)))
    heavy = np.where(y, 5.0, 1.0)  # harmful rows counted five times
    shifted = best_fbeta_threshold(y, p, 1.0, emb.class_balanced(y, heavy))
    plain = best_fbeta_threshold(y, p, 1.0, heavy)
    assert shifted == pytest.approx(base)
    assert plain < base  # without balancing, more harm in training lowers the threshold
