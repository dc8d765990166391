"""The ``openai`` target: a model under study behind an OpenAI-compatible chat endpoint.

Method. Every conversation not yet answered (``done`` skipped) goes into one
:class:`harmtrace.llm.LLMClient` batch with a free-text parser, so the endpoint's
concurrency, rate limit, retries with backoff and the SQLite answer cache span the whole
shard; a killed run started again asks only for what never arrived, and a warm rerun
sends nothing. Each answer is handed to ``on_answer`` the moment it is final, in any
order. ``finish_reason`` is the server's (``length`` when ``max_tokens`` ran out; every
other reason counts as ``stop``), token counts are the server's ``usage``. A request that
still fails after its retries becomes ``Answer(finish_reason="error", error=reason)``,
never a missing answer.

What the answers depend on (:meth:`OpenAITarget.provenance`): the model name, system
prompt and sampling. Where the server is, the key, concurrency and timeouts are not part
of it (a moved server gives the same answers). The weights and chat template behind an
endpoint cannot be seen from here, so their digests are null: a study that needs answers
tied to weight bytes uses the ``transformers`` target, or serves a prepared folder.

Answers are free text: no response format is sent, whatever ``endpoint.response_format``
says (its default here is ``none``, and ``max_tokens`` 256).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any, ClassVar

from pydantic import Field

from harmtrace.llm import ChatRequest, LLMClient, Result, RunStats, TextReply
from harmtrace.llm.client import read_api_key
from harmtrace.llm.settings import endpoint_type
from harmtrace.targets.base import Answer, Message, Target, TargetSpec
from harmtrace.targets.registry import register_target

TargetEndpoint = endpoint_type(max_tokens=256, response_format="none")
"""The endpoint with a target's defaults: answers of up to 256 tokens, free text."""

TAG = "target-answer/1"
"""Cache tag of target answers: the same conversation asked by a grader is another entry."""


class OpenAITargetSpec(TargetSpec):
    """``targets.<name>`` of a ``backend: openai`` target."""

    endpoint: TargetEndpoint = Field(
        description="The OpenAI-compatible endpoint and its sampling (EndpointSettings); "
        "max_tokens defaults to 256 and response_format to none here."
    )


def _free_text(content: str) -> str:
    return content


@register_target
class OpenAITarget(Target):
    """Answers from a chat model served over HTTP (OpenAI, vLLM, Ollama, transformers serve)."""

    name: ClassVar[str] = "openai"
    Spec: ClassVar[type[TargetSpec]] = OpenAITargetSpec
    backend_version: ClassVar[str] = "1.0"

    spec: OpenAITargetSpec

    def __init__(self, spec: OpenAITargetSpec) -> None:
        super().__init__(spec)
        self.last_run: RunStats | None = None
        """Client statistics of the last :meth:`generate` (requests, cache hits...)."""

    def check(self) -> None:
        """The key variable is set (an :class:`~harmtrace.llm.LLMConfigError` names it)."""
        read_api_key(self.spec.endpoint.api_key_env)

    def provenance(self) -> dict[str, Any]:
        e = self.spec.endpoint
        return {
            "backend": self.name,
            "backend_version": self.backend_version,
            "model": e.model,
            "weights_sha256": None,
            "chat_template_sha256": None,
            "system_prompt": self.spec.system_prompt,
            "sampling": e.generation().sampling(),
            "max_tokens": e.max_tokens,
        }

    def generate(
        self,
        conversations: Sequence[Sequence[Message]],
        *,
        done: Collection[int] = (),
        on_answer: Callable[[int, Answer], None] | None = None,
    ) -> list[Answer | None]:
        skip = set(done)
        todo = [i for i in range(len(conversations)) if i not in skip]
        out: list[Answer | None] = [None] * len(conversations)
        if not todo:
            return out

        def requests() -> Iterator[ChatRequest]:
            for i in todo:
                yield ChatRequest([dict(m) for m in conversations[i]], tag=TAG)

        def finished(k: int, result: Result[Any]) -> None:
            index = todo[k]
            answer = to_answer(result)
            out[index] = answer
            if on_answer is not None:
                on_answer(index, answer)

        with LLMClient(self.spec.endpoint) as client:
            client.complete(
                requests(),
                TextReply(_free_text, name="answer"),
                on_result=finished,
                total=len(todo),
                desc=f"answers ({self.spec.endpoint.model})",
            )
            self.last_run = client.last_run
        return out


def to_answer(result: Result[Any]) -> Answer:
    """A client result as a target answer: text, finish reason and tokens, or the error."""
    if not result.ok:
        return Answer(
            text="",
            finish_reason="error",
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            error=result.error or "no answer",
        )
    return Answer(
        text=result.value if isinstance(result.value, str) else str(result.content or ""),
        finish_reason="length" if result.finish_reason == "length" else "stop",
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
    )
