"""Which ``response_format`` an endpoint takes, found by asking once per mode.

With ``auto`` a batch starts at a strict JSON schema; a server that answers with an
error naming the response format (:data:`FORMAT_WORDS`) makes :class:`Formats` step down
the fallback order (``json_object``, then the prompt alone, the schema then written into
the prompt by :func:`with_schema_note`). What an endpoint and model turned out to take is
remembered for the whole process, so later clients do not probe again.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any

from harmtrace.llm.errors import LLMConfigError
from harmtrace.llm.settings import FALLBACK, EndpointSettings, RequestFormat

log = logging.getLogger("harmtrace.llm")

FORMAT_WORDS = re.compile(
    r"response[_ ]?format|json[_ ]?schema|json[_ ]?object|structured output|grammar", re.I
)
"""What a server's error says when it is the response format it cannot take (llama.cpp:
'response_format type must be one of "text" or "json_object"'; OpenAI: "'response_format'
of type 'json_schema' is not supported with this model")."""

_LEARNED: dict[tuple[str, str], RequestFormat] = {}
"""(base_url, model) -> the format that endpoint took, for every client in this process."""
_LEARNED_LOCK = threading.Lock()


def forget_response_formats() -> None:
    """Forget what endpoints were found to accept (tests; a server upgraded in place)."""
    with _LEARNED_LOCK:
        _LEARNED.clear()


class Formats:
    """Which response format a client's requests use, and whether that is known to work.

    An explicit setting is used as is (a rejection then aborts with a clear error). With
    ``auto`` the mode starts at what this process already learned about the endpoint, or
    at ``json_schema`` unconfirmed; :meth:`reject` moves it one step down the fallback
    order, :meth:`confirm` fixes it once a request in that mode was answered.
    """

    def __init__(self, settings: EndpointSettings) -> None:
        self.settings = settings
        self.auto = settings.response_format == "auto"
        self.endpoint = (settings.base_url.rstrip("/"), settings.model)
        self.changes: list[str] = []
        """One line per fallback taken (what was rejected, with the server's reason)."""
        if not self.auto:
            self.mode: RequestFormat = settings.response_format  # type: ignore[assignment]
            self.confirmed = True
            return
        with _LEARNED_LOCK:
            learned = _LEARNED.get(self.endpoint)
        self.mode = learned or FALLBACK[0]
        self.confirmed = learned is not None

    def confirm(self, mode: RequestFormat) -> None:
        if self.confirmed or mode != self.mode:
            return
        self.confirmed = True
        if self.auto:
            with _LEARNED_LOCK:
                _LEARNED[self.endpoint] = mode

    def reject(self, mode: RequestFormat, reason: str) -> None:
        """The server refused ``mode``; raise :class:`LLMConfigError` if nothing is left."""
        s = self.settings
        if not self.auto:
            raise LLMConfigError(
                f"{s.base_url} rejects response_format {mode!r} for model {s.model!r}: {reason}; "
                "set response_format to auto (falls back by itself), json_object or none"
            )
        if mode != self.mode:  # another request already moved on
            return
        nxt = FALLBACK[FALLBACK.index(mode) + 1]  # "none" sends no format: never rejected
        note = f"{s.base_url} rejected response_format {mode} ({reason}); using {nxt} from now on"
        log.warning("%s", note)
        self.changes.append(note)
        self.mode = nxt
        self.confirmed = False

    def adopt(self, mode: RequestFormat) -> None:
        """A cached answer shows an earlier run used ``mode``: use it without asking again
        (the server is not asked whether a stricter mode would work now)."""
        if self.confirmed:
            return
        self.mode = mode
        self.confirm(mode)


def schema_note(schema: dict[str, Any]) -> str:
    """The instruction that carries the reply's JSON schema inside the prompt, for servers
    that cannot take it as a strict response format."""
    return (
        "Reply with one JSON object, and nothing else, that validates against this JSON "
        f"schema:\n{json.dumps(schema, ensure_ascii=False, separators=(',', ':'))}"
    )


def with_schema_note(
    messages: list[dict[str, Any]], schema: dict[str, Any]
) -> list[dict[str, Any]]:
    """``messages`` with :func:`schema_note` appended to the first system message (one is
    put first when there is none: several chat templates refuse a second system turn)."""
    note = schema_note(schema)
    if messages and messages[0].get("role") == "system":
        first = dict(messages[0])
        first["content"] = f"{first.get('content') or ''}\n\n{note}".lstrip()
        return [first, *messages[1:]]
    return [{"role": "system", "content": note}, *messages]
