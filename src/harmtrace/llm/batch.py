"""One logical request through cache, de-duplication, format probing and re-asks.

Per :class:`ChatRequest` a turn is answered from the cache when it can be, by awaiting an
identical request already in flight, or by sending it (committing the answer to the cache
the moment it arrives). While ``auto`` has not yet found a response format that works,
one request at a time probes, under a lock, so a rejecting server sees one rejected
request per mode. The reply is parsed; an unusable one is re-asked in the same
conversation, with the reason, up to ``max_reasks`` times.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from harmtrace.llm.bodies import RequestBuilder
from harmtrace.llm.cache import Answer, AnswerCache, digest_of
from harmtrace.llm.errors import FormatRejected, LLMConfigError, RequestFailed, Transient
from harmtrace.llm.formats import Formats
from harmtrace.llm.progress import RunStats
from harmtrace.llm.replies import ReplyError, ReplyParser, reask_message
from harmtrace.llm.request import ChatRequest, Result
from harmtrace.llm.settings import FALLBACK, EndpointSettings, RequestFormat
from harmtrace.llm.transport import Transport


class BatchRun:
    """State of one batch: the transport, the probe lock and the requests in flight."""

    def __init__(
        self,
        settings: EndpointSettings,
        cache: AnswerCache,
        formats: Formats,
        redact: Callable[[str], str],
        stats: RunStats,
        parser: ReplyParser,
    ) -> None:
        s = settings
        self.settings = s
        self.cache = cache
        self.redact = redact
        self.stats = stats
        self.parser = parser
        self.formats = formats
        self.transport = Transport(s, stats, redact)
        self.probe = asyncio.Lock()
        """Held by the one request that tries an unconfirmed response format."""
        self.inflight: dict[str, asyncio.Future[Answer]] = {}
        self.builder = RequestBuilder(s)

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
            except (Transient, RequestFailed) as exc:
                if getattr(exc, "unreachable", False) and not self.transport.answered:
                    # nothing has ever answered: a wrong base_url would fail every record
                    raise LLMConfigError(
                        f"cannot reach {self.settings.base_url}: {exc}; check base_url and "
                        "that the server is running"
                    ) from None
                result.cached = False
                result.error = self.redact(str(exc))
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

    async def _answer(
        self, messages: list[dict[str, Any]], tag: str, parser: ReplyParser
    ) -> tuple[Answer, bool, int, RequestFormat]:
        """(answer, from cache, HTTP requests sent, the format used) for one turn.

        Loops only when the response format changes under it: a rejection (this request's
        or another's) means the turn is asked again in the next format."""
        formats = self.formats
        cache = self.cache
        attempts = 0
        while True:
            mode: RequestFormat = formats.mode if parser.schema is not None else "none"
            probing = parser.schema is not None and not formats.confirmed
            key, messages_json, tail = self.builder.key(messages, tag, parser, mode)
            hit = cache.get(key)
            if hit is None and probing:
                # an earlier run may have fallen back already: its answers are in the cache
                for later in FALLBACK[FALLBACK.index(mode) + 1 :]:
                    hit = cache.get(self.builder.key(messages, tag, parser, later)[0])
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
                except FormatRejected:
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
            except FormatRejected as exc:
                attempts += 1
                formats.reject(mode, str(exc))
                continue
            except RequestFailed:
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
            body = self.builder.body(messages_json, tail)
            answer, attempts = await self.transport.send_with_retries(body, mode != "none")
            answer = self.cache.put(key, s.model, tag, digest_of(messages_json), answer)
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
