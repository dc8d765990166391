"""Grader backends behind one interface.

``embedded`` (this package's default): calibrated per-category classifiers trained on the
OpenAI moderation labels, with a documented severity mapping and relevance method. See
``docs/grader.md``.
"""

from harmtrace.graders.base import (
    FeatureExtractor,
    Grader,
    empty_judgments,
    judgment_columns,
    judgment_dtypes,
    validate_judgments,
)

__all__ = [
    "FeatureExtractor",
    "Grader",
    "empty_judgments",
    "judgment_columns",
    "judgment_dtypes",
    "validate_judgments",
]
