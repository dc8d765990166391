"""Turning a model's reply text into a validated value, or a reason why not.

A :class:`ReplyParser` says what reply a request expects (a JSON schema for the server's
``response_format``, or free text) and turns the reply into a value, raising
:class:`ReplyError` with a short, model-readable reason when it cannot. The client feeds
that reason back in a bounded number of re-asks.

:class:`JsonReply` validates against a pydantic model: the reply is parsed as JSON; when
that fails (prose around the object, unquoted keys, trailing commas, a reply cut off by
the token limit) it is repaired with json-repair and validated like any other; a reply
that is still not a valid instance -- missing fields, values out of range, wrong types --
is a :class:`ReplyError`. Values are never clipped into range or guessed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import json_repair
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ReplyError(ValueError):
    """A reply that cannot be used; the message says why in a sentence a model can act on."""


@runtime_checkable
class ReplyParser(Protocol):
    """What a request expects back and how to read it."""

    name: str
    """Short name (used as the JSON schema name and in logs)."""
    schema: dict[str, Any] | None
    """JSON schema of the reply for ``response_format``; None for free text."""
    reask: bool
    """Whether a bad reply may be followed by a re-ask in the same conversation."""

    def parse(self, content: str) -> Any:
        """The value in ``content``; raise :class:`ReplyError` if there is none."""


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema in the form strict structured outputs accept: every object
    closed (``additionalProperties: false``) with every property required, and no
    ``title``/``default`` keywords."""

    def walk(node: Any, names: bool = False) -> Any:
        if isinstance(node, dict):
            if names:  # a ``properties`` or ``$defs`` mapping: keys are names, not keywords
                return {k: walk(v) for k, v in node.items()}
            out = {
                k: walk(v, names=k in ("properties", "$defs"))
                for k, v in node.items()
                if k not in ("title", "default")
            }
            if out.get("type") == "object" and "properties" in out:
                out["additionalProperties"] = False
                out["required"] = list(out["properties"])
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(model.model_json_schema())


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


def load_json(content: str) -> tuple[Any, bool]:
    """Parsed JSON and whether it had to be repaired; :class:`ReplyError` if hopeless."""
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        return json.loads(text), False
    except ValueError:
        pass
    try:
        value = json_repair.loads(text)
    except Exception as exc:  # json-repair raises assorted errors on pathological input
        raise ReplyError(f"the reply is not JSON ({type(exc).__name__})") from exc
    if not isinstance(value, dict | list) or value in ({}, []):
        raise ReplyError("the reply is not a JSON object")
    return value, True


def validation_summary(exc: ValidationError, limit: int = 5) -> str:
    """``field: message`` for the first few problems, without echoing long inputs."""
    parts = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - limit
    if more > 0:
        parts.append(f"... and {more} more")
    return "; ".join(parts)


class JsonReply(Generic[M]):
    """A JSON reply validated by a pydantic model, then by an optional ``validator`` that
    raises ``ValueError`` for problems the model cannot express (cross-field rules)."""

    reask = True

    def __init__(
        self,
        model: type[M],
        validator: Callable[[M], None] | None = None,
        name: str | None = None,
    ) -> None:
        self.model = model
        self.validator = validator
        self.name = re.sub(r"[^A-Za-z0-9_-]", "_", name or model.__name__)[:64]
        self.schema: dict[str, Any] | None = strict_schema(model)
        self.last_repaired = False
        """Whether the reply last parsed successfully needed json-repair."""

    def parse(self, content: str) -> M:
        value, repaired = load_json(content)
        try:
            out = self.model.model_validate(value)
        except ValidationError as exc:
            raise ReplyError(
                f"the JSON does not fit the schema: {validation_summary(exc)}"
            ) from exc
        if self.validator is not None:
            try:
                self.validator(out)
            except ValueError as exc:
                raise ReplyError(str(exc)) from exc
        self.last_repaired = repaired
        return out


class TextReply:
    """A free-text reply read by ``read`` (which raises ``ValueError`` when it cannot);
    no schema and no re-asks (for classifiers such as Llama Guard that only judge)."""

    schema: dict[str, Any] | None = None
    reask = False

    def __init__(self, read: Callable[[str], Any], name: str = "text") -> None:
        self.read = read
        self.name = name

    def parse(self, content: str) -> Any:
        try:
            return self.read(content)
        except ValueError as exc:
            raise ReplyError(str(exc)) from exc


def reask_message(error: ReplyError) -> dict[str, str]:
    """The user turn that asks again after an unusable reply."""
    return {
        "role": "user",
        "content": (
            f"Your previous reply could not be used: {error}. Reply again with only the "
            "JSON object in the required format, nothing else."
        ),
    }
