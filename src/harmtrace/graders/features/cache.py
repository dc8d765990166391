"""Embeddings computed once per text and kept as a DAG artifact per dataset.

Stateless extractors (the embeddings) do not depend on a corpus, so a text's vector can be
computed once, saved, and read by every model and fold that needs it; a model loaded for
grading reads them through :class:`CachedExtractor` and computes only what is missing.
"""

from __future__ import annotations

import hashlib
import pathlib
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from harmtrace.graders.base import FeatureExtractor, as_texts


def text_key(text: str) -> str:
    """sha256 of a text: the key of an embedding cache."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def encoder_id(extractor: FeatureExtractor) -> str:
    """What an embedding depends on: name and version, and the weights' sha256 where the
    extractor knows it."""
    own = getattr(extractor, "encoder_id", None)
    return own() if callable(own) else f"{extractor.name}-{extractor.version}"


class EmbeddingCache:
    """Embeddings of one encoder keyed by text sha256, so each text is embedded once per
    run (and, saved as parquet, once per DAG). Rows are unit-length float32; ``encoder``
    (:func:`encoder_id`) is saved with them and checked when they are used."""

    def __init__(
        self,
        extractor: str,
        vectors: dict[str, np.ndarray] | None = None,
        encoder: str | None = None,
    ) -> None:
        self.extractor = extractor
        self.encoder = encoder
        self.vectors: dict[str, np.ndarray] = dict(vectors or {})
        self.misses = 0

    def lookup(self, texts: Sequence[str], compute: Callable[[list[str]], np.ndarray]) -> Any:
        keys = [text_key(t) for t in texts]
        missing = sorted(
            {k: t for k, t in zip(keys, texts, strict=True) if k not in self.vectors}.items()
        )
        if missing:
            self.misses += len(missing)
            emb = compute([t for _, t in missing])
            for (k, _), row in zip(missing, emb, strict=True):
                self.vectors[k] = np.asarray(row, dtype=np.float32)
        if not keys:
            return np.zeros((0, 0))
        return np.vstack([self.vectors[k] for k in keys]).astype(np.float64)

    def to_frame(self) -> Any:
        import pandas as pd

        keys = sorted(self.vectors)
        mat = np.vstack([self.vectors[k] for k in keys]) if keys else np.zeros((0, 0))
        frame = pd.DataFrame(mat, columns=[f"e{i:03d}" for i in range(mat.shape[1])])
        frame.insert(0, "text_sha256", keys)
        frame.insert(0, "encoder", self.encoder or "")
        frame.insert(0, "extractor", self.extractor)
        return frame

    def save(self, path: str | pathlib.Path) -> None:
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.to_frame().to_parquet(path, index=False)

    @classmethod
    def load(cls, path: str | pathlib.Path, extractor: str) -> EmbeddingCache:
        import pandas as pd

        frame = pd.read_parquet(path)
        if len(frame) and set(frame["extractor"]) != {extractor}:
            raise ValueError(f"{path} caches {sorted(set(frame['extractor']))}, not {extractor}")
        encoders = set(frame["encoder"]) if "encoder" in frame else {""}
        if len(encoders) > 1:
            raise ValueError(f"{path} mixes embeddings of encoders {sorted(encoders)}")
        cols = [c for c in frame.columns if c.startswith("e") and c[1:].isdigit()]
        mat = frame[cols].to_numpy(dtype=np.float32)
        encoder = next(iter(encoders), "") or None
        return cls(extractor, dict(zip(frame["text_sha256"], mat, strict=True)), encoder)

    def merge(self, other: EmbeddingCache) -> EmbeddingCache:
        """Both caches' vectors (same encoder required)."""
        if other.extractor != self.extractor or (
            self.encoder and other.encoder and other.encoder != self.encoder
        ):
            raise ValueError(
                f"cannot merge embeddings of {other.extractor} ({other.encoder}) into "
                f"{self.extractor} ({self.encoder})"
            )
        self.vectors.update(other.vectors)
        self.encoder = self.encoder or other.encoder
        return self


class CachedExtractor(FeatureExtractor):
    """A stateless extractor whose features come from an :class:`EmbeddingCache` when the
    text is there. The cache is not pickled with a model."""

    dense: ClassVar[bool] = True
    stateless: ClassVar[bool] = True

    def __init__(self, base: FeatureExtractor, cache: EmbeddingCache) -> None:
        if not base.stateless:
            raise ValueError(f"only stateless extractors can be cached, not {base.name!r}")
        if cache.encoder and cache.encoder != encoder_id(base):
            raise ValueError(
                f"the {cache.extractor} embeddings were made by {cache.encoder}, but this "
                f"extractor is {encoder_id(base)}: embed the texts again (harmtrace embed-texts)"
            )
        self.base = base
        self.cache = cache

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.base.name

    @property
    def version(self) -> str:  # type: ignore[override]
        return self.base.version

    @property
    def c_grid(self) -> tuple[float, ...]:  # type: ignore[override]
        return self.base.c_grid

    def params(self) -> dict[str, Any]:
        return self.base.params()

    def encoder_id(self) -> str:
        return encoder_id(self.base)

    def fit(self, texts: Sequence[str]) -> CachedExtractor:
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        return self.cache.lookup(as_texts(texts), self.base.transform)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["cache"] = EmbeddingCache(self.cache.extractor, encoder=self.cache.encoder)
        return state


def dataset_embeddings(embedding_dir: str | pathlib.Path, part: str, dataset: str) -> pathlib.Path:
    """Where the DAG keeps one dataset's embeddings by one stateless extractor."""
    return pathlib.Path(embedding_dir) / part / f"{dataset}.parquet"


def load_caches(paths: Sequence[str | pathlib.Path]) -> dict[str, EmbeddingCache]:
    """Embedding caches keyed by extractor name; files of one extractor are merged."""
    import pandas as pd

    caches: dict[str, EmbeddingCache] = {}
    for path in paths:
        names = pd.read_parquet(path, columns=["extractor"])["extractor"].unique()
        if len(names) > 1:
            raise ValueError(f"{path}: expected one extractor, found {list(names)}")
        if not len(names):
            continue
        cache = EmbeddingCache.load(path, str(names[0]))
        if cache.extractor in caches:
            caches[cache.extractor].merge(cache)
        else:
            caches[cache.extractor] = cache
    return caches
