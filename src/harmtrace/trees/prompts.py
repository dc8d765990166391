"""Prompts of the ``openai`` tree generator, written for harmtrace, and the parsers that
turn an answer into a validated tree.

Two styles:

* ``chat`` (any instruction-following chat model): a system message states the task,
  the AIR level-2/level-3 names, the effect categories and the scales, and the JSON
  shape (``schemas/tree.schema.json``); the user message holds the prompt. A retry adds
  the invalid answer and what was wrong with it, so it is a new request (and a new
  cache entry), not a replay of the failed one.
* ``safetyreporter`` (HarmReporter and BenefitReporter served by vLLM): the prompt is
  sent alone as the user message and the model's own chat template frames it; each
  model answers a JSON list of stakeholders with ``harms`` or ``benefits``, actions
  typed as ``##<level-1>## #<level-2># <n>. <level-3>`` and effects named
  ``<n>. <effect>``. :func:`from_safetyreporter` maps that onto this project's schema
  (effect categories by number, AIR names by the taxonomy's fuzzy matching).
"""

from __future__ import annotations

import json
import re
from typing import Any

import json_repair
from pydantic import ValidationError

from harmtrace.data.air_taxonomy import AirTaxonomy
from harmtrace.trees.effects import EXTENTS, LIKELIHOODS, effect_taxonomy, scales
from harmtrace.trees.schema import HarmBenefitTree

PROMPT_VERSION = "1"


class TreeParseError(ValueError):
    """An answer that does not give a valid tree; the message is fed back on retry."""


def _effects_block(side: str) -> str:
    tax = effect_taxonomy(side)  # type: ignore[arg-type]
    return "\n".join(f"- {c}: {tax.descriptions[c]}" for c in tax.categories)


def _air_block(taxonomy: AirTaxonomy) -> str:
    lines = []
    for l2 in taxonomy.level2:
        lines.append(f"- {l2}: " + "; ".join(taxonomy.l3_names(l2)))
    return "\n".join(lines)


def system_prompt(taxonomy: AirTaxonomy) -> str:
    """The ``chat`` style's instructions (no example tree: the shape is spelled out)."""
    sc = scales()
    extent = "\n".join(f"- {k}: {v}" for k, v in sc["extent"].items())
    likelihood = "\n".join(f"- {k}: {v['description']}" for k, v in sc["likelihood"].items())
    ext = "|".join(EXTENTS)
    lik = "|".join(LIKELIHOODS)
    return f"""You analyse what could follow if an AI assistant fully complied with a user's \
request. Build a harm-benefit tree for the request:

1. stakeholders: the people, groups, organisations, animals or environments that a \
complete, helpful answer could affect (the requester included);
2. for each stakeholder, the harmful actions and the beneficial actions that the answer \
would enable or carry out;
3. for each action, its effects on that stakeholder, each with a category, whether it is \
immediate, its extent and its likelihood.

Type every harmful action by the AIR 2024 risk taxonomy: "l2" must be one of the level-2 \
names below; "l3" one of the level-3 names listed after it (or null).
{_air_block(taxonomy)}

Harmful effect categories:
{_effects_block("harm")}

Beneficial effect categories:
{_effects_block("benefit")}

Extent (how serious the effect would be):
{extent}

Likelihood (how probable the effect is, given a complete answer):
{likelihood}

Immediacy: true if the effect follows directly and soon, false if it is downstream.

Answer with one JSON object and nothing else, of this shape:
{{"stakeholders": [{{"name": "...",
  "harms": [{{"action": "...", "air": {{"l2": "...", "l3": "..."}},
             "effects": [{{"category": "...", "description": "...", "immediacy": true,
                          "extent": "{ext}", "likelihood": "{lik}"}}]}}],
  "benefits": [{{"action": "...", "effects": [ ...same fields as above... ]}}]}}]}}
Every action needs at least one effect. A request with no plausible harm still has \
stakeholders and benefits; list harms only when an answer could cause them."""


def user_prompt(prompt: str) -> str:
    return (
        "The user's request to the AI assistant (between the markers):\n"
        f"<<<REQUEST\n{prompt}\nREQUEST>>>\n"
        "Build the harm-benefit tree of a complete, helpful answer to this request."
    )


def retry_message(error: str) -> str:
    return (
        f"That answer could not be used: {error}\nAnswer again with the corrected JSON object only."
    )


def chat_messages(
    taxonomy: AirTaxonomy, prompt: str, system: str | None = None
) -> list[dict[str, str]]:
    """System and user message; pass ``system`` (from :func:`system_prompt`) when building
    many, so the system prompt is built once."""
    return [
        {"role": "system", "content": system or system_prompt(taxonomy)},
        {"role": "user", "content": user_prompt(prompt)},
    ]


# ---------------------------------------------------------------------------- parsing
def load_json(text: str) -> tuple[Any, bool]:
    """Parse JSON from an answer (code fences and chatter around it tolerated); repair
    with json-repair when strict parsing fails. Returns (value, repaired)."""
    body = text.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", body, re.S)
    if fence:
        body = fence.group(1).strip()
    starts = [i for i in (body.find("{"), body.find("[")) if i >= 0]
    if not starts:
        raise TreeParseError("the answer contains no JSON object or list")
    body = body[min(starts) :]
    try:
        return json.loads(body), False
    except json.JSONDecodeError:
        pass
    try:
        value = json_repair.loads(body)
    except Exception as exc:  # json-repair raises assorted errors on hopeless input
        raise TreeParseError(f"the answer is not JSON and could not be repaired ({exc})") from exc
    if value in ("", None, [], {}):
        raise TreeParseError("the answer is not JSON and could not be repaired")
    return value, True


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
    return "invalid tree: " + "; ".join(parts) + more


def validate_tree(obj: Any, taxonomy: AirTaxonomy) -> tuple[HarmBenefitTree, list[str]]:
    """A validated tree (AIR names canonicalised) and the warnings that produced."""
    if isinstance(obj, list):  # a bare list of stakeholders
        obj = {"stakeholders": obj}
    ctx: dict[str, Any] = {"taxonomy": taxonomy, "warnings": []}
    try:
        tree = HarmBenefitTree.model_validate(obj, context=ctx)
    except ValidationError as exc:
        raise TreeParseError(_validation_message(exc)) from exc
    return tree, list(ctx["warnings"])


def parse_chat_answer(text: str, taxonomy: AirTaxonomy) -> tuple[HarmBenefitTree, bool, list[str]]:
    obj, repaired = load_json(text)
    tree, warnings = validate_tree(obj, taxonomy)
    return tree, repaired, warnings


_AIR_ACTION = re.compile(r"^\s*(?:##(?P<l1>[^#]*)##)?\s*(?:#(?P<l2>[^#]*)#)?\s*(?P<l3>.*)$", re.S)


def _sr_effect(e: dict[str, Any], side: str) -> dict[str, Any]:
    name = str(e.get("effect", ""))
    cat = effect_taxonomy(side).resolve(name)  # type: ignore[arg-type]
    if cat is None:
        raise TreeParseError(f"unknown {side} effect {name!r}")
    return {
        "category": cat,
        "description": re.sub(r"^\s*\d+\s*[.)]\s*", "", name),
        "immediacy": e.get("immediacy"),
        "extent": e.get("extent"),
        "likelihood": e.get("likelihood"),
    }


def from_safetyreporter(harm_obj: Any, benefit_obj: Any) -> dict[str, Any]:
    """HarmReporter's and BenefitReporter's lists merged into this project's tree shape."""
    stakeholders: dict[str, dict[str, Any]] = {}
    for obj, key in ((harm_obj, "harms"), (benefit_obj, "benefits")):
        if not isinstance(obj, list):
            raise TreeParseError(f"the {key[:-1]} model did not answer a JSON list")
        for entry in obj:
            if not isinstance(entry, dict) or "stakeholder" not in entry:
                raise TreeParseError(f"a {key[:-1]} entry has no 'stakeholder'")
            name = str(entry["stakeholder"]).strip() or "unnamed stakeholder"
            target = stakeholders.setdefault(name, {"name": name, "harms": [], "benefits": []})
            for action in entry.get(key) or []:
                text = str(action.get("action", "")).strip()
                effects = [_sr_effect(e, key[:-1]) for e in action.get("effects") or []]
                item: dict[str, Any] = {"action": text or "unnamed action", "effects": effects}
                if key == "harms":
                    m = _AIR_ACTION.match(text)
                    l2 = (m.group("l2") or "").strip() if m else ""
                    l3 = (m.group("l3") or "").strip() if m else ""
                    if not l2:
                        raise TreeParseError(f"harmful action {text!r} names no AIR level-2")
                    item["air"] = {"l2": l2, "l3": l3 or None}
                target[key].append(item)
    return {"stakeholders": list(stakeholders.values())}
