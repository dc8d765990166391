"""What the moderation flow needs from a grader and from an LLM, as small interfaces.

:class:`Scorer` scores texts for harm (a backend that sets ``scores_sentences`` provides
one through its training interface's ``load_scorer``) and judges relevance of a final
output to its prompt. :class:`LLMBackend` rewrites flagged sentences and
regenerates responses under constraints; the flow only calls it for policies that use
``rewrite`` or ``regenerate``, and such policies refuse to validate without one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pandas as pd


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
