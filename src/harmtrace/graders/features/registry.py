"""Feature extractors by name, each with a pydantic spec: the extractor kind of
:mod:`harmtrace.plugins`, so a saved model says which extractor and settings made its inputs.

Built-ins register themselves with :func:`register_extractor` when their module is
imported, and are imported lazily: asking for ``tfidf`` never imports an encoder (the
MiniLM one needs torch). Other packages add extractors through the
``harmtrace.extractors`` entry-point group: a
:class:`~harmtrace.graders.base.FeatureExtractor` subclass with a ``name`` and a ``Spec``
(an :class:`~harmtrace.graders.base.ExtractorSpec`) for its constructor's keywords. Names
join with ``+`` into one stacked extractor (:func:`.stack.make_extractor`).
"""

from __future__ import annotations

from harmtrace.errors import HarmtraceError
from harmtrace.graders.base import FeatureExtractor
from harmtrace.plugins import Registry


class ExtractorError(HarmtraceError, ValueError):
    """An extractor name is unknown or its parameters do not fit its spec (a ``ValueError``
    too, which is what config checks catch)."""


EXTRACTORS: Registry[type[FeatureExtractor]] = Registry(
    kind="extractor",
    where="{name}",
    group="harmtrace.extractors",
    builtin={
        "tfidf": "harmtrace.graders.features.tfidf",
        "wordllama": "harmtrace.graders.features.word_embeddings",
        "minilm": "harmtrace.graders.features.sentence_embeddings",
    },
    error=ExtractorError,
    unknown_hint="; join names with '+' to stack extractors (e.g. 'tfidf+minilm')",
)
register_extractor = EXTRACTORS.register


def extractor_parts(name: str) -> list[str]:
    """The parts of ``a+b`` in order, each a registered extractor (every unknown one is
    named in the error, with the registered names)."""
    parts = name.split("+")
    known = EXTRACTORS.names()
    unknown = [p for p in dict.fromkeys(parts) if p not in known]
    if unknown:
        raise ExtractorError(
            f"unknown extractor {' and '.join(repr(p) for p in unknown)} in {name!r}; "
            f"registered: {', '.join(known)}{EXTRACTORS.unknown_hint}"
        )
    return parts
