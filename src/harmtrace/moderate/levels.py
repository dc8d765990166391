"""Policy levels and actions: the words a policy, a decision and a trace share.

Kept apart from :mod:`harmtrace.moderate.policies` (which re-exports them) so the policy
spec and the registry that finds policies stay one readable module each.
"""

from __future__ import annotations

from typing import Literal

from harmtrace.taxonomy import SEVERITY_NAMES

LEVELS: tuple[str, ...] = tuple(SEVERITY_NAMES[k].lower() for k in (1, 2, 3))
"""Policy levels, mildest first: ``low``, ``medium``, ``high`` (severities 1, 2, 3)."""
LEVEL_CODE: dict[str, int] = {name: i + 1 for i, name in enumerate(LEVELS)}
"""Level name -> 1..3; 0 means no level reached."""

Action = Literal["pass", "annotate", "redact", "rewrite", "block", "regenerate"]
ACTIONS: tuple[str, ...] = ("pass", "annotate", "redact", "rewrite", "block", "regenerate")
ACTION_RANK: dict[str, int] = {
    "pass": 0,
    "annotate": 1,
    "redact": 2,
    "rewrite": 2,
    "block": 3,
    "regenerate": 3,
}
"""How strongly an action intervenes; a policy's actions may not fall as levels rise."""
INTERVENTION_KIND: dict[str, str] = {
    "pass": "none",
    "annotate": "annotate",
    "redact": "modify",
    "rewrite": "modify",
    "block": "block",
    "regenerate": "regenerate",
}
"""The seed's intervention types: what the reader of a trace is told happened."""
LLM_ACTIONS: frozenset[str] = frozenset({"rewrite", "regenerate"})
SENTENCE_ACTIONS: frozenset[str] = frozenset({"redact", "rewrite"})
"""Actions that change flagged sentences only (the rest of the response stays)."""
