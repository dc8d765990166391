"""Sentence splitting shared by the refusal detector and relevance.

Both must cut a response at the same places: the detector tags sentences, and relevance
reads those tags back sentence by sentence. Curly apostrophes are straightened first so
that "can’t" and "can't" split and match alike.
"""

from __future__ import annotations

import re

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")


def _normalise(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'").replace("\u02bc", "'")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_SPLIT.split(_normalise(text)) if s and s.strip()]
