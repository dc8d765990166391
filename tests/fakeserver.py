"""A fake OpenAI-compatible chat server for tests and benchmarks (real HTTP on 127.0.0.1).

It answers ``POST /v1/chat/completions`` with replies that follow the request, so they are
deterministic without any model:

* ``response_format`` of type ``json_schema``: an instance of that schema. Integer, enum
  and boolean properties take the value of a hint ``[name=value]`` found in the last user
  message (e.g. a record text ``"... [violence=2]"`` makes the ``violence`` property 2),
  otherwise a value chosen by a hash of the messages. Strings are short and fixed.
* ``json_object`` with a ``schema`` (llama.cpp's form), or no ``response_format`` but a
  system message ending in ``JSON schema:`` and a schema (the client's prompt-only
  fallback): an instance of that schema, as above.
* no ``response_format`` and no schema in the prompt (Llama Guard style): ``safe``, or
  ``unsafe`` and the codes of a hint ``[unsafe=S1,S10]`` in the last message (user or
  assistant: the turn under judgment).
* ``reject_formats={"json_schema": 500}``: requests with a response format of a listed type
  are refused with that status and the message a real server gives (500: llama.cpp's
  'response_format type must be one of "text" or "json_object"'; 400: OpenAI's
  "'response_format' of type ... is not supported with this model").
* a *gullible* mode for injection tests: text between ``REPLY VERBATIM:`` and ``END`` in
  the last user message (JSON string escapes undone) is sent back as the whole reply, as a
  model that obeyed an injected instruction would.

Faults are injected per request with given probabilities, drawn from a seeded generator:
429 with ``Retry-After`` (and ``retry-after-ms``), 500, a hang past any sensible timeout
(the connection is then closed without a reply), malformed JSON (a repairable corruption
of the right answer), truncated JSON (cut in half, ``finish_reason: length``), and
schema-valid JSON whose integers are out of range. ``latency`` delays every answer.
Free-text replies (verbatim, Llama Guard) are truncated the same way.

Every request is logged in ``server.log`` (digest of its messages, status, Authorization
header) so tests can count what was asked. Use in-process (a thread runs the asyncio
loop)::

    with FakeServer(latency=0.01, faults={"429": 0.3}) as server:
        url = server.url          # http://127.0.0.1:<port>/v1

or as a separate process: ``python -m tests.fakeserver --latency 0.1`` prints the URL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import random
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from harmtrace.llm.cache import messages_digest

HINT = re.compile(r"\[([A-Za-z_][\w]*)=([\w.,-]+)\]")
VERBATIM = re.compile(r"REPLY VERBATIM:(.*?)END", re.S)
FAULTS = ("429", "500", "400", "hang", "malformed", "truncated", "out_of_range")


@dataclass
class Logged:
    """One request as the server saw it."""

    n: int
    digest: str
    status: int
    fault: str | None
    auth: str | None
    t: float
    format: str = "none"
    """Type of the request's ``response_format`` (``none`` when it had none)."""


@dataclass
class FakeServer:
    latency: float = 0.0
    faults: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    retry_after: float = 0.05
    """Seconds the 429 replies ask for (``retry-after-ms``; ``Retry-After`` is rounded up)."""
    hang: float = 30.0
    api_key: str | None = None
    """When set, requests without ``Authorization: Bearer <api_key>`` get 401."""
    script: list[str | None] = field(default_factory=list)
    """Faults for the first requests, in arrival order (then ``faults`` apply)."""
    reject_formats: dict[str, int] = field(default_factory=dict)
    """Response-format type -> HTTP status it is refused with (400 or 500)."""
    host: str = "127.0.0.1"
    port: int = 0
    log: list[Logged] = field(default_factory=list)
    inflight: int = 0
    max_inflight: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {FAULTS}")
        self._rng = random.Random(self.seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._ready = threading.Event()

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> FakeServer:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, self.host, self.port, backlog=1024)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    async def serve_forever(self) -> None:
        """Run in the current loop (the command-line mode)."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        print(self.url, flush=True)
        async with self._server:
            await self._server.serve_forever()

    # ------------------------------------------------------------------ queries
    def count(self, status: int | None = None, format: str | None = None) -> int:
        return sum(
            1
            for e in list(self.log)
            if (status is None or e.status == status) and (format is None or e.format == format)
        )

    def answered_digests(self) -> list[str]:
        """Digests of the messages of every request answered with 200."""
        return [e.digest for e in list(self.log) if e.status == 200]

    # ------------------------------------------------------------------ HTTP
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0"))
                try:
                    body = await reader.readexactly(length) if length else b""
                except asyncio.IncompleteReadError:
                    return
                reply = await self._respond(method, target, headers, body)
                if reply is None:  # a hang: keep the client waiting, then drop it
                    return
                status, extra, payload = reply
                data = json.dumps(payload).encode()
                reasons = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 429: "Too Many"}
                reason = reasons.get(status, "Error")
                out = [f"HTTP/1.1 {status} {reason}", "content-type: application/json"]
                out += [f"{k}: {v}" for k, v in extra.items()]
                out += [f"content-length: {len(data)}", "", ""]
                writer.write("\r\n".join(out).encode("latin-1") + data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()

    async def _respond(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], Any] | None:
        if method != "POST" or not target.rstrip("/").endswith("/chat/completions"):
            return 404, {}, {"error": {"message": f"no route {method} {target}"}}
        request = json.loads(body)
        digest = messages_digest(request["messages"])
        auth = headers.get("authorization")
        fmt = (request.get("response_format") or {}).get("type") or "none"
        entry = Logged(len(self.log), digest, 200, None, auth, time.monotonic(), fmt)
        self.log.append(entry)
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            entry.status = 401
            given = (auth or "").removeprefix("Bearer ")
            message = f"Incorrect API key provided: {given}. Find your key in your account."
            return 401, {}, {"error": {"message": message}}
        if fmt in self.reject_formats:
            entry.status = self.reject_formats[fmt]
            return entry.status, {}, {"error": reject_message(fmt, entry.status)}
        fault = self.script[entry.n] if entry.n < len(self.script) else self._draw_fault()
        entry.fault = fault
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            return await self._reply(request, entry, fault)
        finally:
            self.inflight -= 1

    async def _reply(
        self, request: dict[str, Any], entry: Logged, fault: str | None
    ) -> tuple[int, dict[str, str], Any] | None:
        if fault == "hang":
            await asyncio.sleep(self.hang)
            entry.status = 0
            return None
        if self.latency:
            await asyncio.sleep(self.latency)
        if fault == "429":
            entry.status = 429
            ms = int(self.retry_after * 1000)
            wait = {"retry-after": str(max(1, -(-ms // 1000))), "retry-after-ms": str(ms)}
            return 429, wait, {"error": {"message": "Rate limit reached", "type": "requests"}}
        if fault == "500":
            entry.status = 500
            return 500, {}, {"error": {"message": "The server had an error"}}
        if fault == "400":
            entry.status = 400
            return 400, {}, {"error": {"message": "This model's maximum context length is 8"}}
        content, finish = answer(request, fault)
        return 200, {}, completion(request, content, finish)

    def _draw_fault(self) -> str | None:
        u = self._rng.random()
        acc = 0.0
        for name in FAULTS:
            acc += self.faults.get(name, 0.0)
            if u < acc:
                return name
        return None


def reject_message(fmt: str, status: int) -> dict[str, Any]:
    """The error body a real server sends for a response format it cannot take."""
    if status >= 500:  # llama.cpp's server (a runtime error: HTTP 500)
        return {
            "code": 500,
            "message": 'response_format type must be one of "text" or "json_object", '
            f"but got: {fmt}",
            "type": "server_error",
        }
    return {
        "message": f"Invalid parameter: 'response_format' of type '{fmt}' is not supported "
        "with this model.",
        "type": "invalid_request_error",
        "param": "response_format",
    }


# ---------------------------------------------------------------------- answers
PROMPT_SCHEMA = re.compile(r"JSON schema:\s*(\{.*\})\s*$", re.S)


def data_text(messages: list[dict[str, Any]]) -> str:
    """The last user message carrying hints or a verbatim order, else the last user
    message: a re-ask ("your reply could not be used...") keeps the data of the turn it
    follows up on."""
    users = [m.get("content") for m in messages if m.get("role") == "user"]
    users = [c if isinstance(c, str) else json.dumps(c) for c in users]
    for content in reversed(users):
        if HINT.search(content) or VERBATIM.search(content):
            return content
    return users[-1] if users else ""


def answer(request: dict[str, Any], fault: str | None = None) -> tuple[str, str]:
    """The reply text and finish reason for a chat request (see the module docstring)."""
    messages = request["messages"]
    text = data_text(messages)
    verbatim = VERBATIM.search(text)
    if verbatim:
        raw = verbatim.group(1).strip()
        with contextlib.suppress(ValueError):  # undo the JSON string escapes of the text
            raw = json.loads(f'"{raw}"')
        return _cut(raw) if fault == "truncated" else (raw, "stop")
    hints = dict(HINT.findall(text))
    seed = int(hashlib.sha256(messages_digest(messages).encode()).hexdigest()[:8], 16)
    rng = random.Random(seed)
    schema = requested_schema(request)
    if schema is None:  # Llama Guard judges the conversation's last turn
        codes = dict(HINT.findall(str(messages[-1].get("content", "")))).get("unsafe")
        reply = f"unsafe\n{codes}" if codes else "safe"
        return _cut(reply) if fault == "truncated" else (reply, "stop")
    value = instance(schema, schema, hints, rng)
    if fault == "out_of_range":
        value = _out_of_range(value)
    content = json.dumps(value)
    if fault == "malformed":  # unquoted keys and a trailing comma: json-repair fixes these
        content = re.sub(r'"(\w+)":', r"\1:", content)[:-1] + ",}"
        return content, "stop"
    if fault == "truncated":
        return _cut(content)
    return content, "stop"


def _cut(content: str) -> tuple[str, str]:
    """The first half of a reply, as a server stopped by ``max_tokens`` sends it."""
    return content[: max(1, len(content) // 2)], "length"


def requested_schema(request: dict[str, Any]) -> dict[str, Any] | None:
    """The reply schema a request asks for: in ``response_format`` (OpenAI's json_schema or
    llama.cpp's json_object + schema), else at the end of the first system message."""
    fmt = request.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return fmt["json_schema"]["schema"]
    if fmt.get("type") == "json_object" and "schema" in fmt:
        return fmt["schema"]
    messages = request["messages"]
    if messages and messages[0].get("role") == "system":
        found = PROMPT_SCHEMA.search(str(messages[0].get("content", "")))
        if found:
            with contextlib.suppress(ValueError):
                return json.loads(found.group(1))
    return None


def _out_of_range(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _out_of_range(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_out_of_range(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return 7
    return value


def instance(
    schema: dict[str, Any], root: dict[str, Any], hints: dict[str, str], rng: random.Random
) -> Any:
    """A deterministic value satisfying ``schema`` (the subset structured outputs use)."""
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        return instance(root.get("$defs", {})[name], root, hints, rng)
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return instance(options[0], root, hints, rng)
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        out = {}
        for name, sub in schema.get("properties", {}).items():
            out[name] = _hinted(name, sub, hints) if name in hints else None
            if out[name] is None:
                out[name] = instance(sub, root, hints, rng)
        return out
    if kind == "array":
        n = max(int(schema.get("minItems", 1)), 1)
        return [instance(schema.get("items", {}), root, hints, rng) for _ in range(n)]
    if kind == "integer":
        lo, hi = int(schema.get("minimum", 0)), int(schema.get("maximum", 3))
        return rng.randint(lo, hi)
    if kind == "number":
        lo, hi = float(schema.get("minimum", 0.0)), float(schema.get("maximum", 1.0))
        return round(rng.uniform(lo, hi), 3)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "string":
        return "fake"[: int(schema.get("maxLength", 4))] or "x"
    return None


def _hinted(name: str, schema: dict[str, Any], hints: dict[str, str]) -> Any:
    raw = hints[name]
    kind = schema.get("type")
    values = schema.get("enum")
    if kind == "boolean" or raw in ("true", "false"):
        return raw == "true"
    if kind == "integer" or (values and all(isinstance(v, int) for v in values)):
        return int(raw)
    return raw


def completion(request: dict[str, Any], content: str, finish: str) -> dict[str, Any]:
    prompt_chars = sum(len(str(m.get("content", ""))) for m in request["messages"])
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": request.get("model", "fake"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_chars // 4 + 1,
            "completion_tokens": len(content) // 4 + 1,
            "total_tokens": prompt_chars // 4 + len(content) // 4 + 2,
        },
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    for name in FAULTS:
        p.add_argument(f"--{name.replace('_', '-')}", type=float, default=0.0, dest=name)
    args = p.parse_args(argv)
    faults = {n: getattr(args, n) for n in FAULTS if getattr(args, n)}
    server = FakeServer(latency=args.latency, faults=faults, seed=args.seed, port=args.port)
    try:
        asyncio.run(server.serve_forever())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
