"""The embedded grader as the moderation flow's sentence scorer: harm scores per text,
relevance per prompt-response pair, and the word n-grams that pushed a score up."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from harmtrace.graders.embedded.model import EmbeddedGrader
from harmtrace.taxonomy import CATEGORIES


class EmbeddedScorer:
    """:class:`~harmtrace.moderate.backends.Scorer` on a trained :class:`EmbeddedGrader`.

    ``explain`` uses the linear model directly: a text's score for a category is a sum of
    feature weights, so the word n-grams with the largest positive contribution are the
    cues that pushed it up. Only the word block of the TF-IDF features is used (character
    n-grams are not readable); other extractors give no cues.
    """

    def __init__(self, grader: EmbeddedGrader) -> None:
        if grader.relevance_ is None:
            raise ValueError("the embedded grader was trained without relevance scoring")
        if getattr(grader.relevance_, "refusal", None) is None:
            raise ValueError(
                "the embedded grader has no refusal detector, which relevance needs: "
                "retrain with `harmtrace train-grader --refusal-lexicon ... --refusal-labels ...`"
            )
        self.grader = grader
        self._names: np.ndarray | None = None

    @classmethod
    def load(cls, model_dir: str | Path) -> EmbeddedScorer:
        return cls(EmbeddedGrader.load(model_dir))

    def attach_caches(self, caches: dict) -> None:
        """Read embeddings the DAG keeps instead of encoding texts again."""
        self.grader.attach_caches(caches)

    @property
    def name(self) -> str:
        return self.grader.name

    @property
    def version(self) -> str:
        return self.grader.version

    def score(self, texts: Sequence[str]) -> pd.DataFrame:
        if len(texts) == 0:
            cols = {}
            for c in CATEGORIES:
                cols[f"prob_{c}"] = pd.Series([], dtype=float)
                cols[f"severity_{c}"] = pd.Series([], dtype="Int8")
                cols[f"confidence_{c}"] = pd.Series([], dtype=float)
            return pd.DataFrame(cols)
        return self.grader.score(list(texts))

    def relevance(
        self, prompts: Sequence[str], responses: Sequence[str], contexts: Sequence[str]
    ) -> pd.DataFrame:
        if len(prompts) == 0:
            return pd.DataFrame(
                {"relevance": pd.array([], dtype="Int8"), "refusal": pd.array([], dtype="boolean")}
            )
        out = self.grader.relevance_.score(list(prompts), list(responses), list(contexts))
        return out[["relevance", "refusal"]]

    def explain(
        self, texts: Sequence[str], categories: Sequence[str], k: int = 3
    ) -> list[list[str]]:
        extractor = self.grader.extractor_
        names_of = getattr(extractor, "word_feature_names", None)
        words_of = getattr(extractor, "transform_words", None)
        if names_of is None or words_of is None or len(texts) == 0:
            return [[] for _ in texts]
        if self._names is None:
            self._names = np.asarray(names_of())
        unique = sorted(set(texts))
        row_of = {t: i for i, t in enumerate(unique)}
        x = words_of(unique)
        coefs = {c: self.grader.models_[c].coef_[: len(self._names)] for c in set(categories)}
        out: list[list[str]] = []
        for text, cat in zip(texts, categories, strict=True):
            r = row_of[text]
            lo, hi = x.indptr[r], x.indptr[r + 1]
            cols = x.indices[lo:hi]
            contrib = x.data[lo:hi] * coefs[cat][cols]
            order = np.argsort(-contrib, kind="stable")[:k]
            out.append([str(self._names[cols[j]]) for j in order if contrib[j] > 0])
        return out
