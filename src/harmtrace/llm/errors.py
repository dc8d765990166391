"""How a request can fail, sorted by what the client does about it.

:class:`LLMConfigError` aborts the whole batch (every request would fail the same way);
:class:`Transient` is retried with backoff; :class:`RequestFailed` ends one request and the
batch goes on; :class:`FormatRejected` changes the response format instead of retrying.
"""

from __future__ import annotations

from harmtrace.errors import HarmtraceError


class LLMConfigError(HarmtraceError):
    """The endpoint, model or key is wrong or missing; nothing can be graded until fixed."""


class Transient(Exception):
    """A failure worth retrying; ``retry_after`` is the server's requested wait, if any;
    ``unreachable`` when no connection could be made at all."""

    def __init__(
        self, reason: str, retry_after: float | None = None, unreachable: bool = False
    ) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.unreachable = unreachable


class RequestFailed(Exception):
    """This request cannot succeed (e.g. HTTP 400); the batch goes on."""


class FormatRejected(Exception):
    """The server refused the request's ``response_format``: not worth a retry, since the
    same body would be refused again; the client changes the format instead."""
