"""TF-IDF features: the one extractor fitted on a corpus.

Word 1-2-grams and within-word character 3-5-grams, sublinear term frequency, explicit
vocabularies (no hashing, so a model's columns can be read back as words). The two blocks
are L2-normalised separately and placed side by side.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from harmtrace.graders.base import ExtractorSpec, FeatureExtractor, as_texts
from harmtrace.graders.features.registry import register_extractor

_VECTORIZERS = ("word_vectorizer_", "char_vectorizer_")
"""Fitted attributes, in the order of :meth:`TfidfExtractor.transform`'s column blocks."""


class TfidfSpec(ExtractorSpec):
    """TF-IDF settings (the constructor's defaults)."""

    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (3, 5)
    min_df: int = 2
    max_features: int | None = None


@register_extractor
class TfidfExtractor(FeatureExtractor):
    """Concatenated word and character TF-IDF features (L2-normalised blocks)."""

    Spec = TfidfSpec
    name: ClassVar[str] = "tfidf"
    version: ClassVar[str] = "1"
    dense: ClassVar[bool] = False
    stateless: ClassVar[bool] = False
    c_grid: ClassVar[tuple[float, ...]] = (1.0, 4.0, 16.0)

    def __init__(
        self,
        word_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] = (3, 5),
        min_df: int = 2,
        max_features: int | None = None,
    ) -> None:
        self.word_ngrams = tuple(word_ngrams)
        self.char_ngrams = tuple(char_ngrams)
        self.min_df = int(min_df)
        self.max_features = max_features

    def params(self) -> dict[str, Any]:
        return {
            "word_ngrams": list(self.word_ngrams),
            "char_ngrams": list(self.char_ngrams),
            "min_df": self.min_df,
            "max_features": self.max_features,
        }

    def _make(self, analyzer: str, ngrams: tuple[int, int]) -> TfidfVectorizer:
        return TfidfVectorizer(
            analyzer=analyzer,
            ngram_range=ngrams,
            sublinear_tf=True,
            lowercase=True,
            min_df=self.min_df,
            max_features=self.max_features,
            dtype=np.float64,
        )

    def _vectorizers(self) -> tuple[TfidfVectorizer, TfidfVectorizer]:
        if not hasattr(self, "char_vectorizer_"):
            raise RuntimeError("TfidfExtractor is not fitted")
        return self.word_vectorizer_, self.char_vectorizer_

    def fit(self, texts: Sequence[str]) -> TfidfExtractor:
        texts = as_texts(texts)
        self.word_vectorizer_ = self._make("word", self.word_ngrams).fit(texts)
        self.char_vectorizer_ = self._make("char_wb", self.char_ngrams).fit(texts)
        return self

    def word_feature_names(self) -> list[str]:
        """Names of the word n-gram columns, which come first in :meth:`transform`'s output
        (used to explain a linear model's score in words)."""
        word, _ = self._vectorizers()
        return [str(n) for n in word.get_feature_names_out()]

    def transform_words(self, texts: Sequence[str]) -> sp.csr_matrix:
        """The word n-gram block of :meth:`transform` alone (its first columns)."""
        word, _ = self._vectorizers()
        return word.transform(as_texts(texts)).tocsr()

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        word, char = self._vectorizers()
        texts = as_texts(texts)
        return sp.hstack([word.transform(texts), char.transform(texts)], format="csr")

    def fit_transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Fit and transform in one tokenisation pass (the same matrix as ``fit`` then
        ``transform``, at about half the cost on long texts)."""
        texts = as_texts(texts)
        word = self._make("word", self.word_ngrams)
        char = self._make("char_wb", self.char_ngrams)
        blocks = [word.fit_transform(texts), char.fit_transform(texts)]
        self.word_vectorizer_, self.char_vectorizer_ = word, char
        return sp.hstack(blocks, format="csr")

    @property
    def n_features(self) -> int:
        if not hasattr(self, "char_vectorizer_"):
            return 0
        return len(self.word_vectorizer_.vocabulary_) + len(self.char_vectorizer_.vocabulary_)

    def __getstate__(self) -> dict[str, Any]:
        # scikit-learn caches id(stop_words), a memory address, on the vectorizer; dropping
        # it (it is only a cache) makes the pickle byte-identical from one process to the next
        state = self.__dict__.copy()
        for key in _VECTORIZERS:
            vec = state.get(key)
            if vec is not None and "_stop_words_id" in vec.__dict__:
                vec = copy.copy(vec)
                del vec.__dict__["_stop_words_id"]
                state[key] = vec
        return state

    def fingerprint(self) -> bytes:
        h = hashlib.sha256(super().fingerprint())
        for key in _VECTORIZERS:
            vec = getattr(self, key, None)
            if vec is None:
                h.update(b"unfitted")
                continue
            vocab = sorted(vec.vocabulary_.items(), key=lambda kv: kv[1])
            h.update("\x1f".join(term for term, _ in vocab).encode("utf-8"))
            h.update(np.ascontiguousarray(vec.idf_, dtype=np.float64).tobytes())
        return h.digest()
