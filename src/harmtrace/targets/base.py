"""What every model under study (a *target*) provides, whatever runs it.

A target is a model plus the conditions it answers under: system prompt and sampling.
The same weights with and without a safety system prompt are two targets, so a study
compares conditions by comparing targets. A backend (``transformers`` in-process,
``openai`` over HTTP) is a :class:`Target` subclass registered by name
(:mod:`harmtrace.targets.registry`); its config block is validated by its ``Spec``.

Contract of :meth:`Target.generate`: conversations in, one :class:`Answer` per
conversation out, in order, none dropped. An answer that could not be produced has
``finish_reason == "error"`` and says why in ``error``. ``done`` lists the indices
already answered on an earlier (killed) run; a backend skips them, but must form its
batches from the whole list so that resuming never changes what the others get.
``on_answer`` is called as soon as an answer is final, so the caller can persist it
before the next batch starts.
"""

from __future__ import annotations

import abc
import hashlib
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from harmtrace.errors import HarmtraceError

FinishReason = Literal["stop", "length", "error"]
Message = Mapping[str, str]


class ConversationError(HarmtraceError):
    """One conversation cannot be put to the model (too long, empty, not text); ``index``
    is its position in the list, so the caller can name the record."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"conversation {index}: {reason}")
        self.index = index
        self.reason = reason


class TargetSpec(BaseModel):
    """Base of every target's config block (``targets.<name>`` minus ``backend``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    system_prompt: str | None = Field(
        None, description="System message put before every prompt; null sends none."
    )

    def prepared_model(self) -> str | None:
        """Name of a registered model whose weights the DAG must prepare first (the
        ``prepare_model`` rule), or None when the target needs no artifact."""
        return None

    def cpu_threads(self) -> int:
        """CPU cores one respond job of this target keeps busy (the rule's ``threads``)."""
        return 1


@dataclass(frozen=True, slots=True)
class Answer:
    """One generated reply and what it cost."""

    text: str
    finish_reason: FinishReason
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    prompt_truncated: bool = False
    """The prompt was cut to fit the model's context (the documented left truncation)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Answer:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def conversation(system_prompt: str | None, context: Sequence[Message], prompt: str):
    """Chat messages for one record: the condition's system prompt, earlier turns, the prompt."""
    out: list[dict[str, str]] = []
    if system_prompt:
        out.append({"role": "system", "content": system_prompt})
    out.extend(dict(m) for m in context)
    out.append({"role": "user", "content": prompt})
    return out


class Target(abc.ABC):
    """A registered model backend: built from its spec, no work in ``__init__``."""

    name: ClassVar[str] = "abstract"
    Spec: ClassVar[type[TargetSpec]] = TargetSpec
    backend_version: ClassVar[str] = "1.0"

    def __init__(self, spec: TargetSpec) -> None:
        self.spec = spec

    def check(self) -> None:
        """Fail early, before any prompt is read, when the target cannot run (no key...)."""
        return None

    @abc.abstractmethod
    def provenance(self) -> dict[str, Any]:
        """What determines the answers, recorded on every record: backend, model id,
        weights sha256, chat template sha256, system prompt, sampling, max tokens."""

    def fingerprint(self) -> str:
        """Hash of the provenance: answers saved under another fingerprint are not reused."""
        blob = json.dumps(self.provenance(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @abc.abstractmethod
    def generate(
        self,
        conversations: Sequence[Sequence[Message]],
        *,
        done: Collection[int] = (),
        on_answer: Callable[[int, Answer], None] | None = None,
    ) -> list[Answer | None]:
        """One answer per conversation (``None`` only at the ``done`` indices)."""

    def close(self) -> None:
        """Release the model or connections."""
        return None
