"""Per-cell checks and the plain-JSON view of a cell, shared by records and texts.

Text decoded with ``surrogateescape`` keeps undecodable bytes as lone surrogates; the
checks find them and :func:`jsonable` shows them as escapes, so a bad byte is reported
where it is instead of failing the run.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Any

import pandas as pd

_SURROGATE = re.compile(r"[\ud800-\udfff]")
_INVISIBLE = frozenset({"Cf", "Cc"})


def is_missing(value: object) -> bool:
    """None, pandas NA or a float NaN: a cell with no value."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def is_blank(text: str) -> bool:
    """True when a text shows nothing: only whitespace, format (Cf, e.g. zero-width
    space, byte order mark, direction marks) and control (Cc, e.g. NUL) characters."""
    return all(ch.isspace() or unicodedata.category(ch) in _INVISIBLE for ch in text)


def has_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(has_surrogate(k) or has_surrogate(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_surrogate(v) for v in value)
    return False


def escape_text(text: str) -> str:
    """Undecodable bytes as ``\\xNN``, other lone surrogates as ``\\uNNNN``."""
    if not _SURROGATE.search(text):
        return text
    out = []
    for ch in text:
        cp = ord(ch)
        if 0xDC80 <= cp <= 0xDCFF:
            out.append(f"\\x{cp - 0xDC00:02x}")
        elif 0xD800 <= cp <= 0xDFFF:
            out.append(f"\\u{cp:04x}")
        else:
            out.append(ch)
    return "".join(out)


def jsonable(value: Any) -> Any:
    """Any cell as plain JSON: arrays become lists, bytes ``{"$bytes": hex}``, non-finite
    floats and other objects their ``str``; text keeps every character (see escape_text)."""
    if isinstance(value, str):
        return escape_text(value)
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, dict):
        return {str(jsonable(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "ndim"):  # numpy arrays and scalars
        items = value.tolist()
        return [jsonable(v) for v in items] if isinstance(items, list) else jsonable(items)
    if hasattr(value, "item") and not isinstance(value, (bool, int, float)):
        try:
            value = value.item()
        except (ValueError, TypeError, AttributeError):
            return str(value)
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bool, int)):
        return value
    return str(value)


def _preview(value: object) -> str:
    shown = json.dumps(jsonable(value), ensure_ascii=False)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _type_reason(label: str, value: object, allowed: str) -> str:
    return f"{label} holds {type(value).__name__} {_preview(value)}, expected {allowed}"


def id_text(value: object) -> str | None:
    """The id as text: strings as they are, integers in decimal; None when unusable."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu":
        return str(int(value))  # a numpy integer from an adapter
    return None


def cell_reason(col: str, value: object, label: str, max_text_chars: int) -> str:
    """Why one cell of a core column makes its row bad ('' when it does not)."""
    if col == "item_id":
        if is_missing(value):
            return f"no {label}"
        if id_text(value) is None:
            return _type_reason(label, value, "text or an integer")
        return ""
    if is_missing(value):
        return f"empty {label} (missing)" if col == "prompt" else ""
    if not isinstance(value, str):
        return _type_reason(label, value, "text")
    if col == "prompt" and is_blank(value):
        return f"empty {label}" + (" (no visible characters)" if value else "")
    if len(value) > max_text_chars:
        return f"{label} longer than {max_text_chars} characters"
    return ""
