"""Refusal detector: lexicon, sentence features, windows, threshold, in-source figures."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from statsmodels.stats.inter_rater import cohens_kappa

from harmtrace.graders.refusal import (
    FEATURES,
    RefusalDetector,
    RefusalDetectorError,
    agreement,
    choose_threshold,
    fold_text,
)
from tests.devdata import toy_refusal_detector, toy_refusal_records


def test_lexicon_is_folded_and_split_by_match_kind():
    d = toy_refusal_detector()
    assert "i can't help" in d.substrings_ and "i'm sorry" in d.prefixes_
    assert "i'm sorry" not in d.substrings_  # a prefix is not a substring
    # exemplars: lexicon strings of at least three words, as written
    assert "against my guidelines" in d.exemplars_ and "sorry" not in d.exemplars_
    assert fold_text("I\u2019M Sorry") == "i'm sorry"


def test_sentence_features():
    d = toy_refusal_detector()
    f = d.sentence_features(
        [
            "I\u2019m sorry, I can\u2019t help with that.",  # curly apostrophes
            "Well, I'm sorry to hear it.",  # the prefix is not at the start
            "That is against my guidelines and I must decline.",
            "The bread needs an hour in the oven.",
        ]
    )
    assert f.shape == (4, len(FEATURES))
    assert f[:, 0].tolist() == [1.0, 0.0, 0.0, 0.0]  # prefix
    assert f[:, 1].tolist() == [1.0, 0.0, 1.0, 0.0]  # any substring
    assert f[2, 2] == pytest.approx(np.log1p(2))  # two distinct substrings
    assert f[0, 3] > f[3, 3]  # a refusal's opening words are closer to the exemplars


def test_windows_take_the_featurewise_maximum():
    d = toy_refusal_detector()
    text = "Sure, happy to. I cannot help with the rest. Bake it for an hour. Then cool it."
    opening = ["Sure, happy to.", "I cannot help with the rest.", "Bake it for an hour."]
    window = d.opening_features([text])[0]
    np.testing.assert_allclose(window, d.sentence_features(opening).max(axis=0))
    tags = d.analyse([text])[0]
    assert tags.sentences[:2] == ("Sure, happy to.", "I cannot help with the rest.")
    assert tags.probability == pytest.approx(d.probability(window[None, :])[0])
    assert tags.refusal == (tags.probability >= d.threshold_)


def test_threshold_maximises_kappa_against_a_brute_force_search():
    rng = np.random.default_rng(3)
    y = rng.random(60) < 0.4
    prob = np.clip(0.35 * y + rng.random(60) * 0.7, 0, 1)
    t = choose_threshold(y, prob)
    # a second library's kappa (statsmodels), over every observed cut-off

    def kappa(cut: float) -> float:
        table = pd.crosstab(y, prob >= cut).reindex(
            index=[False, True], columns=[False, True], fill_value=0
        )
        return cohens_kappa(table.to_numpy())["kappa"]

    best = max(kappa(c) for c in np.unique(prob))
    assert kappa(t) == pytest.approx(best)
    assert t in prob  # an observed probability


def test_agreement_matches_statsmodels_and_hand_counts():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    f = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0], dtype=bool)
    s = np.array([0.9, 0.8, 0.7, 0.2, 0.6, 0.1, 0.3, 0.2, 0.1, 0.05])
    out = agreement(y, f, s)
    assert (out["n"], out["n_refused"], out["n_flagged"]) == (10, 4, 4)
    assert out["precision"] == pytest.approx(3 / 4) and out["recall"] == pytest.approx(3 / 4)
    assert out["false_positive_rate"] == pytest.approx(1 / 6)
    table = pd.crosstab(y, f)
    assert out["kappa"] == pytest.approx(cohens_kappa(table.to_numpy())["kappa"])
    assert out["auroc"] == pytest.approx(roc_auc_score(y, s))
    empty = agreement(np.zeros(3, bool), np.zeros(3, bool), np.zeros(3))
    assert np.isnan(empty["precision"]) and np.isnan(empty["auroc"])


def test_in_source_figures_are_out_of_fold_and_consistent():
    d = toy_refusal_detector()
    ins = d.in_source_
    assert len(ins) == 24 and ins["record_id"].is_unique
    assert (ins["flag"] == (ins["oof_probability"] >= d.threshold_)).all()
    stats = d.training_["in_source"]
    assert stats == agreement(ins["label"], ins["flag"], ins["oof_probability"])
    assert d.training_["labelled"] == ["toy-refusals"] and d.training_["lexicon"] == ["toy-lexicon"]
    assert all(c > 0 for c in d.params()["coef"])  # every feature points towards refusal


def test_fit_is_deterministic_and_pickles_without_the_embedding_model():
    lexicon, labelled = toy_refusal_records()
    a = RefusalDetector(n_splits=3).fit(lexicon, labelled)
    b = pickle.loads(pickle.dumps(a))
    assert "_model" not in vars(b)
    assert a.params() == toy_refusal_detector().params()
    texts = ["Sorry, I cannot help with that.", "Here is the recipe.", "", None]
    assert a.detect(texts).tolist() == b.detect(texts).tolist() == [True, False, False, False]


def test_bad_inputs_are_clear_errors():
    lexicon, labelled = toy_refusal_records()
    with pytest.raises(RefusalDetectorError, match="gk_match"):
        RefusalDetector().fit(lexicon.drop(columns="gk_match"), labelled)
    odd = lexicon.assign(gk_match="regex")
    with pytest.raises(RefusalDetectorError, match="'substring' or 'prefix'"):
        RefusalDetector().fit(odd, labelled)
    with pytest.raises(RefusalDetectorError, match="pyr_refusal"):
        RefusalDetector().fit(lexicon, labelled.drop(columns="pyr_refusal"))
    few = labelled.iloc[[0, 1, 12, 13]]
    with pytest.raises(RefusalDetectorError, match="at least 5 refusals"):
        RefusalDetector().fit(lexicon, few)
    with pytest.raises(RuntimeError):
        RefusalDetector().detect(["text"])


def test_training_responses_are_read_out_of_fold():
    """Grading the labelled set itself reproduces the out-of-fold decisions; a new text is
    read by the final model."""
    d = toy_refusal_detector()
    _, labelled = toy_refusal_records()
    flags = d.detect(labelled["response"].tolist())
    assert flags.tolist() == d.in_source_["flag"].tolist()
    probs = [tags.probability for tags in d.analyse(labelled["response"].tolist())]
    np.testing.assert_allclose(probs, d.in_source_["oof_probability"])
    new = "I cannot help with that request, sorry!"
    assert new not in labelled["response"].tolist()
    window = d.opening_features([new])
    assert d.analyse([new])[0].probability == pytest.approx(d.probability(window)[0])
