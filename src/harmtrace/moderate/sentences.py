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


def _split_chunk(args: tuple[list[str], str]) -> list[list[Span]]:
    texts, language = args
    return [split_spans(t, language) for t in texts]


def split_many(texts: Sequence[str], language: str = "en", workers: int = 1) -> list[list[Span]]:
    """:func:`split_spans` per text; repeated texts are split once.

    pysbd is pure Python and the slowest step of the flow, so with ``workers > 1`` the
    distinct texts are split in that many processes (same result, in order).
    """
    unique = list(dict.fromkeys(texts))
    if workers > 1 and len(unique) >= 200:
        from concurrent.futures import ProcessPoolExecutor

        size = -(-len(unique) // (workers * 4))
        chunks = [(unique[i : i + size], language) for i in range(0, len(unique), size)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(_split_chunk, chunks))
        done = [spans for part in parts for spans in part]
    else:
        done = [split_spans(t, language) for t in unique]
    by_text = dict(zip(unique, done, strict=True))
    return [by_text[t] for t in texts]
