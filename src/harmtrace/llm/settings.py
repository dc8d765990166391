"""The one definition of how to reach a chat model and how to sample from it.

Every stage that talks to a model nests these models instead of repeating their fields:
the ``openai`` grader, the LLM tree generator and the ``openai`` target nest
:class:`EndpointSettings`; the in-process ``transformers`` target nests
:class:`GenerationSettings` alone (it has no endpoint). CLI flags and the config schema
are derived from, or checked against, these fields by tests, so a new setting is added
here once.

Fields marked ``affects_answers=False`` (where the server is, how many requests fly at
once, timeouts) change how fast answers come, not what they are; they are left out of
cache keys and spec hashes (:func:`answer_values`).

A spec that nests the endpoint keeps its own defaults where they differ from these (the
grader wants short replies, the tree generator long ones) with :func:`endpoint_type`, and
the command line takes ``--endpoint KEY=VALUE`` pairs read by :func:`endpoint_overrides`,
so no stage restates a field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError

from harmtrace.errors import HarmtraceError

_RUN = {"json_schema_extra": {"affects_answers": False}}
"""Field option for settings that change how fast, not what, a model answers."""

ResponseFormat = Literal["auto", "json_schema", "json_object", "none"]
RequestFormat = Literal["json_schema", "json_object", "none"]
"""What one request actually used (``auto`` resolves to one of these)."""
FALLBACK: tuple[RequestFormat, ...] = ("json_schema", "json_object", "none")
"""The order ``auto`` tries: a strict schema, any JSON object, then the prompt alone."""


class GenerationSettings(BaseModel):
    """Sampling parameters: everything besides the messages that decides an answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature; 0 is greedy.")
    max_tokens: int = Field(512, ge=1, description="Most new tokens per reply.")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling; null = default.")
    seed: int | None = Field(None, description="Sampling seed where the backend supports one.")

    def sampling(self) -> dict[str, Any]:
        """The request parameters that change answers (and so belong in a cache key)."""
        out: dict[str, Any] = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        if self.top_p is not None:
            out["top_p"] = self.top_p
        if self.seed is not None:
            out["seed"] = self.seed
        return out


class EndpointSettings(GenerationSettings):
    """An OpenAI-compatible chat endpoint: where it is, which model, and how to talk to it."""

    base_url: str = Field(
        "https://api.openai.com/v1",
        description="OpenAI-compatible API root (ends in /v1), e.g. http://127.0.0.1:8000/v1.",
        **_RUN,
    )
    model: str = Field(..., min_length=1, description="Model name as the endpoint knows it.")
    api_key_env: str | None = Field(
        "OPENAI_API_KEY",
        description="NAME of the environment variable holding the API key (never the key); "
        "null sends none.",
        **_RUN,
    )
    response_format: ResponseFormat = Field(
        "auto",
        description="How JSON replies are requested: auto (a strict JSON schema, falling "
        "back once per endpoint to json_object, then to the prompt alone, when the server "
        "rejects it), json_schema, json_object, or none (the prompt alone asks for JSON).",
    )
    concurrency: int = Field(8, ge=1, le=1024, description="Most requests in flight.", **_RUN)
    rps: float | None = Field(
        None, gt=0, description="Most requests per second; null = no cap.", **_RUN
    )
    timeout: float = Field(60.0, gt=0, description="Seconds before a request is abandoned.", **_RUN)
    max_retries: int = Field(
        5, ge=0, description="Retries per request on 429/5xx/timeouts/connection errors.", **_RUN
    )
    max_reasks: int = Field(2, ge=0, description="Re-asks after an unusable reply.")
    backoff_initial: float = Field(
        1.0, ge=0, description="First backoff wait in seconds (doubling, plus jitter).", **_RUN
    )
    backoff_max: float = Field(60.0, ge=0, description="Longest backoff wait in seconds.", **_RUN)
    cache: str | None = Field(
        None,
        description="SQLite answer cache (on a local disk) that makes reruns free and killed "
        "runs resumable; null keeps nothing.",
        **_RUN,
    )
    progress: Literal["auto", "bar", "log", "off"] = Field(
        "auto",
        description="auto (bar on a terminal, log lines otherwise), bar, log or off.",
        **_RUN,
    )
    progress_interval: float = Field(
        30.0, gt=0, description="Seconds between progress log lines.", **_RUN
    )

    def generation(self) -> GenerationSettings:
        return GenerationSettings(**{k: getattr(self, k) for k in GenerationSettings.model_fields})


def _flagged_off(field: Any, flags: Iterable[str]) -> bool:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    return any(extra.get(flag, True) is False for flag in flags)


def answer_fields(model: type[BaseModel]) -> list[str]:
    """Fields of a settings model that change answers (cache keys and spec hashes use them)."""
    return [n for n, f in model.model_fields.items() if not _flagged_off(f, ("affects_answers",))]


def answer_values(spec: BaseModel, flags: Iterable[str] = ("affects_answers",)) -> dict[str, Any]:
    """The values of ``spec`` that change results, nested models included: a field is left
    out when any of ``flags`` is False in its ``json_schema_extra``. Spec hashes use this, so
    moving the server or raising the concurrency keeps a grader's version and a tree's
    provenance, however deep the setting sits."""
    flags = tuple(flags)
    out: dict[str, Any] = {}
    for name, field in type(spec).model_fields.items():
        if _flagged_off(field, flags):
            continue
        value = getattr(spec, name)
        out[name] = answer_values(value, flags) if isinstance(value, BaseModel) else value
    return out


def endpoint_type(**defaults: Any) -> Any:
    """:class:`EndpointSettings` as a spec field whose unset keys take ``defaults`` first.

    Why: the grader's replies are short (300 tokens) and the tree generator's long (4096
    tokens, 120 s), yet both must be the one settings model; a before-validator fills the
    keys a config block leaves out, so ``EndpointSettings`` itself stays the only definition.
    """
    unknown = set(defaults) - set(EndpointSettings.model_fields)
    if unknown:
        raise TypeError(f"not EndpointSettings fields: {sorted(unknown)}")

    def fill(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {**defaults, **value}
        return value

    return Annotated[EndpointSettings, BeforeValidator(fill)]


def endpoint_keys() -> list[str]:
    """The keys ``--endpoint KEY=VALUE`` accepts: every :class:`EndpointSettings` field."""
    return list(EndpointSettings.model_fields)


def endpoint_overrides(items: Iterable[str] | None, option: str = "--endpoint") -> dict[str, Any]:
    """``KEY=VALUE`` pairs (a repeatable command-line option) as validated endpoint values.

    Each value is checked against its :class:`EndpointSettings` field at once, so a typo or
    an out-of-range number is named with its key rather than surfacing later as a nested
    validation error. ``null`` means None; everything else is read as the field reads it
    (``8`` for an int, ``0.5`` for a float, ``none`` or ``off`` as strings).
    """
    fields = EndpointSettings.model_fields
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise HarmtraceError(
                f"{option} {item!r}: write KEY=VALUE, e.g. {option} model=gpt-4o-mini"
            )
        if key not in fields:
            raise HarmtraceError(
                f"{option} {item!r}: unknown key {key!r}; allowed keys: {', '.join(fields)}"
            )
        field = fields[key]
        value: Any = None if raw.strip() == "null" else raw
        try:
            out[key] = TypeAdapter(Annotated[field.annotation, field]).validate_python(value)
        except ValidationError as exc:
            reason = "; ".join(e["msg"] for e in exc.errors())
            raise HarmtraceError(
                f"{option} {item!r}: {reason} ({key}: {field.description})"
            ) from None
    return out


def apply_endpoint_overrides(
    block: Mapping[str, Any],
    items: Iterable[str] | None,
    spec: type[BaseModel],
    what: str,
    option: str = "--endpoint",
) -> dict[str, Any]:
    """A config block with ``--endpoint KEY=VALUE`` pairs merged into its ``endpoint``.

    ``spec`` is the backend's spec class; one without an ``endpoint`` field (the offline
    grader, the proxy tree generator) gets a clear error instead of a silent no-op.
    """
    out = dict(block)
    values = endpoint_overrides(items, option)
    if not values:
        return out
    if "endpoint" not in spec.model_fields:
        raise HarmtraceError(f"{option} is for backends with an endpoint; {what} has none")
    nested = out.get("endpoint") or {}
    if isinstance(nested, BaseModel):
        nested = nested.model_dump()
    out["endpoint"] = {**nested, **values}
    return out
