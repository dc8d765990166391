"""The embedded grader's name, version and score columns.

Every part of the grader (fitting, cross-fitting, saving, grading) writes or reads these
columns; they live apart so that none of those parts has to import another for them.
"""

from __future__ import annotations

from harmtrace.graders.labels import SEVERE_KEYS
from harmtrace.taxonomy import CATEGORIES

GRADER_NAME = "embedded"
GRADER_VERSION = "1.1"
HARM_COLUMN = "prob_harmful"
"""The harm head's calibrated probability that a text asks for harm of any kind."""
HARM_FLAG = "harmful"
"""The harm head's call: ``prob_harmful`` at or above its F1-optimal training threshold."""


def score_columns() -> list[str]:
    """Columns of :meth:`EmbeddedGrader.score` (and of :func:`oof_scores`, plus ``fold``)."""
    cols = [f"prob_{c}" for c in CATEGORIES]
    cols += [f"severe_prob_{c}" for c in CATEGORIES if c in SEVERE_KEYS]
    cols += [HARM_COLUMN, HARM_FLAG]
    for c in CATEGORIES:
        cols += [f"severity_{c}", f"confidence_{c}"]
    return cols
