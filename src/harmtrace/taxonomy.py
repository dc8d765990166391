"""Shared vocabulary: harm categories, severity levels, transition names.

Kept in one place so the grader, the analysis and the paper cannot disagree
about spelling or order.
"""

from __future__ import annotations

CATEGORIES: tuple[str, ...] = ("hate", "sexual", "violence", "self_harm")
"""The four harm categories, in the order tables and figures use."""

CATEGORY_TITLES: dict[str, str] = {
    "hate": "Hate",
    "sexual": "Sexual",
    "violence": "Violence",
    "self_harm": "Self-harm",
}

MODERATION_LABEL_KEYS: tuple[str, ...] = ("S", "S3", "H", "H2", "V", "V2", "HR", "SH")
"""Label keys of the OpenAI moderation set (records keep them as ``label_<KEY>``)."""

SEVERITY_LEVELS: tuple[int, ...] = (0, 1, 2, 3)
SEVERITY_NAMES: dict[int, str] = {0: "Safe", 1: "Low", 2: "Medium", 3: "High"}

RELEVANCE_LEVELS: tuple[int, ...] = (1, 2, 3)

SIDES: tuple[str, ...] = ("prompt", "response")
"""The two texts of a record that get a harm judgment each."""

TRANSITIONS: tuple[str, ...] = ("de-escalate", "preserve", "escalate")
