"""The ``openai`` tree generator: harm-benefit trees from an OpenAI-compatible chat model.

All requests go through :class:`harmtrace.llm.LLMClient`, the client the LLM grader
uses: concurrency and rate limits, retries with backoff on 429/5xx/timeouts, and the
SQLite answer cache, so a rerun (or a killed run started again) answers finished
requests from the cache and sends only what is missing.

Two styles:

* ``chat`` (general chat models): the prompts of :mod:`harmtrace.trees.prompts` ask for
  the tree as JSON under the tree schema, sent as a strict ``response_format`` whose AIR
  names are enumerated from the loaded taxonomy. Each reply is parsed (repaired with
  json-repair when strict parsing fails; the record says ``repaired``) and validated
  against the schema and the taxonomy. An unusable reply is re-asked in the same
  conversation with the reason, at most ``max_attempts - 1`` times; then the prompt is
  recorded as ``failed`` with the errors and the last raw reply.
* ``safetyreporter`` (HarmReporter and BenefitReporter served by vLLM): each model gets
  the bare prompt (its chat template frames it) and answers a JSON list; the two halves
  are merged (:func:`harmtrace.trees.prompts.from_safetyreporter`). These single-turn
  models are not re-asked: a prompt whose halves do not give a valid tree is generated
  again with the next seed, at most ``max_attempts`` times in all, then recorded as
  ``failed``.

The endpoint is one :class:`harmtrace.llm.settings.EndpointSettings` block (``endpoint``);
``max_attempts`` replaces its ``max_reasks``, and the safetyreporter style swaps in
``harm_model`` / ``benefit_model`` for its ``model``. The response format each tree's
replies used (``auto`` resolves to what the server accepted) ends its provenance version
(``.../format-json_schema``), since it can change the tree.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import pandas as pd
from pydantic import Field, field_validator

from harmtrace.data.air_taxonomy import AirTaxonomy, load_air_taxonomy
from harmtrace.graders.base import as_texts
from harmtrace.llm import ChatRequest, EndpointSettings, LLMClient, ReplyError, Result, RunStats
from harmtrace.llm.keys import read_api_key
from harmtrace.llm.replies import load_json, strict_schema
from harmtrace.llm.settings import answer_values, endpoint_type
from harmtrace.trees import prompts as P
from harmtrace.trees.base import GeneratorSpec, TreeGenerator
from harmtrace.trees.registry import register_generator
from harmtrace.trees.schema import HarmBenefitTree, Provenance, TreeRecord

LLM_GENERATOR_VERSION = "1.0"
_RUN = {"json_schema_extra": {"affects_trees": False}}
"""Field option for settings that change how fast, not what, is generated."""

_ENDPOINT_DEFAULTS: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "max_tokens": 4096,
    "timeout": 120.0,
    "cache": "results/cache/trees.sqlite",
}
"""The tree generator's endpoint defaults: a tree is long (4096 tokens, up to two minutes),
and answers are cached for reruns."""
TreeEndpoint = endpoint_type(**_ENDPOINT_DEFAULTS)


class OpenAITreeSpec(GeneratorSpec):
    """Config block ``trees.generator.openai``: an endpoint plus how trees are asked for."""

    endpoint: TreeEndpoint = Field(
        default_factory=lambda: EndpointSettings(**_ENDPOINT_DEFAULTS),
        description="The OpenAI-compatible endpoint and its sampling (EndpointSettings); "
        "here model defaults to gpt-4o-mini, max_tokens to 4096, timeout to 120 s and cache "
        "to results/cache/trees.sqlite; max_reasks is replaced by max_attempts.",
    )
    style: Literal["chat", "safetyreporter"] = Field(
        default="chat",
        description="chat: any chat model; safetyreporter: HarmReporter + BenefitReporter",
    )
    harm_model: str = Field(
        default="jl3676/HarmReporter", description="harm model (style safetyreporter)"
    )
    benefit_model: str = Field(
        default="jl3676/BenefitReporter", description="benefit model (style safetyreporter)"
    )
    max_attempts: int = Field(
        default=3, ge=1, le=10, description="asks per prompt, re-asks or regenerations included"
    )
    raw_dir: str = Field(
        default="data/raw", description="where the fetched air-2024-taxonomy lives", **_RUN
    )

    @field_validator("endpoint")
    @classmethod
    def _one_retry_budget(cls, endpoint: EndpointSettings) -> EndpointSettings:
        """Two budgets for the same re-asks would silently disagree: refuse the second."""
        if "max_reasks" in endpoint.model_fields_set:
            raise ValueError(
                "max_reasks is not used by the tree generator: set max_attempts (asks per "
                "prompt, re-asks or regenerations included) beside endpoint instead"
            )
        return endpoint

    def tree_fields(self) -> dict[str, Any]:
        """What changes trees: the endpoint's run-only keys (URL, concurrency, cache...)
        are left out like the spec's own, so moving the server keeps the provenance."""
        return answer_values(self, ("affects_trees", "affects_answers"))


@dataclass(frozen=True)
class ParsedTree:
    tree: HarmBenefitTree
    repaired: bool
    warnings: list[str]


def request_schema(taxonomy: AirTaxonomy) -> dict[str, Any]:
    """The strict tree schema with AIR level-2 and level-3 names enumerated, so servers
    with guided decoding can only produce names the taxonomy has."""
    schema = copy.deepcopy(strict_schema(HarmBenefitTree))
    air = schema["$defs"]["AirType"]["properties"]
    air["l2"] = {"type": "string", "enum": list(taxonomy.level2), "description": "AIR level-2"}
    l3 = sorted(set(taxonomy.risks["l3"]))
    air["l3"] = {"anyOf": [{"type": "string", "enum": l3}, {"type": "null"}]}
    return schema


class TreeReply:
    """Reply parser for the chat style: JSON (repaired if needed), then the tree schema
    and the AIR taxonomy; the reason of a failure is what the re-ask tells the model."""

    name = "harm_benefit_tree"
    reask = True
    schema_in_prompt = False
    """The system prompt spells the shape out and lists every AIR name the schema
    enumerates; without a strict schema the client need not repeat it (kilobytes)."""

    def __init__(self, taxonomy: AirTaxonomy, schema: dict[str, Any] | None) -> None:
        self.taxonomy = taxonomy
        self.schema = schema

    def parse(self, content: str) -> ParsedTree:
        try:
            obj, repaired = P.load_json(content)
            tree, warnings = P.validate_tree(obj, self.taxonomy)
        except P.TreeParseError as exc:
            raise ReplyError(str(exc)) from exc
        return ParsedTree(tree, repaired, warnings)


class HalfReply:
    """Reply parser for one SafetyReporter model: a JSON list, repaired if needed."""

    schema = None
    reask = False

    def __init__(self, side: str) -> None:
        self.name = f"safetyreporter_{side}"
        self.side = side

    def parse(self, content: str) -> tuple[Any, bool]:
        obj, repaired = load_json(content)
        if not isinstance(obj, list):
            raise ReplyError(f"the {self.side} model did not answer a JSON list")
        return obj, repaired


@dataclass
class _Outcome:
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    raw: str | None = None
    parsed: ParsedTree | None = None
    formats: set[str] = field(default_factory=set)
    """Response formats the replies for this prompt were asked in."""


@register_generator
class OpenAITreeGenerator(TreeGenerator):
    """Trees from an OpenAI-compatible chat endpoint (OpenAI, Azure, vLLM, Ollama...)."""

    name: ClassVar[str] = "openai"
    Spec: ClassVar[type[GeneratorSpec]] = OpenAITreeSpec
    backend_version: ClassVar[str] = LLM_GENERATOR_VERSION
    proxy: ClassVar[bool] = False

    def __init__(self, spec: OpenAITreeSpec, *, taxonomy: AirTaxonomy | None = None) -> None:
        super().__init__(spec)
        self._taxonomy = taxonomy
        self._template_hash: str | None = None
        self.stats = RunStats()
        """Client statistics summed over this generator's runs (requests, cache hits...)."""

    @property
    def taxonomy(self) -> AirTaxonomy:
        if self._taxonomy is None:
            self._taxonomy = load_air_taxonomy(self.spec.raw_dir)
        return self._taxonomy

    def check(self) -> None:
        """The taxonomy loads and the key variable is set (LLMConfigError names it)."""
        _ = self.taxonomy
        read_api_key(self.spec.endpoint.api_key_env)

    def template_hash(self) -> str:
        if self._template_hash is None:
            text = P.system_prompt(self.taxonomy) if self.spec.style == "chat" else "bare prompt"
            self._template_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
        return self._template_hash

    @property
    def version(self) -> str:
        s = self.spec
        models = s.endpoint.model if s.style == "chat" else f"{s.harm_model}+{s.benefit_model}"
        return (
            f"{super().version}/prompt-{P.PROMPT_VERSION}-{self.template_hash()}/{s.style}/{models}"
        )

    def settings(self, **update: Any) -> EndpointSettings:
        """The endpoint with this run's overrides (model, seed, re-asks, format)."""
        return self.spec.endpoint.model_copy(update=update)

    # ------------------------------------------------------------------ styles
    def _chat(self, prompts: Sequence[str]) -> list[_Outcome]:
        s = self.spec
        parser = TreeReply(self.taxonomy, request_schema(self.taxonomy))
        system = P.system_prompt(self.taxonomy)
        tag = f"harm-benefit-tree/{P.PROMPT_VERSION}-{self.template_hash()}"
        requests = [
            ChatRequest(P.chat_messages(self.taxonomy, p, system), tag=tag) for p in prompts
        ]
        with LLMClient(self.settings(max_reasks=s.max_attempts - 1)) as client:
            results = client.complete(requests, parser, desc="trees")
            self.stats.add(client.last_run)
            fallback = client.response_format
        out = []
        for r in results:
            o = _Outcome(attempts=(r.reasks + 1) if r.content is not None else 0, raw=r.content)
            o.formats.add(r.response_format or fallback)
            if r.ok:
                o.parsed = r.value
            else:
                o.errors.append(r.error or "no answer")
            out.append(o)
        return out

    def _safetyreporter(self, prompts: Sequence[str]) -> list[_Outcome]:
        s = self.spec
        out = [_Outcome() for _ in prompts]
        pending = list(range(len(prompts)))
        for attempt in range(1, s.max_attempts + 1):
            if not pending:
                break
            seed = None if s.endpoint.seed is None else s.endpoint.seed + attempt - 1
            tag = f"safetyreporter/attempt-{attempt}"
            halves: dict[str, list[Result[Any]]] = {}
            for side, model in (("harm", s.harm_model), ("benefit", s.benefit_model)):
                settings = self.settings(
                    model=model, seed=seed, max_reasks=0, response_format="none"
                )
                requests = [
                    ChatRequest([{"role": "user", "content": prompts[i]}], tag=tag) for i in pending
                ]
                with LLMClient(settings) as client:
                    halves[side] = client.complete(requests, HalfReply(side), desc=f"{side} trees")
                    self.stats.add(client.last_run)
            still = []
            for k, i in enumerate(pending):
                o = out[i]
                o.attempts = attempt
                o.formats.add("none")
                h, b = halves["harm"][k], halves["benefit"][k]
                o.raw = f"HARMS:\n{h.content}\n\nBENEFITS:\n{b.content}"
                try:
                    if not h.ok or not b.ok:
                        raise P.TreeParseError(
                            "; ".join(
                                f"{n}: {r.error}"
                                for n, r in (("harm", h), ("benefit", b))
                                if not r.ok
                            )
                        )
                    merged = P.from_safetyreporter(h.value[0], b.value[0])
                    tree, warnings = P.validate_tree(merged, self.taxonomy)
                    o.parsed = ParsedTree(tree, h.value[1] or b.value[1], warnings)
                except P.TreeParseError as exc:
                    o.errors.append(f"attempt {attempt}: {exc}")
                    still.append(i)
            pending = still
        return out

    # -------------------------------------------------------------------- batch
    def generate(self, records: pd.DataFrame) -> list[TreeRecord]:
        self.check()
        prompts = as_texts(records["prompt"])
        outcomes = (
            self._chat(prompts) if self.spec.style == "chat" else self._safetyreporter(prompts)
        )
        base = self.provenance()
        provs: dict[str, Provenance] = {}
        out = []
        for rec, o in zip(records.itertuples(index=False), outcomes, strict=True):
            fmt = "+".join(sorted(o.formats)) or "none"
            if fmt not in provs:
                provs[fmt] = base.model_copy(update={"version": f"{base.version}/format-{fmt}"})
            common = {
                "record_id": str(rec.record_id),
                "dataset": str(rec.dataset),
                "provenance": provs[fmt],
            }
            if o.parsed is None:
                out.append(
                    TreeRecord(
                        **common,
                        status="failed",
                        attempts=o.attempts,
                        errors=o.errors or ["no answer"],
                        raw=o.raw,
                    )
                )
            else:
                out.append(
                    TreeRecord(
                        **common,
                        status="ok",
                        attempts=o.attempts,
                        repaired=o.parsed.repaired,
                        errors=o.errors,
                        warnings=o.parsed.warnings,
                        tree=o.parsed.tree,
                    )
                )
        return out
