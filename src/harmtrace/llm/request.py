"""What a batch takes and gives back: one :class:`ChatRequest` in, one :class:`Result` out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from harmtrace.llm.replies import ReplyParser
from harmtrace.llm.settings import RequestFormat

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One conversation to complete.

    ``tag`` names what produced the messages (e.g. ``"rubric-harm/3f2a..."``, a template
    and its hash) and is part of the cache key. ``parser`` overrides the batch's parser,
    so one batch can mix reply types.
    """

    messages: Sequence[Mapping[str, Any]]
    tag: str = ""
    parser: ReplyParser | None = None


@dataclass(slots=True)
class Result(Generic[T]):
    """The outcome of one :class:`ChatRequest`: a value, or an error saying why not."""

    value: T | None = None
    error: str | None = None
    content: str | None = None
    """The last reply text (None when no reply arrived)."""
    cached: bool = True
    """Every reply came from the cache (no HTTP request was needed)."""
    attempts: int = 0
    """HTTP requests sent for it, retries and re-asks included."""
    reasks: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    """The server's ``finish_reason`` for the last reply (``stop``, ``length``...)."""
    response_format: RequestFormat | None = None
    """How the last request asked for JSON (``json_schema``, ``json_object`` or ``none``);
    with ``auto`` this is the mode the endpoint turned out to take."""

    @property
    def ok(self) -> bool:
        return self.error is None
