"""Where trace timestamps come from: an injectable clock.

Traces carry timestamps because an audit trail needs them, but the workflow's outputs
must be byte-identical across reruns. So the flow never reads the system time itself:
it calls a :data:`Clock`. The workflow pins it (:func:`fixed_clock`, typically from
``SOURCE_DATE_EPOCH`` via :func:`clock_from_env`); interactive use gets the real time.
Timestamps are written as ISO 8601 UTC with milliseconds (:func:`isoformat`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

from harmtrace.errors import HarmtraceError

Clock = Callable[[], datetime]
EPOCH_ENV = "SOURCE_DATE_EPOCH"


def system_clock() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def fixed_clock(epoch_seconds: int | float) -> Clock:
    """A clock that always returns the same instant (seconds since 1970-01-01 UTC)."""
    instant = datetime.fromtimestamp(float(epoch_seconds), UTC)

    def clock() -> datetime:
        return instant

    return clock


def clock_from_env(epoch: int | None = None) -> Clock:
    """``epoch`` if given, else ``$SOURCE_DATE_EPOCH`` if set, else the system clock."""
    if epoch is not None:
        return fixed_clock(epoch)
    raw = os.environ.get(EPOCH_ENV)
    if raw is None or raw == "":
        return system_clock
    try:
        return fixed_clock(int(raw))
    except ValueError:
        raise HarmtraceError(
            f"${EPOCH_ENV}={raw!r} is not an integer number of seconds; unset or fix it"
        ) from None


def parse_clock(value: str | int | None) -> Clock:
    """A clock from a setting: ``None`` (see :func:`clock_from_env`), ``"now"`` (the
    system clock), an integer Unix time, or an ISO 8601 instant with a time zone
    (``2025-01-01T00:00:00Z``)."""
    if value is None:
        return clock_from_env()
    if isinstance(value, int) and not isinstance(value, bool):
        return fixed_clock(value)
    text = str(value).strip()
    if text == "now":
        return system_clock
    if text.lstrip("-").isdigit():
        return fixed_clock(int(text))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise HarmtraceError(
            f"clock {value!r} is not 'now', a Unix time or an ISO 8601 instant "
            "such as 2025-01-01T00:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise HarmtraceError(f"clock {value!r} has no time zone; add Z or +00:00")
    return fixed_clock(moment.timestamp())


def isoformat(moment: datetime) -> str:
    """``2025-03-12T10:00:00.000Z``: UTC, millisecond precision, a literal Z."""
    if moment.tzinfo is None:
        raise HarmtraceError("clock returned a naive datetime; return an aware (UTC) one")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.astimezone(UTC).microsecond // 1000:03d}Z"
    )
