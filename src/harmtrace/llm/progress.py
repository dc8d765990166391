"""Progress of a batch of requests: a tqdm bar on a terminal, periodic log lines elsewhere.

Snakemake sends stderr to a log file, where a redrawn bar is noise; there the same
numbers (done/total, rate, ETA, failures, cache hits, retries) go to the log every
``interval`` seconds instead. The clock is injectable so tests can pin it.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

ProgressMode = Literal["auto", "bar", "log", "off"]

log = logging.getLogger("harmtrace.llm")


@dataclass
class RunStats:
    """Counts for one batch (and, summed, for a client's lifetime)."""

    records: int = 0
    """Logical requests finished (each may have taken several HTTP requests)."""
    requests: int = 0
    """HTTP requests sent, retries included."""
    retries: int = 0
    reasks: int = 0
    repaired: int = 0
    cache_hits: int = 0
    """Answers taken from the cache (or from an identical request in flight)."""
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    """Tokens of answers taken from the cache, i.e. not paid for again."""
    seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    """Failure reasons (first 80 characters) and how often each occurred."""

    def add(self, other: RunStats) -> None:
        for name in self.__dataclass_fields__:
            if name == "errors":
                for k, v in other.errors.items():
                    self.errors[k] = self.errors.get(k, 0) + v
            else:
                setattr(self, name, getattr(self, name) + getattr(other, name))

    def summary(self) -> str:
        rate = self.records / self.seconds if self.seconds > 0 else 0.0
        text = (
            f"{self.records:,} done in {self.seconds:.1f} s ({rate:,.1f}/s): "
            f"{self.requests:,} HTTP requests, {self.retries:,} retries, "
            f"{self.reasks:,} re-asks, {self.repaired:,} repaired replies, "
            f"{self.cache_hits:,} cache hits, {self.failures:,} failures; tokens "
            f"{self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion "
            f"({self.cached_tokens:,} more served from the cache)"
        )
        if self.errors:
            common = sorted(self.errors.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
            text += "; failures: " + "; ".join(f"{n} x {reason}" for reason, n in common)
        return text


class Progress:
    """Call :meth:`update` once per finished request, :meth:`close` at the end."""

    def __init__(
        self,
        total: int | None,
        stats: RunStats,
        mode: ProgressMode = "auto",
        interval: float = 30.0,
        desc: str = "llm",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.stats = stats
        self.interval = interval
        self.clock = clock
        self.start = clock()
        self._last_log = self.start
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.mode = mode
        self._bar: Any = None
        if mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="req", mininterval=0.5, leave=True)

    def _postfix(self) -> dict[str, int]:
        s = self.stats
        return {"fail": s.failures, "hits": s.cache_hits, "retries": s.retries}

    def update(self) -> None:
        if self._bar is not None:
            self._bar.update(1)
            if self._bar.n % 16 == 0 or self._bar.n == self.total:
                self._bar.set_postfix(self._postfix(), refresh=False)
        elif self.mode == "log":
            now = self.clock()
            if now - self._last_log >= self.interval:
                self._last_log = now
                log.info("progress: %s", self.line(now))

    def line(self, now: float | None = None) -> str:
        """``done/total, rate, ETA, failures, cache hits, retries`` as one line."""
        now = self.clock() if now is None else now
        done = self.stats.records
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        if self.total and rate > 0:
            eta = f"{(self.total - done) / rate:,.0f} s"
            head = f"{done:,}/{self.total:,} ({100 * done / self.total:.0f}%)"
        else:
            eta, head = "?", f"{done:,}"
        s = self.stats
        return (
            f"{head}, {rate:,.1f}/s, ETA {eta}, {s.failures:,} failed, "
            f"{s.cache_hits:,} cache hits, {s.retries:,} retries"
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.set_postfix(self._postfix(), refresh=True)
            self._bar.close()
