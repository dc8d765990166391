"""A persistent answer cache for chat requests: SQLite in WAL mode, one row per answer.

Method: the key is the sha256 of the canonical JSON of everything that determines an
answer -- the model, a caller-supplied tag (e.g. the prompt template's hash), the exact
messages and the sampling parameters (temperature, max tokens, top_p, seed, the response
format). The endpoint URL and the API key are deliberately not part of it: the same model
served elsewhere gives the same answers, and the key must never be stored.

Each answer is committed as soon as it arrives (``synchronous=NORMAL`` in WAL mode: a
committed row survives the process being killed, only an OS crash can lose the last
few), so a killed run that restarts asks again only for what never arrived. WAL lets any
number of readers and one writer at a time share the file across processes; writers wait
for each other through ``busy_timeout``, so parallel grading shards can share one cache on
one machine. (WAL needs shared memory: put the file on a local disk, not on NFS.)
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

CACHE_FORMAT = 1
"""Bumped when the key derivation or the table layout changes (old rows then never match)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    tag TEXT NOT NULL,
    messages_sha256 TEXT NOT NULL,
    content TEXT NOT NULL,
    finish_reason TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER
) WITHOUT ROWID
"""


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, unicode kept: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def messages_digest(messages: Any) -> str:
    """sha256 of the canonical JSON of a message list (what a server can recompute)."""
    return hashlib.sha256(canonical_json(messages).encode()).hexdigest()


def digest_of(messages_json: str) -> str:
    """:func:`messages_digest` from already canonical JSON."""
    return hashlib.sha256(messages_json.encode()).hexdigest()


def cache_key(model: str, tag: str, messages: Any, params: dict[str, Any]) -> str:
    """The answer's identity: model, tag, messages and sampling parameters (not URL/key)."""
    return key_from_parts(model, tag, canonical_json(messages), canonical_json(params))


def key_from_parts(model: str, tag: str, messages_json: str, params_json: str) -> str:
    """:func:`cache_key` from the canonical JSON of messages and parameters, which the
    client computes once (the parameters once per batch) and reuses for the request body."""
    head = canonical_json([CACHE_FORMAT, model, tag, params_json])
    return hashlib.sha256(f"{head}\n{messages_json}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Answer:
    """What a server said (the content of the first choice) and what it cost."""

    content: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


class AnswerCache:
    """``get(key)`` / ``put(key, ...)`` over one SQLite file; ``path=None`` keeps nothing."""

    def __init__(self, path: str | Path | None, busy_timeout_s: float = 120.0) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            target = str(self.path)
        else:
            target = ":memory:"
        # one connection, used by one thread at a time (the thread running the batch)
        self._db = sqlite3.connect(
            target, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        if self.path is not None:
            mode = self._switch_to_wal(busy_timeout_s)
            if str(mode).lower() != "wal":
                raise OSError(f"{self.path}: SQLite could not switch to WAL mode (got {mode})")
            self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute(_SCHEMA)

    def _switch_to_wal(self, busy_timeout_s: float) -> str:
        """WAL mode, retried while another process creates the same file: SQLite answers
        the switch with "database is locked" at once, without its busy handler."""
        retrying = Retrying(
            retry=retry_if_exception(
                lambda e: isinstance(e, sqlite3.OperationalError) and "locked" in str(e)
            ),
            wait=wait_random_exponential(multiplier=0.05, max=1.0),
            stop=stop_after_delay(busy_timeout_s),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return str(self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, key: str) -> Answer | None:
        row = self._db.execute(
            "SELECT content, finish_reason, prompt_tokens, completion_tokens "
            "FROM answers WHERE key = ?",
            (key,),
        ).fetchone()
        return Answer(row[0], row[1], row[2] or 0, row[3] or 0) if row else None

    def put(self, key: str, model: str, tag: str, messages_sha256: str, answer: Answer) -> Answer:
        """Store ``answer`` (committed at once) and return the stored one: when another
        process stored an answer under the same key first, that one wins for everybody."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                model,
                tag,
                messages_sha256,
                answer.content,
                answer.finish_reason,
                answer.prompt_tokens,
                answer.completion_tokens,
            ),
        )
        if cur.rowcount == 0:
            stored = self.get(key)
            if stored is not None:
                return stored
        return answer

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM answers").fetchone()[0])

    def digests(self) -> set[str]:
        """Digests of the messages of every stored answer (for audits and tests)."""
        return {r[0] for r in self._db.execute("SELECT messages_sha256 FROM answers")}

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> AnswerCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
