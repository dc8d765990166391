"""An async client for OpenAI-compatible chat endpoints, built to lose no work.

Method, per logical request (:class:`ChatRequest`):

1. The answer is looked up in the persistent cache (:mod:`harmtrace.llm.cache`) by a key
   over model, tag, messages and sampling parameters; an identical request already in
   flight is awaited rather than sent twice.
2. Otherwise one HTTP request is sent (aiohttp) once a concurrency slot
   (``asyncio.Semaphore``) and a rate-limiter token (aiolimiter) are free. 429, 408, 5xx,
   timeouts and connection errors are retried by tenacity with exponential backoff and
   jitter; a 429's ``retry-after-ms`` / ``Retry-After`` is honoured instead. Slots are
   released while waiting, so backoff never idles the pipe.
3. The answer is committed to the cache the moment it arrives, then parsed by the
   request's :class:`~harmtrace.llm.replies.ReplyParser` (JSON validated with pydantic,
   repaired with json-repair when needed). An unusable reply is re-asked up to
   ``max_reasks`` times in the same conversation, with the reason; after that, or when
   retries run out, the request ends as a :class:`Result` with ``error`` set. Requests in
   = results out, in order.
4. 401/403/404 abort the whole batch (a wrong key, URL or model fails every request), with
   a :class:`LLMConfigError` that names the setting to fix. The key itself is read from
   the environment variable named in the settings, sent only in the Authorization
   header, and redacted from any server message that is logged or stored.
5. ``response_format: auto`` first asks for a strict JSON schema. A server that answers
   that with an error naming the response format (llama.cpp: HTTP 500; others: 400 "...
   not supported") is detected on one request, not retried: the client falls back to
   ``json_object`` (llama.cpp's ``{"type": "json_object", "schema": ...}``, the schema
   also written into the prompt), then to the prompt alone, and every later request to
   that endpoint and model uses the first mode that worked. Until a mode has worked, one
   request at a time probes, so a rejecting server sees exactly one rejected request per
   mode. Each :class:`Result` says which mode produced it (``response_format``). A server
   that accepts a schema but ignores it is caught by validation, repair and re-asks.

Memory stays bounded for any number of requests: requests are drawn lazily from the
iterable and at most ``window`` of them are alive at once; with ``on_result`` nothing is
kept per request.

Typical use (the same for grading, tree generation, or anything else)::

    from pydantic import BaseModel
    from harmtrace.llm import ChatRequest, EndpointSettings, LLMClient

    class Verdict(BaseModel):
        label: Literal["yes", "no"]

    settings = EndpointSettings(base_url="http://127.0.0.1:8000/v1", model="my-model",
                                api_key_env=None, cache="results/cache/llm.sqlite")
    requests = [ChatRequest([{"role": "user", "content": q}], tag="verdict-v1") for q in qs]
    with LLMClient(settings) as client:
        results = client.complete_json(requests, Verdict)
    for r in results:
        print(r.value.label if r.ok else r.error)
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import aiohttp
from aiolimiter import AsyncLimiter
from pydantic import BaseModel
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

import harmtrace
from harmtrace.errors import HarmtraceError
from harmtrace.llm.cache import Answer, AnswerCache, canonical_json, digest_of, key_from_parts
from harmtrace.llm.progress import Progress, RunStats
from harmtrace.llm.replies import JsonReply, ReplyError, ReplyParser, reask_message
from harmtrace.llm.settings import FALLBACK, EndpointSettings, RequestFormat

log = logging.getLogger("harmtrace.llm")
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
"""Statuses worth retrying: rate limits, overload and transient server errors."""
FATAL_STATUS = frozenset({401, 403, 404})
"""Statuses that would fail every request: wrong key, no access, wrong URL or model."""
MAX_RETRY_AFTER = 300.0
"""Longest server-requested wait honoured, in seconds."""


class LLMConfigError(HarmtraceError):
    """The endpoint, model or key is wrong or missing; nothing can be graded until fixed."""


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


class _Transient(Exception):
    """A failure worth retrying; ``retry_after`` is the server's requested wait, if any;
    ``unreachable`` when no connection could be made at all."""

    def __init__(
        self, reason: str, retry_after: float | None = None, unreachable: bool = False
    ) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.unreachable = unreachable


class _RequestFailed(Exception):
    """This request cannot succeed (e.g. HTTP 400); the batch goes on."""


class _FormatRejected(Exception):
    """The server refused the request's ``response_format``: not worth a retry, since the
    same body would be refused again; the client changes the format instead."""


_FORMAT_WORDS = re.compile(
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


class _Formats:
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


_KEYLIKE = re.compile(r"\b(sk|key|tok)-[A-Za-z0-9_*.\-]{6,}")


def read_api_key(env_name: str | None) -> str | None:
    """The key from the named environment variable; a clear error when it is unset."""
    if env_name is None:
        return None
    key = os.environ.get(env_name, "")
    if not key.strip():
        raise LLMConfigError(
            f"the API key variable {env_name} is not set: export {env_name}=<your key> "
            "(or set api_key_env to the variable that holds it, or to null for a server "
            "that needs no key); the key is read from the environment only"
        )
    return key.strip()


class LLMClient:
    """Chat completions against one endpoint and model; see the module docstring.

    Use as a context manager (or call :meth:`close`) so the cache file is closed.
    :meth:`complete` / :meth:`complete_json` run a batch to completion from synchronous
    code; :meth:`acomplete` / :meth:`acomplete_json` are the same inside an event loop.
    """

    def __init__(
        self,
        settings: EndpointSettings,
        *,
        api_key: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._key = api_key if api_key is not None else read_api_key(settings.api_key_env)
        self._clock = clock
        self.cache = AnswerCache(settings.cache)
        self.stats = RunStats()
        """Totals over every batch this client ran."""
        self.last_run = RunStats()
        self.formats = _Formats(settings)
        self._window = 8 * settings.concurrency + 64

    @property
    def response_format(self) -> RequestFormat:
        """The format JSON requests use now (``auto`` resolved as far as it has got)."""
        return self.formats.mode

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        self.cache.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ public API
    def complete(
        self,
        requests: Iterable[ChatRequest],
        parser: ReplyParser,
        *,
        on_result: Callable[[int, Result[Any]], None] | None = None,
        total: int | None = None,
        desc: str = "llm",
    ) -> list[Result[Any]]:
        """Run a batch from synchronous code; see :meth:`acomplete`."""
        return _run_sync(
            self.acomplete(requests, parser, on_result=on_result, total=total, desc=desc)
        )

    def complete_json(
        self,
        requests: Iterable[ChatRequest],
        schema: type[M],
        validator: Callable[[M], None] | None = None,
        *,
        on_result: Callable[[int, Result[M]], None] | None = None,
        total: int | None = None,
        desc: str = "llm",
    ) -> list[Result[M]]:
        """Replies validated as ``schema`` (a pydantic model), then by ``validator``
        (raise ``ValueError`` to reject; the message is fed back in a re-ask)."""
        return self.complete(
            requests, JsonReply(schema, validator), on_result=on_result, total=total, desc=desc
        )

    async def acomplete_json(
        self,
        requests: Iterable[ChatRequest],
        schema: type[M],
        validator: Callable[[M], None] | None = None,
        **kwargs: Any,
    ) -> list[Result[M]]:
        return await self.acomplete(requests, JsonReply(schema, validator), **kwargs)

    async def acomplete(
        self,
        requests: Iterable[ChatRequest],
        parser: ReplyParser,
        *,
        on_result: Callable[[int, Result[Any]], None] | None = None,
        total: int | None = None,
        desc: str = "llm",
    ) -> list[Result[Any]]:
        """One :class:`Result` per request, in request order.

        With ``on_result(index, result)`` each result is handed over as it finishes (in
        any order) and the returned list is empty, so memory does not grow with the
        batch. ``total`` sizes the progress bar when ``requests`` has no ``len``.
        """
        s = self.settings
        if total is None and hasattr(requests, "__len__"):
            total = len(requests)  # type: ignore[arg-type]
        stats = RunStats()
        self.last_run = stats
        progress = Progress(total, stats, s.progress, s.progress_interval, desc, self._clock)
        keep: dict[int, Result[Any]] = {}
        run = _Run(self, stats, parser)
        started = self._clock()
        window = asyncio.Semaphore(self._window)
        broken: list[Exception] = []

        def finished(index: int, task: asyncio.Task[Result[Any]]) -> None:
            window.release()
            if task.cancelled() or task.exception() is not None:
                return
            result = task.result()
            stats.records += 1
            if not result.ok:
                stats.failures += 1
                reason = (result.error or "")[:80]
                stats.errors[reason] = stats.errors.get(reason, 0) + 1
            progress.update()
            if on_result is None:
                keep[index] = result
                return
            try:
                on_result(index, result)
            except Exception as exc:  # a callback error must stop the batch, not vanish
                broken.append(exc)

        headers = {"User-Agent": f"harmtrace/{harmtrace.__version__}"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        # aiohttp rather than httpx: measured here, httpx spends 2-4 ms of CPU per request
        # (growing with the number of pooled connections), aiohttp 0.3-0.5 ms
        connector = aiohttp.TCPConnector(limit=s.concurrency, limit_per_host=0)
        try:
            # trust_env=False: aiohttp would then look up netrc and proxies in a thread on
            # every request; the proxy from the environment is resolved once instead
            async with aiohttp.ClientSession(headers=headers, connector=connector) as http:
                run.http = http
                run.proxy = _proxy_for(run.url)
                async with asyncio.TaskGroup() as group:
                    for index, request in enumerate(requests):
                        await window.acquire()
                        if broken:
                            break
                        task = group.create_task(run.one(request))
                        task.add_done_callback(lambda t, i=index: finished(i, t))
        except BaseExceptionGroup as group_error:
            raise _first_leaf(group_error) from None
        finally:
            stats.seconds = self._clock() - started
            progress.close()
            self.stats.add(stats)
            log.info("%s: %s", desc, stats.summary())
        if broken:
            raise broken[0]
        return [keep[i] for i in range(len(keep))]

    # ------------------------------------------------------------------ internals
    def redact(self, text: str) -> str:
        """``text`` without the API key or anything shaped like one."""
        if self._key:
            text = text.replace(self._key, "***")
        return _KEYLIKE.sub(lambda m: f"{m.group(1)}-***", text)


class _Run:
    """State of one batch: the HTTP client, semaphore, limiter and in-flight requests."""

    def __init__(self, client: LLMClient, stats: RunStats, parser: ReplyParser) -> None:
        s = client.settings
        self.client = client
        self.settings = s
        self.stats = stats
        self.parser = parser
        self.formats = client.formats
        self.http: aiohttp.ClientSession | None = None
        self.url = s.base_url.rstrip("/") + "/chat/completions"
        self.proxy: str | None = None
        self.slots = asyncio.Semaphore(s.concurrency)
        self.limiter = AsyncLimiter(s.rps, 1.0) if s.rps else None
        self.probe = asyncio.Lock()
        """Held by the one request that tries an unconfirmed response format."""
        self.inflight: dict[str, asyncio.Future[Answer]] = {}
        self.answered = 0
        """HTTP responses received (of any status) in this batch."""
        self.sampling = s.sampling()
        self._formats: dict[tuple[int, str], tuple[str, str]] = {}
        self._parsers: list[ReplyParser] = []
        self._head = json.dumps({"model": s.model}, ensure_ascii=False)[:-1]
        # exponential backoff plus uniform jitter (a composition every tenacity has)
        self.backoff = wait_exponential(
            multiplier=s.backoff_initial, max=s.backoff_max
        ) + wait_random(0, s.backoff_initial)

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

    async def one(self, request: ChatRequest) -> Result[Any]:
        parser = request.parser or self.parser
        messages = [dict(m) for m in request.messages]
        result: Result[Any] = Result()
        reasks = self.settings.max_reasks if parser.reask else 0
        last: ReplyError | None = None
        truncated = False
        for turn in range(reasks + 1):
            try:
                answer, cached, attempts, mode = await self._answer(messages, request.tag, parser)
            except (_Transient, _RequestFailed) as exc:
                if getattr(exc, "unreachable", False) and not self.answered:
                    # nothing has ever answered: a wrong base_url would fail every record
                    raise LLMConfigError(
                        f"cannot reach {self.settings.base_url}: {exc}; check base_url and "
                        "that the server is running"
                    ) from None
                result.cached = False
                result.error = self.client.redact(str(exc))
                return result
            result.cached &= cached
            result.attempts += attempts
            result.prompt_tokens += answer.prompt_tokens
            result.completion_tokens += answer.completion_tokens
            result.content = answer.content
            result.finish_reason = answer.finish_reason
            result.response_format = mode
            truncated = answer.finish_reason == "length"
            try:
                result.value = parser.parse(answer.content)
                if getattr(parser, "last_repaired", False):
                    self.stats.repaired += 1
                return result
            except ReplyError as exc:
                last = exc
                if turn < reasks:
                    result.reasks += 1
                    self.stats.reasks += 1
                    messages = [
                        *messages,
                        {"role": "assistant", "content": answer.content},
                        reask_message(exc),
                    ]
        cut = " (the last reply was cut off at max_tokens)" if truncated else ""
        result.error = f"unusable reply after {reasks + 1} tries{cut}: {last}"
        return result

    def _key(
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

    async def _answer(
        self, messages: list[dict[str, Any]], tag: str, parser: ReplyParser
    ) -> tuple[Answer, bool, int, RequestFormat]:
        """(answer, from cache, HTTP requests sent, the format used) for one turn.

        Loops only when the response format changes under it: a rejection (this request's
        or another's) means the turn is asked again in the next format."""
        formats = self.formats
        cache = self.client.cache
        attempts = 0
        while True:
            mode: RequestFormat = formats.mode if parser.schema is not None else "none"
            probing = parser.schema is not None and not formats.confirmed
            key, messages_json, tail = self._key(messages, tag, parser, mode)
            hit = cache.get(key)
            if hit is None and probing:
                # an earlier run may have fallen back already: its answers are in the cache
                for later in FALLBACK[FALLBACK.index(mode) + 1 :]:
                    hit = cache.get(self._key(messages, tag, parser, later)[0])
                    if hit is not None:
                        mode = later
                        break
            if hit is not None and probing:
                formats.adopt(mode)  # answers exist in this mode: no need to probe again
            if hit is not None:
                self._count_hit(hit)
                return hit, True, attempts, mode
            pending = self.inflight.get(key)
            if pending is not None:
                try:
                    answer = await asyncio.shield(pending)
                except _FormatRejected:
                    continue  # the request it waited for was refused: ask in the new format
                self._count_hit(answer)
                return answer, True, attempts, mode
            try:
                if probing:
                    async with self.probe:
                        if formats.confirmed or formats.mode != mode:
                            continue  # the probe before this one settled it
                        answer, sent = await self._fetch(key, tag, messages_json, tail, mode)
                        formats.confirm(mode)
                else:
                    answer, sent = await self._fetch(key, tag, messages_json, tail, mode)
            except _FormatRejected as exc:
                attempts += 1
                formats.reject(mode, str(exc))
                continue
            except _RequestFailed:
                if probing:  # the server read the format and objected to something else
                    formats.confirm(mode)
                raise
            return answer, False, attempts + sent, mode

    async def _fetch(
        self, key: str, tag: str, messages_json: str, tail: str, mode: RequestFormat
    ) -> tuple[Answer, int]:
        """Send one conversation (retrying transient failures), store and return its answer;
        identical requests arriving meanwhile wait for this one."""
        s = self.settings
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.inflight[key] = future
        try:
            # the body reuses the canonical JSON: one serialisation per request
            body = f'{self._head}, "messages": {messages_json}, {tail}}}'.encode()
            answer, attempts = await self._send_with_retries(body, mode != "none")
            answer = self.client.cache.put(key, s.model, tag, digest_of(messages_json), answer)
            self.stats.prompt_tokens += answer.prompt_tokens
            self.stats.completion_tokens += answer.completion_tokens
            future.set_result(answer)
            return answer, attempts
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            del self.inflight[key]

    def _count_hit(self, answer: Answer) -> None:
        self.stats.cache_hits += 1
        self.stats.cached_tokens += answer.prompt_tokens + answer.completion_tokens

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return min(exc.retry_after, MAX_RETRY_AFTER) + random.uniform(0, 0.05)
        return self.backoff(state)

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.debug("retry %d after %s", state.attempt_number, exc)

    async def _send_with_retries(self, body: bytes, formatted: bool) -> tuple[Answer, int]:
        s = self.settings
        attempts = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(s.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(_Transient),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    return await self._send(body, formatted), attempts
        except _Transient as exc:
            raise _Transient(
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
                raise _Transient(f"no answer within {s.timeout:g} s") from None
            except aiohttp.ClientConnectorError as exc:
                raise _Transient(
                    f"connection error ({type(exc).__name__})", unreachable=True
                ) from None
            except aiohttp.ClientError as exc:
                raise _Transient(f"connection error ({type(exc).__name__})") from None
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
                raise _Transient("HTTP 200 with a body that is not a chat completion") from None
            refusal = message.get("refusal")
            content = message.get("content")
            if content is None and refusal:
                raise _RequestFailed(f"the model refused: {str(refusal)[:200]}")
            usage = data.get("usage") or {}
            return Answer(
                content=content if isinstance(content, str) else json.dumps(content),
                finish_reason=choice.get("finish_reason"),
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
            )
        detail = self.client.redact(_error_message(raw))
        if formatted and code not in FATAL_STATUS and _FORMAT_WORDS.search(detail):
            raise _FormatRejected(f"HTTP {code}: {detail}")
        if code in RETRY_STATUS or code >= 500:
            raise _Transient(f"HTTP {code}: {detail}", parse_retry_after(headers))
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
        raise _RequestFailed(f"HTTP {code}: {detail}")


_JSON = {"Content-Type": "application/json"}


def _error_message(raw: bytes) -> str:
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


def _proxy_for(url: str) -> str | None:
    """The proxy the environment (``https_proxy``, ``no_proxy``, ...) names for ``url``."""
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _first_leaf(error: BaseException) -> BaseException:
    """The first non-group exception inside (nested) exception groups."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def _run_sync(coro: Awaitable[T]) -> T:
    """Run ``coro`` to completion from synchronous code, also when the calling thread
    already runs an event loop (a notebook): then it runs in a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)  # type: ignore[arg-type]
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


__all__ = [
    "ChatRequest",
    "EndpointSettings",
    "LLMClient",
    "LLMConfigError",
    "Result",
    "forget_response_formats",
    "parse_retry_after",
    "read_api_key",
]
