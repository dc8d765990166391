"""Talking to OpenAI-compatible chat endpoints: one client for every stage that needs an LLM.

* :mod:`harmtrace.llm.client` -- :class:`LLMClient`: async batches with a concurrency
  limit, rate limit, retries with backoff, re-asks, progress and token accounting.
* :mod:`harmtrace.llm.cache` -- the SQLite answer cache that makes reruns free and killed
  runs resumable.
* :mod:`harmtrace.llm.replies` -- reply parsers: JSON validated by pydantic (repaired when
  needed), or free text.
* :mod:`harmtrace.llm.settings` -- :class:`EndpointSettings`, the one definition of an
  endpoint's settings that every stage nests.

Nothing here knows about grading; graders and tree generators build
:class:`ChatRequest` lists and read :class:`Result` values. See docs/llm.md.
"""

from harmtrace.llm.cache import AnswerCache, cache_key, messages_digest
from harmtrace.llm.client import (
    ChatRequest,
    LLMClient,
    LLMConfigError,
    Result,
    forget_response_formats,
    read_api_key,
)
from harmtrace.llm.progress import RunStats
from harmtrace.llm.replies import JsonReply, ReplyError, ReplyParser, TextReply, strict_schema
from harmtrace.llm.settings import EndpointSettings, GenerationSettings, endpoint_overrides

__all__ = [
    "AnswerCache",
    "ChatRequest",
    "EndpointSettings",
    "GenerationSettings",
    "JsonReply",
    "LLMClient",
    "LLMConfigError",
    "ReplyError",
    "ReplyParser",
    "Result",
    "RunStats",
    "TextReply",
    "cache_key",
    "endpoint_overrides",
    "forget_response_formats",
    "messages_digest",
    "read_api_key",
    "strict_schema",
]
