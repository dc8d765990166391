"""Grader backends behind one interface, registered by name (:mod:`.registry`).

``embedded`` (the default): calibrated per-category classifiers trained on human labels, with
a documented severity mapping and relevance method (``docs/grader.md``). ``openai``: any
OpenAI-compatible chat endpoint. ``human``: labels already in a dataset.
"""

from harmtrace.graders.base import (
    FeatureExtractor,
    Grader,
    GraderSpec,
    empty_judgments,
    judgment_columns,
    judgment_dtypes,
    mark_failed,
    validate_judgments,
)
from harmtrace.graders.registry import grader_names, make_grader, register_grader

__all__ = [
    "FeatureExtractor",
    "Grader",
    "GraderSpec",
    "empty_judgments",
    "grader_names",
    "judgment_columns",
    "judgment_dtypes",
    "make_grader",
    "mark_failed",
    "register_grader",
    "validate_judgments",
]
