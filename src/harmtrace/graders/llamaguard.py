"""The ``llamaguard`` prompt style: Llama Guard 3's own format, mapped to the four categories.

Method. Llama Guard 3 is a classifier fine-tuned to read a conversation and answer
``safe``, or ``unsafe`` with a second line of hazard codes ``S1``..``S14``. Its chat
template (applied by the server: vLLM, Ollama, llama.cpp with the model's template)
builds the policy prompt itself, so harmtrace sends the conversation as plain turns:
``[user: prompt]`` to judge a prompt, ``[user: prompt, assistant: response]`` to judge a
response. The reply is read strictly (first line ``safe``/``unsafe``; codes must be known)
and mapped by the table in ``prompts/llamaguard3.v1.yaml`` (documented in
docs/grader.md): a flagged code raises its category to level 2, a severe code (or a
severe pair of codes) to 3; codes without a harmtrace category change no category.
The verdict itself, ``unsafe`` with any code, is the harm call (``{side}_harmful``: harm
of any kind, as the embedded grader's harm head). Llama Guard gives no relevance,
refusal, probability or confidence: those stay null.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import yaml

from harmtrace.taxonomy import CATEGORIES

MAP_FILE = "llamaguard3.v1.yaml"
_CODE = re.compile(r"^S\d{1,2}$")


@dataclass(frozen=True)
class GuardMap:
    """Hazard code -> (category, severe), plus severe code pairs."""

    level: int
    codes: dict[str, tuple[str, bool]]
    severe_pairs: tuple[tuple[str, str], ...]
    known: frozenset[str]
    digest: str

    @classmethod
    def load(cls) -> GuardMap:
        raw = resources.files("harmtrace.graders").joinpath("prompts", MAP_FILE).read_bytes()
        data = yaml.safe_load(raw)
        codes = {}
        for code, entry in data["codes"].items():
            if entry["category"] not in CATEGORIES:
                raise ValueError(f"{MAP_FILE}: {code} maps to unknown {entry['category']!r}")
            codes[code] = (entry["category"], bool(entry.get("severe", False)))
        return cls(
            level=int(data["level"]),
            codes=codes,
            severe_pairs=tuple(tuple(p) for p in data.get("severe_pairs", [])),
            known=frozenset(data["known_codes"]),
            digest=hashlib.sha256(raw).hexdigest()[:12],
        )

    def read(self, text: str) -> tuple[str, ...]:
        """The flagged codes in a Llama Guard reply (empty when safe); ``ValueError`` when
        the reply is not in Llama Guard's format."""
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        if not lines:
            raise ValueError("empty reply; expected 'safe' or 'unsafe'")
        verdict = lines[0].lower()
        if verdict == "safe":
            return ()
        if verdict != "unsafe":
            raise ValueError(f"first line is {lines[0][:40]!r}; expected 'safe' or 'unsafe'")
        if len(lines) < 2:
            raise ValueError("'unsafe' without a line of hazard codes")
        codes = tuple(c.strip().upper() for c in lines[1].split(",") if c.strip())
        bad = [c for c in codes if not _CODE.match(c) or c not in self.known]
        if bad or not codes:
            raise ValueError(f"unknown hazard code(s) {bad or lines[1][:40]!r}")
        return codes

    def severities(self, codes: tuple[str, ...]) -> dict[str, int]:
        """Severity 0-3 per category for a set of flagged codes."""
        out = dict.fromkeys(CATEGORIES, 0)
        flagged = set(codes)
        for code in codes:
            if code in self.codes:
                category, severe = self.codes[code]
                out[category] = max(out[category], 3 if severe else self.level)
        for a, b in self.severe_pairs:
            if a in flagged and b in flagged and a in self.codes:
                out[self.codes[a][0]] = 3
        return out


def guard_messages(prompt: str, response: str | None = None) -> list[dict[str, str]]:
    """The conversation Llama Guard judges: its last turn is the text under judgment."""
    msgs = [{"role": "user", "content": prompt}]
    if response is not None:
        msgs.append({"role": "assistant", "content": response})
    return msgs
