"""Put one shard of a prompt set to a target; its answers become records like any other.

Method.

1. Each prompt record becomes one conversation: the target's system prompt (its
   condition), the record's earlier turns (``context``; an ``Human:`` / ``Assistant:``
   transcript is split into turns, any other non-empty context is one earlier user turn),
   then the prompt. A prompt that is empty, or holds text that is not valid Unicode,
   stops the shard with an error naming the record: the records stage should have
   refused it, and guessing would make an answer to something nobody asked.
2. The target answers every conversation (:meth:`harmtrace.targets.base.Target.generate`).
   Each answer is appended to a progress file (JSON lines, flushed and fsynced) the moment
   it is final, under the target's fingerprint. A killed job, rerun, reads the file and
   asks the target only for the prompts it lacks; a warm rerun asks for nothing. Lines
   under another fingerprint (other weights, system prompt or sampling) are never reused.
3. Answer records: ``dataset`` is ``<prompt set>--<target>``, ``item_id`` the prompt's
   own, ``response_source`` the target's name, so ``record_id`` is stable and distinct per
   condition. The prompt set's label columns are kept; ``gen_*`` columns carry the
   per-answer provenance (finish reason, token counts, truncation, error) and the
   condition (prompt set, target, harmful or benign set, the target's settings as JSON).
   A failed answer keeps its row, with a null response and ``gen_error`` saying why.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from harmtrace.data.normalize import record_id
from harmtrace.errors import HarmtraceError
from harmtrace.targets.base import Answer, ConversationError, Target, conversation

ANSWER_SEP = "--"
"""Between prompt set and target in an answer dataset's name."""
PREFIX = "gen_"
PromptKind = Literal["harmful", "benign"]
_TURN = re.compile(r"\n*\s*(Human|Assistant):\s?", flags=re.M)
_ROLES = {"Human": "user", "Assistant": "assistant"}


class RespondError(HarmtraceError):
    """A prompt cannot be put to the model, or saved answers do not fit the prompts."""


def answer_dataset(prompt_set: str, target: str) -> str:
    return f"{prompt_set}{ANSWER_SEP}{target}"


def context_turns(context: str) -> list[dict[str, str]]:
    """Earlier turns as chat messages (see the module docstring)."""
    if not context or not context.strip():
        return []
    parts = _TURN.split(context)
    if len(parts) < 3 or parts[0].strip():
        return [{"role": "user", "content": context.strip()}]
    return [
        {"role": _ROLES[role], "content": text.strip()}
        for role, text in zip(parts[1::2], parts[2::2], strict=True)
        if text.strip()
    ]


def _check_text(value: Any, what: str, rid: str) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        raise RespondError(f"record {rid}: {what} is missing; nothing to ask the model")
    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RespondError(
            f"record {rid}: {what} is not valid Unicode (position {exc.start}); fix the source"
        ) from exc
    if what == "prompt" and not text.strip():
        raise RespondError(f"record {rid}: the prompt is empty; nothing to ask the model")
    return text


def conversations(prompts: pd.DataFrame, system_prompt: str | None) -> list[list[dict[str, str]]]:
    out = []
    for rid, prompt, context in zip(
        prompts["record_id"], prompts["prompt"], prompts["context"], strict=True
    ):
        text = _check_text(prompt, "prompt", str(rid))
        ctx = _check_text("" if context is None or context is pd.NA else context, "context", rid)
        out.append(conversation(system_prompt, context_turns(ctx), text))
    return out


@dataclass
class Progress:
    """The append-only answer log of one shard (see step 2 of the module docstring)."""

    path: Path
    fingerprint: str

    def load(self) -> dict[str, Answer]:
        if not self.path.is_file():
            return {}
        out: dict[str, Answer] = {}
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the last line of a killed write
                if entry.get("fingerprint") == self.fingerprint:
                    out[entry["record_id"]] = Answer.from_json(entry["answer"])
        return out

    def append(self, rid: str, answer: Answer) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(
            {"fingerprint": self.fingerprint, "record_id": rid, "answer": answer.to_json()},
            sort_keys=True,
        )
        with self.path.open("a+b") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell():  # a write cut off by a kill leaves no newline: start a fresh line
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")
            fh.write((line + "\n").encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())


@dataclass(frozen=True)
class ShardAnswers:
    records: pd.DataFrame
    generated: int
    """Answers generated by this run (0 on a warm rerun)."""
    reused: int
    failed: int


def answer_shard(
    prompts: pd.DataFrame,
    *,
    prompt_set: str,
    target_name: str,
    target: Target,
    kind: PromptKind,
    progress: Path | None,
) -> ShardAnswers:
    """Answer records for one shard of prompt records (one row per prompt, same order)."""
    if prompts.empty:
        raise RespondError(f"{prompt_set}: no prompts in this shard")
    convs = conversations(prompts, target.spec.system_prompt)
    ids = prompts["record_id"].astype(str).tolist()
    log = Progress(progress, target.fingerprint()) if progress is not None else None
    saved = log.load() if log is not None else {}
    done = {i for i, rid in enumerate(ids) if rid in saved}
    fresh: dict[int, Answer] = {}

    def keep(index: int, answer: Answer) -> None:
        fresh[index] = answer
        if log is not None:
            log.append(ids[index], answer)

    if len(done) < len(ids):
        target.check()
        try:
            got = target.generate(convs, done=sorted(done), on_answer=keep)
        except ConversationError as exc:
            row = prompts.iloc[exc.index]
            raise RespondError(
                f"{prompt_set}: record {row['record_id']} (item {row['item_id']}): {exc.reason}"
            ) from exc
        for i, answer in enumerate(got):
            if i not in done and answer is not None:
                fresh.setdefault(i, answer)
    answers = [saved[rid] if i in done else fresh.get(i) for i, rid in enumerate(ids)]
    lacking = [ids[i] for i, a in enumerate(answers) if a is None]
    if lacking:
        raise RespondError(
            f"target {target_name} returned no answer for {len(lacking)} prompt(s), e.g. "
            f"record {lacking[0]}; the backend broke its contract"
        )
    records = answer_records(prompts, answers, prompt_set, target_name, target, kind)
    failed = sum(a.finish_reason == "error" for a in answers if a is not None)
    return ShardAnswers(records, len(ids) - len(done), len(done), failed)


def answer_records(
    prompts: pd.DataFrame,
    answers: Sequence[Answer | None],
    prompt_set: str,
    target_name: str,
    target: Target,
    kind: PromptKind,
) -> pd.DataFrame:
    """The records table of one shard's answers (see step 3 of the module docstring)."""
    dataset = answer_dataset(prompt_set, target_name)
    settings = json.dumps(target.provenance(), sort_keys=True, separators=(",", ":"))
    labels = [c for c in prompts.columns if c not in _CORE and not c.startswith(PREFIX)]
    out = pd.DataFrame(
        {
            "record_id": [record_id(dataset, str(i), target_name) for i in prompts["item_id"]],
            "dataset": dataset,
            "item_id": prompts["item_id"].astype(str).to_numpy(),
            "prompt": prompts["prompt"].to_numpy(),
            "context": prompts["context"].fillna("").to_numpy(),
            "response": [None if a.finish_reason == "error" else a.text for a in answers],
            "response_source": target_name,
        }
    )
    for col in labels:
        out[col] = prompts[col].to_numpy()
    out[f"{PREFIX}prompt_set"] = prompt_set
    out[f"{PREFIX}prompt_record_id"] = prompts["record_id"].astype(str).to_numpy()
    out[f"{PREFIX}target"] = target_name
    out[f"{PREFIX}prompt_kind"] = kind
    out[f"{PREFIX}finish_reason"] = [a.finish_reason for a in answers]
    out[f"{PREFIX}prompt_tokens"] = pd.array([a.prompt_tokens for a in answers], dtype="Int64")
    out[f"{PREFIX}completion_tokens"] = pd.array(
        [a.completion_tokens for a in answers], dtype="Int64"
    )
    out[f"{PREFIX}prompt_truncated"] = pd.array(
        [a.prompt_truncated for a in answers], dtype="boolean"
    )
    out[f"{PREFIX}error"] = [a.error for a in answers]
    out[f"{PREFIX}settings"] = settings
    for col in out.columns:
        if pd.api.types.is_object_dtype(out[col]) or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].astype("string")
    return out


_CORE = ("record_id", "dataset", "item_id", "prompt", "context", "response", "response_source")


def sample_prompts(prompts: pd.DataFrame, max_prompts: int | None) -> pd.DataFrame:
    """At most ``max_prompts`` records, chosen by record id (a stable, order-free sample
    that does not favour the head of the file); None keeps all, in file order."""
    if max_prompts is None or len(prompts) <= max_prompts:
        return prompts.reset_index(drop=True)
    keep = prompts["record_id"].astype(str).sort_values().index[:max_prompts]
    return prompts.loc[sorted(keep)].reset_index(drop=True)


def target_settings(records: pd.DataFrame) -> Mapping[str, Any]:
    """The target provenance shared by every answer record of one table."""
    values = records[f"{PREFIX}settings"].dropna().unique()
    if len(values) != 1:
        raise RespondError(f"answer records hold {len(values)} different target settings")
    return json.loads(values[0])


def gather_answers(shards: Sequence[pd.DataFrame], prompts: pd.DataFrame) -> pd.DataFrame:
    """Shards in prompt order; every sampled prompt answered exactly once (records in =
    records out), or an error saying which shard is missing or stale."""
    if not shards:
        raise RespondError("no answer shards given")
    out = pd.concat(shards, ignore_index=True) if len(shards) > 1 else shards[0]
    key = f"{PREFIX}prompt_record_id"
    dup = out[key].duplicated()
    if dup.any():
        raise RespondError(
            f"{int(dup.sum())} prompt(s) answered in more than one shard, e.g. record "
            f"{out.loc[dup, key].iloc[0]}; the shards overlap (made with different N?)"
        )
    want = prompts["record_id"].astype(str)
    have = pd.Index(out[key].astype(str))
    lacking = ~want.isin(have)
    extra = ~have.isin(pd.Index(want))
    if lacking.any() or extra.any():
        raise RespondError(
            f"shards answer {len(out)} prompts, the prompt set has {len(want)}: "
            f"{int(lacking.sum())} prompt(s) lack an answer, {int(extra.sum())} answer(s) "
            "match no prompt; a shard is missing or stale"
        )
    settings = out[f"{PREFIX}settings"].unique()
    if len(settings) != 1:
        raise RespondError("shards were answered under different target settings; rerun them")
    return out.set_index(key, drop=False).loc[want.to_numpy()].reset_index(drop=True)
