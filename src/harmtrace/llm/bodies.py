"""One request's cache key and HTTP body, built from a single serialisation.

The messages are written once as canonical JSON: that string enters the cache key and is
spliced into the body unchanged. The sampling parameters and the response format (whose
JSON schema is the largest part of a request) are serialised once per parser and mode.
"""

from __future__ import annotations

import json
from typing import Any

from harmtrace.llm.cache import canonical_json, key_from_parts
from harmtrace.llm.formats import with_schema_note
from harmtrace.llm.replies import ReplyParser
from harmtrace.llm.settings import EndpointSettings, RequestFormat


class RequestBuilder:
    """Cache keys and request bodies for one batch against one endpoint and model."""

    def __init__(self, settings: EndpointSettings) -> None:
        self.settings = settings
        self.sampling = settings.sampling()
        self._formats: dict[tuple[int, str], tuple[str, str]] = {}
        self._parsers: list[ReplyParser] = []
        self._head = json.dumps({"model": settings.model}, ensure_ascii=False)[:-1]

    def _format(self, parser: ReplyParser, mode: RequestFormat) -> tuple[str, str]:
        """(canonical JSON of the answer-determining parameters, the request body's tail):
        computed once per parser and mode, since a JSON schema is the largest part of a
        request."""
        cached = self._formats.get((id(parser), mode))
        if cached is not None:
            return cached
        params = dict(self.sampling)
        if parser.schema is not None and mode == "json_object":
            # llama.cpp enforces a schema given this way; others take plain JSON mode
            params["response_format"] = {"type": "json_object", "schema": parser.schema}
        elif parser.schema is not None and mode == "json_schema":
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": parser.name, "schema": parser.schema, "strict": True},
            }
        tail = json.dumps(params, ensure_ascii=False)[1:-1]
        self._formats[(id(parser), mode)] = (canonical_json(params), tail)
        self._parsers.append(parser)  # keeps id(parser) from being reused in this batch
        return self._formats[(id(parser), mode)]

    def _conversation(
        self, messages: list[dict[str, Any]], parser: ReplyParser, mode: RequestFormat
    ) -> list[dict[str, Any]]:
        """The messages as sent: without a strict schema the prompt carries it, unless the
        parser says its prompt already spells the shape out (``schema_in_prompt = False``)."""
        if (
            mode == "json_schema"
            or parser.schema is None
            or not getattr(parser, "schema_in_prompt", True)
        ):
            return messages
        return with_schema_note(messages, parser.schema)

    def key(
        self, messages: list[dict[str, Any]], tag: str, parser: ReplyParser, mode: RequestFormat
    ) -> tuple[str, str, str]:
        """(cache key, canonical JSON of the messages as sent, request body tail)."""
        params_json, tail = self._format(parser, mode)
        messages_json = canonical_json(self._conversation(messages, parser, mode))
        return (
            key_from_parts(self.settings.model, tag, messages_json, params_json),
            messages_json,
            tail,
        )

    def body(self, messages_json: str, tail: str) -> bytes:
        """The HTTP body; it reuses the canonical JSON: one serialisation per request."""
        return f'{self._head}, "messages": {messages_json}, {tail}}}'.encode()
