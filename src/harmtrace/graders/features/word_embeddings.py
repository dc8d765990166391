"""WordLlama static token embeddings, mean-pooled to 256 dimensions.

The weights ship inside the ``wordllama`` wheel, so nothing is downloaded. The refusal
detector and relevance embed with the same loader and batching (:func:`embed_sorted`),
so a text's vector is the same wherever it is computed.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from harmtrace.graders.base import ExtractorSpec, FeatureExtractor, as_texts
from harmtrace.graders.features.registry import register_extractor


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


class WordLlamaSpec(ExtractorSpec):
    """WordLlama settings (the constructor's defaults)."""

    dim: int = 256
    batch_size: int = 16


@register_extractor
class WordLlamaExtractor(FeatureExtractor):
    """Mean-pooled WordLlama embeddings, scaled to unit length."""

    Spec = WordLlamaSpec
    name: ClassVar[str] = "wordllama"
    version: ClassVar[str] = "1"
    dense: ClassVar[bool] = True
    stateless: ClassVar[bool] = True
    c_grid: ClassVar[tuple[float, ...]] = (1e-4, 1e-3, 1e-2)

    def __init__(self, dim: int = 256, batch_size: int = 16) -> None:
        self.dim = int(dim)
        self.batch_size = int(batch_size)

    def params(self) -> dict[str, Any]:
        return {"dim": self.dim, "config": "l2_supercat", "package_version": wordllama_version()}

    @property
    def model(self) -> Any:
        """The WordLlama weights, loaded when first needed (not in ``__init__``)."""
        if getattr(self, "_model", None) is None:
            self._model = load_wordllama(self.dim)
        return self._model

    def fit(self, texts: Sequence[str]) -> WordLlamaExtractor:
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        return embed_sorted(self.model, as_texts(texts), self.batch_size, self.dim)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_model", None)  # the weights come from the installed wheel, not the pickle
        return state


def wordllama_version() -> str:
    """The installed wordllama release: its bundled weights are what the vectors depend on."""
    try:
        from importlib.metadata import version

        return version("wordllama")
    except Exception:  # pragma: no cover
        return "unknown"
