"""Talking to OpenAI-compatible chat endpoints: one client for every stage that needs an LLM.

* :mod:`harmtrace.llm.client` -- :class:`LLMClient`: async batches with a concurrency
  limit, rate limit, retries with backoff, re-asks, progress and token accounting.
* :mod:`harmtrace.llm.cache` -- the SQLite answer cache that makes reruns free and killed
  runs resumable.
* :mod:`harmtrace.llm.replies` -- reply parsers: JSON validated by pydantic (repaired when
  needed), or free text.

Nothing here knows about grading; graders and tree generators build
:class:`ChatRequest` lists and read :class:`Result` values. See docs/llm.md.
"""

from harmtrace.llm.cache import AnswerCache, cache_key, messages_digest
from harmtrace.llm.client import (
    ChatRequest,
    ClientSettings,
    LLMClient,
    LLMConfigError,
    Result,
    read_api_key,
)
from harmtrace.llm.progress import RunStats
from harmtrace.llm.replies import JsonReply, ReplyError, ReplyParser, TextReply, strict_schema

__all__ = [
    "AnswerCache",
    "ChatRequest",
    "ClientSettings",
    "JsonReply",
    "LLMClient",
    "LLMConfigError",
    "ReplyError",
    "ReplyParser",
    "Result",
    "RunStats",
    "TextReply",
    "cache_key",
    "messages_digest",
    "read_api_key",
    "strict_schema",
]
