"""Numbers as the paper shows them, for assertions on producers' outputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harmtrace.report.macros import Number, render


def rendered(numbers: Mapping[str, Any], target: str = "latex") -> dict[str, str]:
    """``{key: shown text}`` from Number values or their JSON form."""
    out = {}
    for key, value in numbers.items():
        number = value if isinstance(value, Number) else Number.from_json(value)
        out[key] = render(number, target)  # type: ignore[arg-type]
    return out
