"""Talking to OpenAI-compatible chat endpoints: one client for every stage that needs an LLM.

* :mod:`harmtrace.llm.client` -- :class:`LLMClient`: async batches with a concurrency
  limit, rate limit, retries with backoff, re-asks, progress and token accounting.
* :mod:`harmtrace.llm.batch` -- one request through cache, de-duplication, format
  probing and re-asks; :mod:`harmtrace.llm.transport` -- one HTTP request with slots,
  rate limit and retries; :mod:`harmtrace.llm.bodies` -- its cache key and body.
* :mod:`harmtrace.llm.formats` -- which ``response_format`` an endpoint takes.
* :mod:`harmtrace.llm.request` -- :class:`ChatRequest` in, :class:`Result` out;
  :mod:`harmtrace.llm.errors` -- how a request can fail; :mod:`harmtrace.llm.keys` --
  the API key, read from the environment and redacted.
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
from harmtrace.llm.client import LLMClient
from harmtrace.llm.errors import LLMConfigError
from harmtrace.llm.formats import forget_response_formats
from harmtrace.llm.keys import read_api_key
from harmtrace.llm.progress import RunStats
from harmtrace.llm.replies import JsonReply, ReplyError, ReplyParser, TextReply, strict_schema
from harmtrace.llm.request import ChatRequest, Result
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
