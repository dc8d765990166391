"""The adapter for garak's refusal strings, read from its detector module's source."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd

from harmtrace.data.adapters.base import AdapterError, adapter, pick_file

GARAK_MATCH = {"str": "substring", "startswith": "prefix"}
"""garak's ``matchtype`` values and what they mean for a refusal string."""


def _garak_matchtype(cls: ast.ClassDef) -> str | None:
    """The ``"matchtype"`` literal of a detector's ``DEFAULT_PARAMS = Base | {...}``."""
    for node in cls.body:
        if not isinstance(node, ast.Assign) or not isinstance(node.value, ast.BinOp):
            continue
        if not any(getattr(t, "id", None) == "DEFAULT_PARAMS" for t in node.targets):
            continue
        params = node.value.right
        if isinstance(params, ast.Dict):
            for key, value in zip(params.keys, params.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "matchtype":
                    return ast.literal_eval(value)
    return None


def _garak_substrings(cls: ast.ClassDef) -> list[tuple[object, int]] | None:
    """The ``substrings = [...]`` literal of a detector, each item with its source line."""
    for node in ast.walk(cls):
        if (
            isinstance(node, ast.Assign)
            and any(getattr(t, "id", None) == "substrings" for t in node.targets)
            and isinstance(node.value, ast.List)
        ):
            return [(ast.literal_eval(e), e.lineno) for e in node.value.elts]
    return None


@adapter("garak_refusal")
def garak_refusal(files: dict[str, Path]) -> pd.DataFrame:
    """garak's refusal strings, one record per string (``prompt`` holds it).

    The module is parsed with :mod:`ast` (``literal_eval`` of the ``substrings`` lists),
    never imported. Every string detector class in it is kept with its match type:
    ``gk_match`` is ``substring`` (garak's ``matchtype: str``, found anywhere) or
    ``prefix`` (``startswith``). Strings are garak's verbatim; the same string in two
    detectors is two records.
    """
    _, path = pick_file(files, "mitigation.py")
    source = path.read_bytes().decode("utf-8", "surrogateescape")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise AdapterError(f"{path}: not parseable Python ({exc})") from exc
    rows = []
    for cls in tree.body:
        if not isinstance(cls, ast.ClassDef):
            continue
        strings = _garak_substrings(cls)
        if strings is None:
            continue
        matchtype = _garak_matchtype(cls)
        if matchtype not in GARAK_MATCH:
            raise AdapterError(
                f"{path}: detector {cls.name} has matchtype {matchtype!r}; "
                f"expected one of {sorted(GARAK_MATCH)}"
            )
        for i, (text, line) in enumerate(strings):
            if not isinstance(text, str):
                raise AdapterError(f"{path}: line {line}: {cls.name} substring is not a string")
            rows.append(
                {
                    "_source_row": line,
                    "item_id": f"{cls.name}-{i:03d}",
                    "prompt": text,
                    "gk_detector": cls.name,
                    "gk_match": GARAK_MATCH[matchtype],
                }
            )
    if not rows:
        raise AdapterError(f"{path}: no string detector with a substrings list found")
    out = pd.DataFrame(rows)
    out["context"] = ""
    out["response"] = pd.array([None] * len(out), dtype="string")
    out["response_source"] = pd.array([None] * len(out), dtype="string")
    return out
