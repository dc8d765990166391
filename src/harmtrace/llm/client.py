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

Memory stays bounded for any number of requests: requests are drawn lazily from the
iterable and at most ``window`` of them are alive at once; with ``on_result`` nothing is
kept per request.

Typical use (the same for grading, tree generation, or anything else)::

    from pydantic import BaseModel
    from harmtrace.llm import ChatRequest, ClientSettings, LLMClient

    class Verdict(BaseModel):
        label: Literal["yes", "no"]

    settings = ClientSettings(base_url="http://127.0.0.1:8000/v1", model="my-model",
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
from typing import Any, Generic, Literal, TypeVar

import aiohttp
from aiolimiter import AsyncLimiter
from pydantic import BaseModel, ConfigDict, Field
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
from harmtrace.llm.progress import Progress, ProgressMode, RunStats
from harmtrace.llm.replies import JsonReply, ReplyError, ReplyParser, reask_message

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


class ClientSettings(BaseModel):
    """Where to send requests and how; the grader's and the tree generator's config blocks
    map onto these fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(
        "https://api.openai.com/v1", description="OpenAI-compatible API root (ends in /v1)."
    )
    model: str = Field(..., min_length=1, description="Model name as the endpoint knows it.")
    api_key_env: str | None = Field(
        "OPENAI_API_KEY",
        description="Name of the environment variable holding the API key; null sends none.",
    )
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int = Field(512, ge=1, description="Most tokens per reply.")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling; null = server.")
    seed: int | None = Field(None, description="Sampling seed where the server supports one.")
    response_format: Literal["json_schema", "json_object", "none"] = Field(
        "json_schema",
        description="How JSON replies are requested: a strict JSON schema, any JSON object, "
        "or not at all (the prompt alone asks for JSON).",
    )
    concurrency: int = Field(8, ge=1, le=1024, description="Most requests in flight.")
    rps: float | None = Field(None, gt=0, description="Most requests per second; null = no cap.")
    timeout: float = Field(60.0, gt=0, description="Seconds before a request is abandoned.")
    max_retries: int = Field(5, ge=0, description="Retries per request on 429/5xx/timeouts.")
    max_reasks: int = Field(2, ge=0, description="Re-asks after an unusable reply.")
    backoff_initial: float = Field(1.0, ge=0, description="First backoff wait (s), doubling.")
    backoff_max: float = Field(60.0, ge=0, description="Longest backoff wait (s).")
    cache: str | None = Field(None, description="SQLite answer cache; null keeps nothing.")
    progress: ProgressMode = Field("auto", description="auto, bar, log or off.")
    progress_interval: float = Field(30.0, gt=0, description="Seconds between progress lines.")

    def sampling(self) -> dict[str, Any]:
        """The request parameters that change answers (and so belong in the cache key)."""
        out: dict[str, Any] = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        if self.top_p is not None:
            out["top_p"] = self.top_p
        if self.seed is not None:
            out["seed"] = self.seed
        return out


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
        settings: ClientSettings,
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
        self._window = 8 * settings.concurrency + 64

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
        self.http: aiohttp.ClientSession | None = None
        self.url = s.base_url.rstrip("/") + "/chat/completions"
        self.proxy: str | None = None
        self.slots = asyncio.Semaphore(s.concurrency)
        self.limiter = AsyncLimiter(s.rps, 1.0) if s.rps else None
        self.inflight: dict[str, asyncio.Future[Answer]] = {}
        self.answered = 0
        """HTTP responses received (of any status) in this batch."""
        self.sampling = s.sampling()
        self._formats: dict[int, tuple[str, str]] = {}
        self._parsers: list[ReplyParser] = []
        self._head = json.dumps({"model": s.model}, ensure_ascii=False)[:-1]
        # exponential backoff plus uniform jitter (a composition every tenacity has)
        self.backoff = wait_exponential(
            multiplier=s.backoff_initial, max=s.backoff_max
        ) + wait_random(0, s.backoff_initial)

    def _format(self, parser: ReplyParser) -> tuple[str, str]:
        """(canonical JSON of the answer-determining parameters, the request body's tail):
        computed once per parser, since a JSON schema is the largest part of a request."""
        cached = self._formats.get(id(parser))
        if cached is not None:
            return cached
        mode = self.settings.response_format
        params = dict(self.sampling)
        if parser.schema is not None and mode == "json_object":
            params["response_format"] = {"type": "json_object"}
        elif parser.schema is not None and mode == "json_schema":
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": parser.name, "schema": parser.schema, "strict": True},
            }
        tail = json.dumps(params, ensure_ascii=False)[1:-1]
        self._formats[id(parser)] = (canonical_json(params), tail)
        self._parsers.append(parser)  # keeps id(parser) from being reused in this batch
        return self._formats[id(parser)]

    async def one(self, request: ChatRequest) -> Result[Any]:
        parser = request.parser or self.parser
        fmt = self._format(parser)
        messages = [dict(m) for m in request.messages]
        result: Result[Any] = Result()
        reasks = self.settings.max_reasks if parser.reask else 0
        last: ReplyError | None = None
        truncated = False
        for turn in range(reasks + 1):
            try:
                answer, cached, attempts = await self._answer(messages, request.tag, fmt)
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

    async def _answer(
        self, messages: list[dict[str, Any]], tag: str, fmt: tuple[str, str]
    ) -> tuple[Answer, bool, int]:
        """(answer, from cache, HTTP requests sent) for one conversation turn."""
        s = self.settings
        params_json, tail = fmt
        messages_json = canonical_json(messages)
        key = key_from_parts(s.model, tag, messages_json, params_json)
        cache = self.client.cache
        hit = cache.get(key)
        if hit is not None:
            self._count_hit(hit)
            return hit, True, 0
        pending = self.inflight.get(key)
        if pending is not None:
            answer = await asyncio.shield(pending)
            self._count_hit(answer)
            return answer, True, 0
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.inflight[key] = future
        try:
            # the body reuses the canonical JSON: one serialisation per request
            body = f'{self._head}, "messages": {messages_json}, {tail}}}'.encode()
            answer, attempts = await self._send_with_retries(body)
            answer = cache.put(key, s.model, tag, digest_of(messages_json), answer)
            self.stats.prompt_tokens += answer.prompt_tokens
            self.stats.completion_tokens += answer.completion_tokens
            future.set_result(answer)
            return answer, False, attempts
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

    async def _send_with_retries(self, body: bytes) -> tuple[Answer, int]:
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
                    return await self._send(body), attempts
        except _Transient as exc:
            raise _Transient(
                f"{exc} (gave up after {attempts} attempts)", unreachable=exc.unreachable
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, payload: bytes) -> Answer:
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
        return self._read(status, headers, raw)

    def _read(self, code: int, headers: Mapping[str, str], raw: bytes) -> Answer:
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
    "ClientSettings",
    "LLMClient",
    "LLMConfigError",
    "Result",
    "parse_retry_after",
    "read_api_key",
]
