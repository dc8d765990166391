"""Feature extractors: determinism, content, offline loading, optional MiniLM."""

from __future__ import annotations

import importlib.util
import pickle

import numpy as np
import pytest

from harmtrace.graders.base import FeatureExtractor, as_texts
from harmtrace.graders.features import (
    MINILM_HINT,
    MiniLMExtractor,
    TfidfExtractor,
    WordLlamaExtractor,
    make_extractor,
)

TEXTS = [
    "I will hurt you badly tomorrow",
    "what a lovely sunny day in the park",
    "you people are disgusting and should leave",
    "the recipe needs two eggs and some flour",
    "I want to hurt myself tonight",
    "a lovely recipe for a sunny day",
]


def test_as_texts_maps_missing_to_empty():
    assert as_texts(["a", None, float("nan"), 3]) == ["a", "", "", "3"]


def test_tfidf_is_deterministic_and_fingerprinted():
    a = TfidfExtractor(min_df=1).fit(TEXTS)
    b = TfidfExtractor(min_df=1).fit(TEXTS)
    xa, xb = a.transform(TEXTS), b.transform(TEXTS)
    assert (xa != xb).nnz == 0
    assert a.fingerprint() == b.fingerprint()
    c = TfidfExtractor(min_df=1).fit([*TEXTS, "an extra sentence changes the vocabulary"])
    assert c.fingerprint() != a.fingerprint()


def test_tfidf_pickle_is_byte_identical_across_fits():
    # scikit-learn stores a memory address on fitted vectorizers; it must not reach the pickle
    a = pickle.dumps(TfidfExtractor(min_df=1).fit(TEXTS), protocol=5)
    b = pickle.dumps(TfidfExtractor(min_df=1).fit(TEXTS), protocol=5)
    assert a == b
    assert b"_stop_words_id" not in a  # id(None) differs between processes
    again = pickle.loads(a)
    assert (again.transform(TEXTS) != TfidfExtractor(min_df=1).fit(TEXTS).transform(TEXTS)).nnz == 0


def test_tfidf_fit_transform_equals_fit_then_transform():
    """One tokenisation pass gives the same matrix and the same fitted state (min_df=2
    prunes, so the pruned vocabulary is exercised)."""
    texts = [*TEXTS, *TEXTS[:3], "lovely lovely day"]
    one = TfidfExtractor(min_df=2)
    x1 = one.fit_transform(texts)
    two = TfidfExtractor(min_df=2).fit(texts)
    x2 = two.transform(texts)
    assert x1.shape == x2.shape and abs(x1 - x2).max() < 1e-12  # equal up to rounding
    assert one.fingerprint() == two.fingerprint()
    assert pickle.dumps(one, protocol=5) == pickle.dumps(two, protocol=5)


def test_tfidf_has_word_bigrams_and_char_ngrams():
    ex = TfidfExtractor(min_df=1).fit(TEXTS)
    words = ex.word_vectorizer_.vocabulary_
    chars = ex.char_vectorizer_.vocabulary_
    assert "hurt you" in words and "lovely" in words
    assert " hu" in chars and "lovel" in chars  # char_wb pads words with spaces
    assert all(3 <= len(g) <= 5 for g in chars)
    x = ex.transform(["hurt you", ""])
    assert x.shape == (2, ex.n_features)
    assert x[1].nnz == 0
    # each of the two blocks is L2-normalised, so a non-empty row has squared norm 2
    assert np.isclose(x[0].multiply(x[0]).sum(), 2.0)


def test_tfidf_requires_fit():
    with pytest.raises(RuntimeError):
        TfidfExtractor().transform(["x"])


def test_wordllama_offline_deterministic_and_batch_invariant():
    ex = WordLlamaExtractor()
    x = ex.fit(TEXTS).transform(TEXTS)
    assert x.shape == (len(TEXTS), 256)
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0)
    # the same text embeds identically whatever else is in the call (length-sorted batches)
    alone = np.vstack([ex.transform([t]) for t in TEXTS])
    assert np.array_equal(alone, x)
    assert np.array_equal(WordLlamaExtractor().transform(TEXTS), x)
    # empty texts give a zero row, not NaN
    empty = ex.transform(["", "hello"])
    assert np.all(empty[0] == 0) and np.isfinite(empty).all()


def test_wordllama_pickles_without_weights():
    ex = WordLlamaExtractor()
    ex.transform(["warm up the model"])
    blob = pickle.dumps(ex)
    assert len(blob) < 10_000  # the ~90 MB weights come from the wheel, not the pickle
    again = pickle.loads(blob)
    assert np.array_equal(again.transform(TEXTS[:2]), ex.transform(TEXTS[:2]))


def test_registry():
    assert isinstance(make_extractor("tfidf"), FeatureExtractor)
    assert make_extractor("tfidf", min_df=3).params()["min_df"] == 3
    with pytest.raises(ValueError, match="unknown extractor"):
        make_extractor("bag-of-magic")


def test_minilm_without_torch_explains_itself(monkeypatch):
    # runs everywhere (no skip where torch is installed): torch is hidden from the lookup
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    with pytest.raises(ImportError) as info:
        MiniLMExtractor()
    assert MINILM_HINT in str(info.value)
    assert "torch" in str(info.value)


def test_embedding_parts_are_the_stateless_ones():
    from harmtrace.graders.features import embedding_parts

    assert embedding_parts("tfidf") == []
    assert embedding_parts("tfidf+minilm") == ["minilm"]
    assert embedding_parts("wordllama+tfidf+minilm+wordllama") == ["wordllama", "minilm"]
    with pytest.raises(ValueError, match="unknown extractor"):
        embedding_parts("tfidf+bert")
