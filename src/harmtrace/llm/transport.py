"""Sending one request body over HTTP: concurrency, rate limit, retries, status handling.

A request waits for a concurrency slot (``asyncio.Semaphore``) and a rate-limiter token
(aiolimiter), and gives the slot back before any backoff, so waiting never idles the
pipe. 429, 408, 5xx, timeouts and connection errors are retried by tenacity with
exponential backoff plus jitter; a server's ``retry-after-ms`` / ``Retry-After`` is
honoured instead. The reply is read into an :class:`Answer` or one of the failures of
:mod:`harmtrace.llm.errors`, with the key redacted from any server message.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping

import aiohttp
from aiolimiter import AsyncLimiter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from harmtrace.llm.cache import Answer
from harmtrace.llm.errors import FormatRejected, LLMConfigError, RequestFailed, Transient
from harmtrace.llm.formats import FORMAT_WORDS
from harmtrace.llm.progress import RunStats
from harmtrace.llm.settings import EndpointSettings

log = logging.getLogger("harmtrace.llm")

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
"""Statuses worth retrying: rate limits, overload and transient server errors."""
FATAL_STATUS = frozenset({401, 403, 404})
"""Statuses that would fail every request: wrong key, no access, wrong URL or model."""
MAX_RETRY_AFTER = 300.0
"""Longest server-requested wait honoured, in seconds."""

_JSON = {"Content-Type": "application/json"}


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``Retry-After`` (seconds or HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def error_message(raw: bytes) -> str:
    """The server's error message (OpenAI's ``{"error": {"message": ...}}`` or the body)."""
    try:
        data = json.loads(raw)
        error = data.get("error") if isinstance(data, dict) else None
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)[:300]
    except ValueError:
        pass
    return raw[:300].decode("utf-8", "replace").strip() or "(empty body)"


def proxy_for(url: str) -> str | None:
    """The proxy the environment (``https_proxy``, ``no_proxy``, ...) names for ``url``."""
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


class Transport:
    """The HTTP side of one batch: its session, slots, limiter and backoff."""

    def __init__(
        self, settings: EndpointSettings, stats: RunStats, redact: Callable[[str], str]
    ) -> None:
        s = settings
        self.settings = s
        self.stats = stats
        self.redact = redact
        self.http: aiohttp.ClientSession | None = None
        self.url = s.base_url.rstrip("/") + "/chat/completions"
        self.proxy: str | None = None
        self.slots = asyncio.Semaphore(s.concurrency)
        self.limiter = AsyncLimiter(s.rps, 1.0) if s.rps else None
        self.answered = 0
        """HTTP responses received (of any status) in this batch."""
        # exponential backoff plus uniform jitter (a composition every tenacity has)
        self.backoff = wait_exponential(
            multiplier=s.backoff_initial, max=s.backoff_max
        ) + wait_random(0, s.backoff_initial)

    def open(self, http: aiohttp.ClientSession) -> None:
        """Use ``http``, and the proxy the environment names for the endpoint, from now on."""
        self.http = http
        self.proxy = proxy_for(self.url)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Transient) and exc.retry_after is not None:
            return min(exc.retry_after, MAX_RETRY_AFTER) + random.uniform(0, 0.05)
        return self.backoff(state)

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.debug("retry %d after %s", state.attempt_number, exc)

    async def send_with_retries(self, body: bytes, formatted: bool) -> tuple[Answer, int]:
        """(answer, HTTP requests sent); :class:`Transient` once retries run out."""
        s = self.settings
        attempts = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(s.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(Transient),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    return await self._send(body, formatted), attempts
        except Transient as exc:
            raise Transient(
                f"{exc} (gave up after {attempts} attempts)", unreachable=exc.unreachable
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, payload: bytes, formatted: bool) -> Answer:
        s = self.settings
        assert self.http is not None
        async with self.slots:
            if self.limiter is not None:
                await self.limiter.acquire()
            self.stats.requests += 1
            try:
                async with (
                    asyncio.timeout(s.timeout),
                    self.http.post(
                        self.url, data=payload, headers=_JSON, proxy=self.proxy
                    ) as response,
                ):
                    status, headers = response.status, response.headers
                    raw = await response.read()
            except TimeoutError:
                raise Transient(f"no answer within {s.timeout:g} s") from None
            except aiohttp.ClientConnectorError as exc:
                raise Transient(
                    f"connection error ({type(exc).__name__})", unreachable=True
                ) from None
            except aiohttp.ClientError as exc:
                raise Transient(f"connection error ({type(exc).__name__})") from None
        self.answered += 1
        return self._read(status, headers, raw, formatted)

    def _read(
        self, code: int, headers: Mapping[str, str], raw: bytes, formatted: bool = False
    ) -> Answer:
        if code == 200:
            try:
                data = json.loads(raw)
                choice = data["choices"][0]
                message = choice["message"]
            except (ValueError, KeyError, IndexError, TypeError):
                raise Transient("HTTP 200 with a body that is not a chat completion") from None
            refusal = message.get("refusal")
            content = message.get("content")
            if content is None and refusal:
                raise RequestFailed(f"the model refused: {str(refusal)[:200]}")
            usage = data.get("usage") or {}
            return Answer(
                content=content if isinstance(content, str) else json.dumps(content),
                finish_reason=choice.get("finish_reason"),
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
            )
        detail = self.redact(error_message(raw))
        if formatted and code not in FATAL_STATUS and FORMAT_WORDS.search(detail):
            raise FormatRejected(f"HTTP {code}: {detail}")
        if code in RETRY_STATUS or code >= 500:
            raise Transient(f"HTTP {code}: {detail}", parse_retry_after(headers))
        if code in FATAL_STATUS:
            s = self.settings
            hint = {
                401: f"check the key in ${s.api_key_env}" if s.api_key_env else "set api_key_env",
                403: "the key has no access to this model",
                404: "check base_url (it usually ends in /v1) and model",
            }[code]
            raise LLMConfigError(
                f"{s.base_url} answered HTTP {code} for model {s.model!r}: {detail} ({hint})"
            )
        raise RequestFailed(f"HTTP {code}: {detail}")
