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

Steps 1 and 3 live in :mod:`harmtrace.llm.batch`, step 2 and the statuses of step 4 in
:mod:`harmtrace.llm.transport`, the key in :mod:`harmtrace.llm.keys`, step 5 in
:mod:`harmtrace.llm.formats`; this module runs the batch.

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
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel

import harmtrace
from harmtrace.llm.batch import BatchRun
from harmtrace.llm.cache import AnswerCache
from harmtrace.llm.errors import LLMConfigError
from harmtrace.llm.formats import Formats, forget_response_formats, with_schema_note
from harmtrace.llm.keys import read_api_key, redact_key
from harmtrace.llm.progress import Progress, RunStats
from harmtrace.llm.replies import JsonReply, ReplyParser
from harmtrace.llm.request import ChatRequest, Result
from harmtrace.llm.settings import EndpointSettings, RequestFormat
from harmtrace.llm.transport import parse_retry_after

log = logging.getLogger("harmtrace.llm")
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


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
        self.formats = Formats(settings)
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
        run = BatchRun(s, self.cache, self.formats, self.redact, stats, parser)
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
                run.transport.open(http)
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
        return redact_key(text, self._key)


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
    "with_schema_note",
]
