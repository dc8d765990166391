"""The HH-RLHF adapter: preference transcripts split into a context, a prompt and a response.

The published transcripts are plain text with ``Human:``/``Assistant:`` markers, so
the split is by those markers, and irregular turns are flagged rather than repaired.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from harmtrace.data.adapters.base import AdapterError, adapter, jsonl_rows, pick_file

_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")


def split_transcript(text: str) -> list[tuple[str, str, int]]:
    """Split an HH-RLHF transcript into (role, text, start offset) turns."""
    marks = list(_TURN.finditer(text))
    turns = []
    for k, m in enumerate(marks):
        end = marks[k + 1].start() if k + 1 < len(marks) else len(text)
        turns.append((m.group(1), text[m.end() : end], m.start()))
    return turns


_INLINE_HUMAN = re.compile(r"\s+Human:[ ]?")


def _hh_side(text: str) -> tuple[str, str, str, bool, bool] | str:
    """(context, prompt, response, inline, multi) of one transcript, or why it cannot be split.

    The prompt is the last human turn. Two quirks of the published file are
    kept visible rather than repaired: a human turn glued onto an assistant
    turn without the blank-line separator ("...kings.  Human: Then how...",
    ``inline``), and several assistant turns after the last human turn
    (``multi``; the response is then their verbatim concatenation).
    """
    turns = split_transcript(text)
    humans = [k for k, t in enumerate(turns) if t[0] == "Human"]
    if not humans:
        return "transcript has no Human turn"
    k = humans[-1]
    context_end, prompt_turn, inline = turns[k][2], k, False
    prompt = turns[k][1]
    for j in range(len(turns) - 1, k, -1):
        body, start = turns[j][1], turns[j][2]
        cuts = list(_INLINE_HUMAN.finditer(body))
        if cuts and j < len(turns) - 1:
            body_start = text.index(body, start)
            context_end = body_start + cuts[-1].start()
            prompt, prompt_turn, inline = body[cuts[-1].end() :], j, True
            break
    after = turns[prompt_turn + 1 :]
    if not after:
        return "no Assistant turn after the last Human turn"
    if len(after) == 1:
        response = after[0][1]
    else:
        first = after[0]
        response = text[text.index(first[1], first[2]) :]
    return text[:context_end], prompt, response, inline, len(after) > 1


@adapter("hh_rlhf")
def hh_rlhf(files: dict[str, Path]) -> pd.DataFrame:
    """Two records per dialogue (chosen, rejected), sharing the last human turn."""
    _, path = pick_file(files, "test.jsonl.gz")
    out = []
    for pair, (n, obj) in enumerate(jsonl_rows(path)):
        sides = {}
        for side in ("chosen", "rejected"):
            if side not in obj:
                raise AdapterError(f"{path}:{n}: no {side!r} transcript")
            sides[side] = _hh_side(obj[side])
        split_ok = all(isinstance(v, tuple) for v in sides.values())
        differs = split_ok and (
            sides["chosen"][0] != sides["rejected"][0] or sides["chosen"][1] != sides["rejected"][1]
        )
        for side, parts in sides.items():
            if isinstance(parts, str):
                context, prompt, response, inline, multi = "", "", None, False, False
                problem = parts
            else:
                context, prompt, response, inline, multi = parts
                problem = None
            out.append(
                {
                    "_source_row": n,
                    "_problem": problem,
                    "item_id": f"{pair:04d}-{side}",
                    "prompt": prompt,
                    "context": context,
                    "response": response,
                    "response_source": "anthropic-hh-rlhf",
                    "hh_pair_id": pair,
                    "hh_side": side,
                    "hh_preferred": side == "chosen",
                    "hh_context_differs": differs,
                    "hh_inline_human_turn": inline,
                    "hh_multi_assistant_turns": multi,
                    "hh_empty_response": response is not None and response.strip() == "",
                }
            )
    df = pd.DataFrame(out, dtype=object)
    df["hh_pair_id"] = df["hh_pair_id"].astype("Int64")
    df["hh_side"] = df["hh_side"].astype("string")
    flags = (
        "hh_preferred",
        "hh_context_differs",
        "hh_inline_human_turn",
        "hh_multi_assistant_turns",
        "hh_empty_response",
    )
    for col in flags:
        df[col] = df[col].astype("boolean")
    return df
