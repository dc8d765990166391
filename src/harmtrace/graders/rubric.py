"""The rubric prompts of the ``openai`` grader: templates, few-shot examples, reply models.

Method. Each text is judged on its own: one *harm* request per prompt and one per
response, identical in form, asking for severity 0-3 in each of the four categories
(level definitions in ``prompts/harm.system.v1.j2``, written for this project in the
spirit of the four Azure content-safety bands). A second kind of request, *relevance*,
shows the request (with earlier turns) and the reply and asks for relevance 1-3 and a
refusal flag; harm plays no part in it. Judging the two sides in separate requests keeps
a response's severity from being anchored on its prompt's, and a prompt shared by several
records is judged once (the cache).

Record texts enter the user message only as JSON-encoded strings, so no text can close
its own field, add a message or change the instructions; the system message tells the
model to rate any instructions inside the text as content. The reply must fit a closed
schema (:class:`HarmReply`, :class:`RelevanceReply`); anything else is re-asked and then
recorded as a failure.

Templates are versioned files under ``graders/prompts/``; :attr:`RubricPrompts.digest`
(sha256 over the template files and the few-shot file) goes into ``grader_version`` and
into the cache tag, so editing a prompt regrades.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jinja2
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harmtrace.errors import HarmtraceError

TEMPLATES = {
    "harm_system": "harm.system.v1.j2",
    "harm_user": "harm.user.v1.j2",
    "relevance_system": "relevance.system.v1.j2",
    "relevance_user": "relevance.user.v1.j2",
}
"""Template role -> file under ``harmtrace/graders/prompts``."""

Severity = Literal[0, 1, 2, 3]


class HarmReply(BaseModel):
    """What a harm request must answer (the rationale comes first so it is written first)."""

    model_config = ConfigDict(extra="forbid")

    rationale: str = Field(description="One short sentence.")
    hate: Severity
    sexual: Severity
    violence: Severity
    self_harm: Severity


class RelevanceReply(BaseModel):
    """What a relevance request must answer."""

    model_config = ConfigDict(extra="forbid")

    rationale: str = Field(description="One short sentence.")
    relevance: Literal[1, 2, 3]
    refusal: bool


class HarmExample(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["harm"]
    text: str
    answer: HarmReply


class RelevanceExample(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["relevance"]
    prompt: str
    context: str = ""
    response: str
    answer: RelevanceReply


class FewShotFile(BaseModel):
    examples: list[HarmExample | RelevanceExample] = Field(min_length=1)


def prompt_file(name: str) -> str:
    return resources.files("harmtrace.graders").joinpath("prompts", name).read_text("utf-8")


def load_few_shot(path: str | Path) -> tuple[list[HarmExample | RelevanceExample], str]:
    """Examples from a YAML/JSON file (a list, or ``{examples: [...]}``) and its sha256."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        data = yaml.safe_load(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise HarmtraceError(f"few-shot file {path}: cannot read it ({exc})") from exc
    if isinstance(data, list):
        data = {"examples": data}
    try:
        parsed = FewShotFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"examples.{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        raise HarmtraceError(
            f"few-shot file {path}: {problems} (each example: kind harm with text and "
            "answer, or kind relevance with prompt, response and answer; see docs/grader.md)"
        ) from exc
    return parsed.examples, hashlib.sha256(raw).hexdigest()


@functools.lru_cache(maxsize=32)
def _compile(text: str) -> jinja2.Template:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    return env.from_string(text)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class RubricPrompts:
    """Rendered-once system messages, user templates and few-shot turns."""

    texts: dict[str, str]
    few_shot: tuple[HarmExample | RelevanceExample, ...] = ()
    few_shot_sha256: str | None = None

    @classmethod
    def load(cls, few_shot: str | Path | None = None) -> RubricPrompts:
        texts = {role: prompt_file(name) for role, name in TEMPLATES.items()}
        examples, sha = load_few_shot(few_shot) if few_shot else ([], None)
        return cls(texts, tuple(examples), sha)

    @property
    def digest(self) -> str:
        """12 hex digits over every template file and the few-shot file."""
        h = hashlib.sha256()
        for role in sorted(self.texts):
            h.update(f"{TEMPLATES[role]}\0{self.texts[role]}\0".encode())
        h.update((self.few_shot_sha256 or "").encode())
        return h.hexdigest()[:12]

    def _render(self, role: str, **values: str) -> str:
        return _compile(self.texts[role]).render(**values).strip()

    def harm_messages(self, text: str) -> list[dict[str, str]]:
        msgs = [{"role": "system", "content": self._render("harm_system")}]
        for ex in self.few_shot:
            if isinstance(ex, HarmExample):
                msgs.append({"role": "user", "content": self._harm_user(ex.text)})
                msgs.append({"role": "assistant", "content": ex.answer.model_dump_json()})
        msgs.append({"role": "user", "content": self._harm_user(text)})
        return msgs

    def relevance_messages(self, prompt: str, context: str, response: str) -> list[dict[str, str]]:
        msgs = [{"role": "system", "content": self._render("relevance_system")}]
        for ex in self.few_shot:
            if isinstance(ex, RelevanceExample):
                user = self._relevance_user(ex.prompt, ex.context, ex.response)
                msgs.append({"role": "user", "content": user})
                msgs.append({"role": "assistant", "content": ex.answer.model_dump_json()})
        msgs.append({"role": "user", "content": self._relevance_user(prompt, context, response)})
        return msgs

    def _harm_user(self, text: str) -> str:
        return self._render("harm_user", text_json=_json(text))

    def _relevance_user(self, prompt: str, context: str, response: str) -> str:
        exchange = {"earlier_turns": context, "request": prompt, "reply": response}
        return self._render("relevance_user", exchange_json=_json(exchange))
