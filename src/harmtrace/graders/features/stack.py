"""Extractors by name, alone or stacked (``"tfidf+minilm"``), and the default choice.

Every name is resolved by the extractor registry (:mod:`.registry`), so an extractor
another package installs stacks, caches and validates like a built-in one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, ClassVar

import scipy.sparse as sp

from harmtrace.graders.base import FeatureExtractor
from harmtrace.graders.features.cache import CachedExtractor, EmbeddingCache
from harmtrace.graders.features.registry import EXTRACTORS, extractor_parts

DEFAULT_EXTRACTOR = "tfidf+minilm"
"""What :func:`harmtrace.graders.compare.choose_default_extractor` picks (highest
leave-one-source-out AUROC on the prompt sets; see docs/grader.md, section 7)."""

COMPARED_EXTRACTORS: tuple[str, ...] = ("tfidf", "tfidf+minilm")
"""Extractors the comparison runs by default."""


def attach_caches(
    extractor: FeatureExtractor, caches: dict[str, EmbeddingCache]
) -> FeatureExtractor:
    """``extractor`` with each stateless part that has a cache reading from it (a fitted
    model's parts are kept; only where their embeddings come from changes)."""
    if isinstance(extractor, StackExtractor):
        extractor.parts = [attach_caches(p, caches) for p in extractor.parts]
        return extractor
    base = extractor.base if isinstance(extractor, CachedExtractor) else extractor
    if base.stateless and base.name in caches:
        return CachedExtractor(base, caches[base.name])
    return extractor


class StackExtractor(FeatureExtractor):
    """Several extractors side by side (``"tfidf+minilm"``): TF-IDF blocks and unit-length
    embedding rows concatenated into one sparse matrix, each block scaled by its weight,
    fed to one class-balanced logistic regression (liblinear, TF-IDF's ``C`` grid)."""

    version: ClassVar[str] = "1"
    dense: ClassVar[bool] = False
    stateless: ClassVar[bool] = False
    c_grid: ClassVar[tuple[float, ...]] = (1.0, 4.0, 16.0)

    def __init__(self, parts: Sequence[FeatureExtractor], weights: Sequence[float] | None = None):
        self.parts = list(parts)
        self.weights = [float(w) for w in (weights or [1.0] * len(self.parts))]

    @property
    def name(self) -> str:  # type: ignore[override]
        return "+".join(p.name for p in self.parts)

    def params(self) -> dict[str, Any]:
        return {
            "parts": [p.describe() for p in self.parts],
            "weights": self.weights,
        }

    def __getattr__(self, attr: str) -> Any:
        # the first part's word n-grams are the stack's first columns, so a cue reader
        # (word_feature_names, transform_words) of that part reads the stack's too
        if attr in ("word_feature_names", "transform_words") and "parts" in self.__dict__:
            first = self.__dict__["parts"][0]
            if hasattr(first, attr):
                return getattr(first, attr)
        raise AttributeError(attr)

    def fit(self, texts: Sequence[str]) -> StackExtractor:
        for part in self.parts:
            part.fit(texts)
        return self

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        return self._stack([part.transform(texts) for part in self.parts])

    def fit_transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        return self._stack([part.fit_transform(texts) for part in self.parts])

    def _stack(self, blocks: list[Any]) -> sp.csr_matrix:
        scaled = [
            (x if sp.issparse(x) else sp.csr_matrix(x)) * w
            for x, w in zip(blocks, self.weights, strict=True)
        ]
        return sp.hstack(scaled, format="csr")

    def fingerprint(self) -> bytes:
        h = hashlib.sha256(super().fingerprint())
        for part in self.parts:
            h.update(part.fingerprint())
        return h.digest()


def embedding_parts(name: str) -> list[str]:
    """The stateless parts of an extractor name (``tfidf+minilm`` -> ``["minilm"]``): the
    ones whose embeddings can be computed once and cached (``harmtrace embed-texts``)."""
    parts = dict.fromkeys(extractor_parts(name))
    return [p for p in parts if EXTRACTORS.flag(p, "stateless")]


def make_extractor(
    name: str, caches: dict[str, EmbeddingCache] | None = None, **params: Any
) -> FeatureExtractor:
    """A new, unfitted extractor by registry name, ``params`` validated by its spec;
    ``a+b`` stacks extractors (``params`` are then the stack's ``weights``), and
    ``caches`` supplies precomputed embeddings for stateless ones by name."""
    if "+" in name:
        parts = [make_extractor(part, caches=caches) for part in extractor_parts(name)]
        return StackExtractor(parts, **params)
    extractor = EXTRACTORS.make(name, params)
    if caches and name in caches:
        return CachedExtractor(extractor, caches[name])
    return extractor
