"""Sentence spans of a response, from pysbd, that cover the text exactly.

pysbd (rule-based sentence boundary disambiguation, with abbreviation, list and
quotation handling) decides where sentences end. Its own character-span routine is not
used: it compiles one regular expression per sentence, which evicts pysbd's rule
patterns from Python's regex cache and makes segmentation several times slower, and it
silently skips a sentence it cannot locate. Instead each sentence pysbd returns is
found with ``str.find`` from the end of the previous one, and a span runs from its
start to the next sentence's start, so the spans partition the text: whitespace between
sentences belongs to the sentence before it, text before the first sentence to the
first, and a sentence that cannot be located (pysbd changed it) stays part of the
previous span. Joining the span texts always gives the response back, so redaction and
highlighting can never lose or duplicate a character.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import pysbd

SPLITTER_VERSION = f"pysbd-{getattr(pysbd, '__version__', 'unknown')}/en/spans-1"


@dataclass(frozen=True)
class Span:
    """One sentence: ``text == response[start:end]`` (trailing whitespace included)."""

    start: int
    end: int
    text: str


@lru_cache(maxsize=4)
def _segmenter(language: str) -> pysbd.Segmenter:
    return pysbd.Segmenter(language=language, clean=False)


def _boundaries(text: str, language: str) -> list[str]:
    return _segmenter(language).processor(text).process()


def split_spans(text: str, language: str = "en") -> list[Span]:
    """Sentence spans that partition ``text`` (empty or blank text: no spans)."""
    if not text or not text.strip():
        return []
    starts: list[int] = []
    cursor = 0
    for sentence in _boundaries(text, language):
        piece = sentence.strip()
        if not piece:
            continue
        at = text.find(piece, cursor)
        if at < 0:  # pysbd altered this sentence: keep it inside the previous span
            continue
        starts.append(at)
        cursor = at + len(piece)
    if not starts:
        return [Span(0, len(text), text)]
    starts[0] = 0
    ends = [*starts[1:], len(text)]
    return [Span(s, e, text[s:e]) for s, e in zip(starts, ends, strict=True)]


def split_many(texts: Sequence[str], language: str = "en") -> list[list[Span]]:
    """:func:`split_spans` per text; repeated texts are split once."""
    seen: dict[str, list[Span]] = {}
    out = []
    for text in texts:
        if text not in seen:
            seen[text] = split_spans(text, language)
        out.append(seen[text])
    return out
