"""What the moderation flow needs from a grader and from an LLM, as small interfaces.

:class:`Scorer` scores texts for harm (any grader backend can implement it: the embedded
grader through :class:`EmbeddedScorer`, an LLM grader later) and judges relevance of a
final output to its prompt. :class:`LLMBackend` rewrites flagged sentences and
regenerates responses under constraints; the flow only calls it for policies that use
``rewrite`` or ``regenerate``, and such policies refuse to validate without one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from harmtrace.taxonomy import CATEGORIES


@runtime_checkable
class Scorer(Protocol):
    """Harm scores per text, relevance per prompt-response pair."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str:
        """Changes whenever a score could change; written into every trace."""
        ...

    def score(self, texts: Sequence[str]) -> pd.DataFrame:
        """One row per text: ``prob_<cat>`` (float), ``severity_<cat>`` (0-3) and
        ``confidence_<cat>`` (float) for every category in the taxonomy."""
        ...

    def relevance(
        self, prompts: Sequence[str], responses: Sequence[str], contexts: Sequence[str]
    ) -> pd.DataFrame:
        """One row per pair: ``relevance`` (1-3) and ``refusal`` (bool)."""
        ...

    def explain(
        self, texts: Sequence[str], categories: Sequence[str], k: int = 3
    ) -> list[list[str]]:
        """For each text, up to ``k`` cues (words) that raised its score in the paired
        category most; an empty list when the backend cannot say."""
        ...


@dataclass(frozen=True)
class FlaggedSentence:
    text: str
    category: str
    level: str


@dataclass(frozen=True)
class RewriteRequest:
    """Rewrite ``response`` so that the ``flagged`` sentences no longer violate."""

    request_id: str
    prompt: str
    context: str
    response: str
    flagged: tuple[FlaggedSentence, ...]
    constraints: str


@dataclass(frozen=True)
class RegenerateRequest:
    """Answer ``prompt`` afresh under ``constraints`` (the flagged response is not reused)."""

    request_id: str
    prompt: str
    context: str
    constraints: str
    reasons: tuple[str, ...]


@runtime_checkable
class LLMBackend(Protocol):
    """Batch text generation for the LLM-only actions (an OpenAI-compatible client)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str:
        """Model and prompt version; written into traces the backend touched."""
        ...

    def rewrite(self, requests: Sequence[RewriteRequest]) -> list[str]: ...

    def regenerate(self, requests: Sequence[RegenerateRequest]) -> list[str]: ...


class EmbeddedScorer:
    """:class:`Scorer` on a trained :class:`~harmtrace.graders.embedded.EmbeddedGrader`.

    ``explain`` uses the linear model directly: a text's score for a category is a sum of
    feature weights, so the word n-grams with the largest positive contribution are the
    cues that pushed it up. Only the word block of the TF-IDF features is used (character
    n-grams are not readable); other extractors give no cues.
    """

    def __init__(self, grader) -> None:  # EmbeddedGrader; imported lazily by callers
        if grader.relevance is None:
            raise ValueError("the embedded grader was trained without relevance scoring")
        if getattr(grader.relevance, "refusal", None) is None:
            raise ValueError(
                "the embedded grader has no refusal detector, which relevance needs: "
                "retrain with `harmtrace train-grader --refusal-lexicon ... --refusal-labels ...`"
            )
        self.grader = grader
        self._names: np.ndarray | None = None

    @classmethod
    def load(cls, model_dir: str | Path) -> EmbeddedScorer:
        from harmtrace.graders.embedded import EmbeddedGrader

        return cls(EmbeddedGrader.load(model_dir))

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
        out = self.grader.relevance.score(list(prompts), list(responses), list(contexts))
        return out[["relevance", "refusal"]]

    def explain(
        self, texts: Sequence[str], categories: Sequence[str], k: int = 3
    ) -> list[list[str]]:
        extractor = self.grader.extractor
        names_of = getattr(extractor, "word_feature_names", None)
        words_of = getattr(extractor, "transform_words", None)
        if names_of is None or words_of is None or len(texts) == 0:
            return [[] for _ in texts]
        if self._names is None:
            self._names = np.asarray(names_of())
        unique = sorted(set(texts))
        row_of = {t: i for i, t in enumerate(unique)}
        x = words_of(unique)
        coefs = {c: self.grader.models[c].coef_[: len(self._names)] for c in set(categories)}
        out: list[list[str]] = []
        for text, cat in zip(texts, categories, strict=True):
            r = row_of[text]
            lo, hi = x.indptr[r], x.indptr[r + 1]
            cols = x.indices[lo:hi]
            contrib = x.data[lo:hi] * coefs[cat][cols]
            order = np.argsort(-contrib, kind="stable")[:k]
            out.append([str(self._names[cols[j]]) for j in order if contrib[j] > 0])
        return out
