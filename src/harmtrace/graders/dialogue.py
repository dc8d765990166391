"""The prompt side read in its dialogue, not only its last turn.

A record's ``prompt`` is the last user turn; ``context`` holds the turns before it (in
HH-RLHF, 71 % of records have some). Harm said earlier in the dialogue is part of what the
model answers, so grading the last turn alone moves it to the response side and makes
"escalations from a Safe prompt" partly an artefact.

Method: the context is split into turns at speaker tags (``Human:``, ``User:``,
``Assistant:``, ``System:`` at the start of a line); a context without tags is one turn.
Each turn and the last turn are scored separately, and the dialogue's probability for
each head (category, severe sub-label, harm) is the highest over its turns. Severity then
follows from those probabilities by the usual thresholds. Scoring turns one by one keeps
the grader on texts of the length it was trained on (a long concatenation would be read
by a sentence encoder only up to its token limit) and says which turn made a dialogue
harmful. The choice is recorded per judgment (``prompt_scope``) beside the last turn's
own overall severity (``prompt_last_turn_severity``), so both readings can be compared.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_TAG = re.compile(r"(?:^|\n)\s*(?:Human|User|Assistant|System)\s*:\s*", re.IGNORECASE)


def dialogue_turns(context: str | None) -> list[str]:
    """The non-empty turns of a context, speaker tags removed, in order."""
    if context is None or not str(context).strip():
        return []
    text = str(context)
    if not _TAG.search(text):
        return [text.strip()]
    return [t.strip() for t in _TAG.split(text) if t.strip()]


def turn_index(contexts: Sequence[str | None]) -> tuple[list[str], list[int]]:
    """All turns of all contexts flattened, and for each the position of its context."""
    turns: list[str] = []
    owner: list[int] = []
    for i, ctx in enumerate(contexts):
        for t in dialogue_turns(ctx):
            turns.append(t)
            owner.append(i)
    return turns, owner
