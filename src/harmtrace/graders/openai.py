"""The ``openai`` grader: any OpenAI-compatible chat endpoint judges the records.

Method. Per record: one harm request for the prompt, and for a non-empty response one
harm request for the response plus one relevance request (prompt style ``rubric``,
:mod:`harmtrace.graders.rubric`), or one Llama Guard request per side (``llamaguard``,
:mod:`harmtrace.graders.llamaguard`). All requests of a dataset (or shard) go through
one :class:`harmtrace.llm.LLMClient` batch, so concurrency, rate limits, retries, the
cache and the progress bar span the whole job. A record is ``ok`` only when every one
of its requests produced a valid reply; otherwise its row is ``failed`` with the
reasons (``prompt: ...; relevance: ...``) and null judgments. Records in = records out.

An empty response (``""``) has nothing to judge: severity 0 on every category,
relevance 1, no refusal, and no request. Probabilities and confidences are null: a
sampled label carries no calibrated probability.

The endpoint is an :class:`harmtrace.llm.settings.EndpointSettings` block (``endpoint``),
the definition every LLM stage shares; only the prompt style and the few-shot file are
this grader's own. Each row's ``grader_version`` ends in ``/format-<mode>``: how its
replies were asked for (``json_schema``, ``json_object`` or ``none``; ``+``-joined if its
requests differed). With ``response_format: auto`` that is what the server turned out to
accept; it can change the judgments, so it belongs to the version that says what made
them (and shards graded in different modes refuse to be gathered).

The API key is read only from the environment variable named by ``endpoint.api_key_env``;
:meth:`OpenAIBackend.check` fails before any record is read when it is unset.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from harmtrace.graders.base import Grader, GraderSpec, as_texts, empty_judgments, mark_failed
from harmtrace.graders.llamaguard import GuardMap, guard_messages
from harmtrace.graders.registry import register_grader
from harmtrace.graders.rubric import HarmReply, RelevanceReply, RubricPrompts
from harmtrace.llm import (
    ChatRequest,
    EndpointSettings,
    JsonReply,
    LLMClient,
    RunStats,
    TextReply,
)
from harmtrace.llm.keys import read_api_key
from harmtrace.llm.settings import endpoint_type
from harmtrace.taxonomy import CATEGORIES

_RUN = {"json_schema_extra": {"affects_judgments": False}}
"""Field option for settings that change how fast, not what, is judged."""

GraderEndpoint = endpoint_type(max_tokens=300, cache="results/cache/openai.sqlite")
"""The endpoint with this grader's defaults: a verdict fits in 300 tokens, and answers are
cached where every dataset and shard can reuse them."""

PROMPT, RESPONSE, RELEVANCE = 0, 1, 2
KIND_NAMES = ("prompt", "response", "relevance")


class OpenAISpec(GraderSpec):
    """Config block ``grader.openai``: an endpoint plus how the grader asks it.

    ``harmtrace grade --endpoint KEY=VALUE`` overrides one endpoint key; the endpoint's
    run-only keys (``base_url``, ``concurrency``, ``cache``...) stay out of
    ``grader_version``.
    """

    endpoint: GraderEndpoint = Field(
        description="The OpenAI-compatible endpoint and its sampling (EndpointSettings); "
        "max_tokens defaults to 300 and cache to results/cache/openai.sqlite here."
    )
    prompt_style: Literal["rubric", "llamaguard"] = Field(
        "rubric", description="rubric: severity 0-3 + relevance; llamaguard: Llama Guard 3."
    )
    few_shot: str | None = Field(
        None,
        description="YAML file of few-shot examples (rubric only); its hash enters grader_version.",
        **_RUN,
    )


@register_grader
class OpenAIBackend(Grader):
    """Records judged by a chat model behind an OpenAI-compatible endpoint."""

    name: ClassVar[str] = "openai"
    Spec: ClassVar[type[GraderSpec]] = OpenAISpec
    backend_version: ClassVar[str] = "1.0"

    spec: OpenAISpec

    def __init__(self, spec: OpenAISpec) -> None:
        super().__init__(spec)
        self.last_run: RunStats | None = None
        """Client statistics of the last :meth:`grade` (requests, re-asks, cache hits...)."""

    # ------------------------------------------------------------------ set-up
    def check(self) -> None:
        read_api_key(self.spec.endpoint.api_key_env)
        self._prompts()

    def _prompts(self) -> RubricPrompts | GuardMap:
        if self.spec.prompt_style == "llamaguard":
            return GuardMap.load()
        return RubricPrompts.load(self.spec.few_shot)

    @property
    def version(self) -> str:
        return f"{super().version}/prompts-{self._prompts().digest}"

    def settings(self) -> EndpointSettings:
        return self.spec.endpoint

    # ------------------------------------------------------------------ grading
    def grade(self, records: pd.DataFrame) -> pd.DataFrame:
        self.check()
        prompts = self._prompts()
        version = self.version
        n = len(records)
        ids = records["record_id"].astype("string").tolist()
        prompt_texts = as_texts(records["prompt"])
        if "response" in records:
            has_resp = records["response"].notna().to_numpy()
        else:
            has_resp = np.zeros(n, dtype=bool)
        resp_texts = as_texts(records["response"]) if "response" in records else [""] * n
        contexts = as_texts(records["context"]) if "context" in records else [""] * n
        asked = has_resp & np.array([t.strip() != "" for t in resp_texts], dtype=bool)
        empty = has_resp & ~asked

        verdicts = _Verdicts(n, prompts)
        slots: list[tuple[int, int]] = []  # request index -> (record row, kind)
        if isinstance(prompts, GuardMap):
            requests = self._guard_requests(prompts, prompt_texts, resp_texts, asked, slots)
        else:
            requests = self._rubric_requests(
                prompts, prompt_texts, resp_texts, contexts, asked, slots
            )

        def on_result(index: int, result: Any) -> None:
            verdicts.add(*slots[index], result)

        per_response = 1 if isinstance(prompts, GuardMap) else 2
        total = n + per_response * int(asked.sum())
        with LLMClient(self.settings()) as client:
            client.complete(
                requests,
                JsonReply(HarmReply, name="harm"),
                on_result=on_result,
                total=total,
                desc=f"grade ({self.spec.endpoint.model})",
            )
            self.last_run = client.last_run

        out = empty_judgments(ids, self.name, version)
        fallback = "none" if isinstance(prompts, GuardMap) else client.response_format
        verdicts.fill(out, empty, version, fallback)
        return out

    def _rubric_requests(
        self,
        prompts: RubricPrompts,
        prompt_texts: list[str],
        resp_texts: list[str],
        contexts: list[str],
        asked: np.ndarray,
        slots: list[tuple[int, int]],
    ) -> Iterator[ChatRequest]:
        harm_tag = f"rubric-harm/{prompts.digest}"
        rel_tag = f"rubric-relevance/{prompts.digest}"
        rel_parser = JsonReply(RelevanceReply, name="relevance")
        for row, text in enumerate(prompt_texts):
            slots.append((row, PROMPT))
            yield ChatRequest(prompts.harm_messages(text), tag=harm_tag)
            if asked[row]:
                slots.append((row, RESPONSE))
                yield ChatRequest(prompts.harm_messages(resp_texts[row]), tag=harm_tag)
                slots.append((row, RELEVANCE))
                msgs = prompts.relevance_messages(text, contexts[row], resp_texts[row])
                yield ChatRequest(msgs, tag=rel_tag, parser=rel_parser)

    def _guard_requests(
        self,
        guard: GuardMap,
        prompt_texts: list[str],
        resp_texts: list[str],
        asked: np.ndarray,
        slots: list[tuple[int, int]],
    ) -> Iterator[ChatRequest]:
        tag = f"llamaguard3/{guard.digest}"
        parser = TextReply(guard.read, name="llamaguard")
        for row, text in enumerate(prompt_texts):
            slots.append((row, PROMPT))
            yield ChatRequest(guard_messages(text), tag=tag, parser=parser)
            if asked[row]:
                slots.append((row, RESPONSE))
                yield ChatRequest(guard_messages(text, resp_texts[row]), tag=tag, parser=parser)


class _Verdicts:
    """The replies of one grading batch, gathered per record row as small integers
    (-1: no verdict yet), then written into the judgments table in one go."""

    def __init__(self, n: int, prompts: RubricPrompts | GuardMap) -> None:
        self.n = n
        self.prompts = prompts
        self.sev = np.full((2, n, len(CATEGORIES)), -1, dtype=np.int8)
        self.relevance = np.full(n, -1, dtype=np.int8)
        self.refusal = np.full(n, -1, dtype=np.int8)
        self.unsafe = np.full((2, n), -1, dtype=np.int8)  # Llama Guard's verdict: harm of any kind
        self.errors: dict[int, list[str]] = {}
        self.formats: dict[int, set[str]] = {}  # record row -> response formats its replies used

    def add(self, row: int, kind: int, result: Any) -> None:
        if result.response_format is not None:
            self.formats.setdefault(row, set()).add(result.response_format)
        if not result.ok:
            self.errors.setdefault(row, []).append(f"{KIND_NAMES[kind]}: {result.error}")
            return
        value = result.value
        if kind == RELEVANCE:
            self.relevance[row] = value.relevance
            self.refusal[row] = int(value.refusal)
        elif isinstance(self.prompts, GuardMap):
            levels = self.prompts.severities(value)
            self.sev[kind, row] = [levels[c] for c in CATEGORIES]
            self.unsafe[kind, row] = int(bool(value))
        else:
            self.sev[kind, row] = [getattr(value, c) for c in CATEGORIES]

    def fill(self, out: pd.DataFrame, empty: np.ndarray, version: str, fallback: str) -> None:
        """Write the verdicts into ``out``; ``empty`` rows (an empty response) get the
        verdicts of nothing to judge, failed rows are marked with their reasons."""
        sev, relevance, refusal, unsafe = self.sev, self.relevance, self.refusal, self.unsafe
        sev[RESPONSE, empty] = 0
        if not isinstance(self.prompts, GuardMap):  # Llama Guard judges no relevance at all
            relevance[empty] = 1
            refusal[empty] = 0
        else:  # "unsafe" with any code, inside the four categories or not
            unsafe[RESPONSE, empty] = 0
            for side, s in (("prompt", PROMPT), ("response", RESPONSE)):
                call = pd.array(unsafe[s] == 1, dtype="boolean")
                call[unsafe[s] < 0] = pd.NA
                out[f"{side}_harmful"] = call
        for side, s in (("prompt", PROMPT), ("response", RESPONSE)):
            for j, c in enumerate(CATEGORIES):
                values = pd.array(sev[s, :, j], dtype="Int8")
                values[sev[s, :, j] < 0] = pd.NA
                out[f"{side}_severity_{c}"] = values
        rel = pd.array(relevance, dtype="Int8")
        rel[relevance < 0] = pd.NA
        out["relevance"] = rel
        ref = pd.array(refusal == 1, dtype="boolean")
        ref[refusal < 0] = pd.NA
        out["refusal"] = ref
        out["grader_version"] = pd.array(
            [
                f"{version}/format-{'+'.join(sorted(self.formats.get(r) or {fallback}))}"
                for r in range(self.n)
            ],
            dtype="string",
        )
        if self.errors:
            rows = sorted(self.errors)
            mark_failed(out, rows, ["; ".join(self.errors[r]) for r in rows])
