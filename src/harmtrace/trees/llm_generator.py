"""The ``openai`` tree generator: harm-benefit trees from an OpenAI-compatible chat model.

Works with general chat models (``style: chat``, prompts in :mod:`harmtrace.trees.prompts`)
and with the SafetyReporter pair served by vLLM (``style: safetyreporter``: HarmReporter
and BenefitReporter each answer their half; the halves are merged). For each prompt:

1. ask; parse the answer as JSON, repairing it with json-repair when strict parsing
   fails (the record says ``repaired``); validate it against the tree schema and the AIR
   taxonomy;
2. if that fails, ask again (a new request: the chat style adds the bad answer and the
   error, both styles change the sampling seed), at most ``max_attempts`` times in all;
3. after the last failed attempt, write a ``failed`` record with every error and the
   last raw answer. Transport failures that outlast the client's retries are failures
   of that prompt, not of the run.

Requests go through a shared chat client (:class:`ChatClient`): the LLM grader's client
with its persistent cache, so a rerun, or a killed run started again, answers finished
requests from the cache and only sends what is missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import pandas as pd
from pydantic import Field

from harmtrace.data.air_taxonomy import AirTaxonomy, load_air_taxonomy
from harmtrace.errors import HarmtraceError
from harmtrace.graders.base import as_texts
from harmtrace.trees import prompts as P
from harmtrace.trees.base import GeneratorSpec, TreeGenerator
from harmtrace.trees.registry import register_generator
from harmtrace.trees.schema import TreeRecord

LLM_GENERATOR_VERSION = "1.0"


class LLMTreeError(HarmtraceError):
    """The LLM generator cannot run (no client, bad settings)."""


@dataclass(frozen=True)
class ChatReply:
    """What a chat client returns for one request."""

    text: str
    cached: bool = False
    usage: dict[str, int] = field(default_factory=dict)


class ChatClient(Protocol):
    """The one call the generator needs from an OpenAI-compatible client."""

    async def chat(
        self,
        messages: list[dict[str, str]],
        *,
        model: str,
        temperature: float,
        max_tokens: int,
        seed: int | None,
        json_mode: bool,
    ) -> ChatReply: ...


class OpenAITreeSpec(GeneratorSpec):
    """Config block ``trees.generators.openai``."""

    style: Literal["chat", "safetyreporter"] = Field(
        default="chat", description="chat: any chat model; safetyreporter: HarmReporter+BenefitReporter"
    )
    model: str = Field(default="gpt-4o-mini", description="chat model (style chat)")
    harm_model: str = Field(
        default="jl3676/HarmReporter", description="harm model (style safetyreporter)"
    )
    benefit_model: str = Field(
        default="jl3676/BenefitReporter", description="benefit model (style safetyreporter)"
    )
    temperature: float = Field(default=0.0, ge=0, le=2, description="sampling temperature")
    max_tokens: int = Field(default=4096, ge=64, description="answer length limit")
    seed: int = Field(default=0, description="sampling seed of the first attempt")
    max_attempts: int = Field(default=3, ge=1, le=10, description="asks per prompt, retries included")
    json_mode: bool = Field(
        default=True, description="ask for a JSON object (response_format); style chat only"
    )
    raw_dir: str = Field(
        default="data/raw",
        description="where the fetched air-2024-taxonomy lives",
        json_schema_extra={"affects_trees": False},
    )
    concurrency: int = Field(
        default=16,
        ge=1,
        description="prompts in flight at once",
        json_schema_extra={"affects_trees": False},
    )


@dataclass
class Attempts:
    """Bookkeeping of one prompt's attempts."""

    n: int = 0
    errors: list[str] = field(default_factory=list)
    repaired: bool = False
    last_raw: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    cached: int = 0

    def add_usage(self, reply: ChatReply) -> None:
        for k, v in reply.usage.items():
            self.usage[k] = self.usage.get(k, 0) + int(v)
        self.cached += int(reply.cached)


@register_generator
class OpenAITreeGenerator(TreeGenerator):
    """Trees from an OpenAI-compatible chat endpoint (OpenAI, Azure, vLLM, Ollama...)."""

    name: ClassVar[str] = "openai"
    Spec: ClassVar[type[GeneratorSpec]] = OpenAITreeSpec
    backend_version: ClassVar[str] = LLM_GENERATOR_VERSION
    proxy: ClassVar[bool] = False

    def __init__(
        self,
        spec: OpenAITreeSpec,
        *,
        client: ChatClient | None = None,
        taxonomy: AirTaxonomy | None = None,
    ) -> None:
        super().__init__(spec)
        self.client = client
        self._taxonomy = taxonomy
        self.stats = {"requests": 0, "cached": 0, "prompt_tokens": 0, "completion_tokens": 0}

    @property
    def taxonomy(self) -> AirTaxonomy:
        if self._taxonomy is None:
            self._taxonomy = load_air_taxonomy(self.spec.raw_dir)
        return self._taxonomy

    def check(self) -> None:
        if self.client is None:
            raise LLMTreeError(
                "the openai tree generator needs a chat client (harmtrace.llm); "
                "configure the endpoint (base URL, model, API key variable) and try again"
            )
        _ = self.taxonomy

    @property
    def version(self) -> str:
        s = self.spec
        models = s.model if s.style == "chat" else f"{s.harm_model}+{s.benefit_model}"
        return f"{super().version}/prompt-{P.PROMPT_VERSION}/{s.style}/{models}"

    # ---------------------------------------------------------------- one prompt
    async def _ask(self, messages: list[dict[str, str]], model: str, seed: int, att: Attempts) -> str:
        assert self.client is not None
        s = self.spec
        reply = await self.client.chat(
            messages,
            model=model,
            temperature=s.temperature,
            max_tokens=s.max_tokens,
            seed=seed,
            json_mode=s.json_mode and s.style == "chat",
        )
        att.add_usage(reply)
        self.stats["requests"] += 1
        self.stats["cached"] += int(reply.cached)
        for k in ("prompt_tokens", "completion_tokens"):
            self.stats[k] += int(reply.usage.get(k, 0))
        return reply.text

    async def _chat_tree(self, prompt: str, att: Attempts) -> Any:
        s = self.spec
        messages = P.chat_messages(self.taxonomy, prompt)
        while att.n < s.max_attempts:
            att.n += 1
            text = await self._ask(messages, s.model, s.seed + att.n - 1, att)
            att.last_raw = text
            try:
                tree, repaired, warnings = P.parse_chat_answer(text, self.taxonomy)
            except P.TreeParseError as exc:
                att.errors.append(f"attempt {att.n}: {exc}")
                messages = [
                    *messages[:2],
                    {"role": "assistant", "content": text},
                    {"role": "user", "content": P.retry_message(str(exc))},
                ]
                continue
            att.repaired = repaired
            return tree, warnings
        return None

    async def _safetyreporter_tree(self, prompt: str, att: Attempts) -> Any:
        s = self.spec
        messages = [{"role": "user", "content": prompt}]
        while att.n < s.max_attempts:
            att.n += 1
            seed = s.seed + att.n - 1
            harm_text, benefit_text = await asyncio.gather(
                self._ask(messages, s.harm_model, seed, att),
                self._ask(messages, s.benefit_model, seed, att),
            )
            att.last_raw = f"HARMS:\n{harm_text}\n\nBENEFITS:\n{benefit_text}"
            try:
                harm_obj, r1 = P.load_json(harm_text)
                benefit_obj, r2 = P.load_json(benefit_text)
                merged = P.from_safetyreporter(harm_obj, benefit_obj)
                tree, warnings = P.validate_tree(merged, self.taxonomy)
            except P.TreeParseError as exc:
                att.errors.append(f"attempt {att.n}: {exc}")
                continue
            att.repaired = r1 or r2
            return tree, warnings
        return None

    async def _one(self, record_id: str, dataset: str, prompt: str) -> TreeRecord:
        att = Attempts()
        build = self._chat_tree if self.spec.style == "chat" else self._safetyreporter_tree
        try:
            result = await build(prompt, att)
        except Exception as exc:  # transport failure after the client's own retries
            att.errors.append(f"attempt {att.n}: request failed: {type(exc).__name__}: {exc}")
            result = None
        prov = self.provenance()
        if result is None:
            return TreeRecord(
                record_id=record_id,
                dataset=dataset,
                status="failed",
                attempts=att.n,
                repaired=False,
                errors=att.errors or ["no answer"],
                raw=att.last_raw,
                provenance=prov,
            )
        tree, warnings = result
        return TreeRecord(
            record_id=record_id,
            dataset=dataset,
            status="ok",
            attempts=att.n,
            repaired=att.repaired,
            errors=att.errors,
            warnings=warnings,
            tree=tree,
            provenance=prov,
        )

    # -------------------------------------------------------------------- batch
    async def agenerate(self, records: pd.DataFrame) -> list[TreeRecord]:
        self.check()
        limit = asyncio.Semaphore(self.spec.concurrency)
        prompts = as_texts(records["prompt"])

        async def run(i: int) -> TreeRecord:
            async with limit:
                return await self._one(
                    str(records["record_id"].iloc[i]), str(records["dataset"].iloc[i]), prompts[i]
                )

        return list(await asyncio.gather(*(run(i) for i in range(len(records)))))

    def generate(self, records: pd.DataFrame) -> list[TreeRecord]:
        return asyncio.run(self.agenerate(records))


def usage_summary(gen: OpenAITreeGenerator) -> dict[str, int]:
    """Requests, cache hits and tokens of the generator's runs so far."""
    return dict(gen.stats)


__all__: Sequence[str] = [
    "ChatClient",
    "ChatReply",
    "OpenAITreeGenerator",
    "OpenAITreeSpec",
    "usage_summary",
]
