"""How the grader's reading choices move the findings.

Two checks of the transition study against its own instrument:

* **Dialogue vs last turn.** With ``prompt_text: dialogue`` the prompt side of a record
  with earlier turns reads every turn (:mod:`harmtrace.graders.dialogue`); the judgments
  keep the last turn's own overall severity (``prompt_last_turn_severity``). For each
  sample the escalation share (overall response severity above overall prompt severity,
  the record-level definition of every table) is computed under both readings of the
  same records, with Wilson intervals; the paired difference gets Newcombe's interval
  for paired proportions and an exact McNemar test. Also reported: how many records'
  prompt severity the dialogue changes, and the share of escalations that start from a
  Safe prompt under each reading.
* **Response length.** Long responses have more room to say something harmful, and a
  bag-of-n-grams score rises with the words it sees. Responses are cut into length
  quartiles (characters, per sample); the share at Medium or higher is reported per
  quartile with Wilson intervals, and the Cochran-Armitage trend test
  (:func:`harmtrace.stats.trend_test`, quartile scores 1-4) says whether it trends with
  length (p = 1 when no response, or every one, is Medium+).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.stats.contingency_tables import mcnemar

from harmtrace.analysis.rates import wilson_interval
from harmtrace.analysis.transitions import overall_severity
from harmtrace.report.macros import Number, ci, count, pct, pp, pvalue
from harmtrace.stats import newcombe_paired_diff_ci, trend_test

MIN_RECORDS = 20
"""Below this many records in a sample a check is not reported (intervals too wide)."""


@dataclass(frozen=True)
class Share:
    k: int
    n: int
    share: float
    lo: float
    hi: float


def share(k: int, n: int, alpha: float = 0.05) -> Share:
    lo, hi = wilson_interval(np.array([k]), np.array([n]), alpha)
    return Share(int(k), int(n), k / n if n else float("nan"), float(lo[0]), float(hi[0]))


@dataclass(frozen=True)
class DialogueSensitivity:
    sample: str
    n: int
    """Records with a graded response."""
    n_dialogue: int
    """... whose prompt side read earlier turns."""
    n_changed: int
    """... whose overall prompt severity the dialogue reading changed."""
    escalation_last_turn: Share
    escalation_dialogue: Share
    from_safe_last_turn: Share
    """Escalations starting from a Safe (0) prompt, among escalations."""
    from_safe_dialogue: Share
    diff: float
    """Escalation share, dialogue minus last turn (paired, same records)."""
    diff_lo: float
    diff_hi: float
    mcnemar_p: float


def dialogue_sensitivity(df: pd.DataFrame, alpha: float = 0.05) -> dict[str, DialogueSensitivity]:
    """Per sample with earlier turns (see the module docstring); samples without any
    dialogue-read record, or with fewer than :data:`MIN_RECORDS` responses, are left out."""
    if "prompt_last_turn_severity" not in df or "prompt_scope" not in df:
        return {}
    out = {}
    for name, g in df.groupby("sample", sort=True):
        resp = overall_severity(g, "response")
        keep = resp.notna() & g["prompt_last_turn_severity"].notna()
        g, resp = g[keep], resp[keep].astype(int).to_numpy()
        read = (g["prompt_scope"] == "dialogue").fillna(False).to_numpy(dtype=bool)
        if len(g) < MIN_RECORDS or not read.any():
            continue
        dial = overall_severity(g, "prompt").astype(int).to_numpy()
        last = g["prompt_last_turn_severity"].astype(int).to_numpy()
        esc_d, esc_l = resp > dial, resp > last
        a = int((esc_d & esc_l).sum())
        b = int((esc_d & ~esc_l).sum())
        c = int((~esc_d & esc_l).sum())
        d = int((~esc_d & ~esc_l).sum())
        diff, lo, hi = newcombe_paired_diff_ci(a, b, c, d, alpha)
        p = float(mcnemar([[a, b], [c, d]], exact=True).pvalue) if b + c else 1.0
        out[str(name)] = DialogueSensitivity(
            sample=str(name),
            n=len(g),
            n_dialogue=int(read.sum()),
            n_changed=int((dial != last).sum()),
            escalation_last_turn=share(int(esc_l.sum()), len(g), alpha),
            escalation_dialogue=share(int(esc_d.sum()), len(g), alpha),
            from_safe_last_turn=share(int((esc_l & (last == 0)).sum()), int(esc_l.sum()), alpha),
            from_safe_dialogue=share(int((esc_d & (dial == 0)).sum()), int(esc_d.sum()), alpha),
            diff=float(diff),
            diff_lo=float(lo),
            diff_hi=float(hi),
            mcnemar_p=p,
        )
    return out


@dataclass(frozen=True)
class LengthStrata:
    sample: str
    edges: tuple[int, ...]
    """Character lengths at the quartile cuts (upper bounds of strata 1-3)."""
    medium_plus: tuple[Share, ...]
    """Responses at overall severity >= 2, per length quartile (shortest first)."""
    trend_p: float
    """Linear-by-linear association of quartile (1-4) and Medium+ (two-sided)."""


def length_strata(df: pd.DataFrame, alpha: float = 0.05) -> dict[str, LengthStrata]:
    """Response severity by response-length quartile, per sample (module docstring)."""
    out = {}
    for name, g in df.groupby("sample", sort=True):
        resp = overall_severity(g, "response")
        keep = resp.notna().to_numpy() & g["response"].notna().to_numpy()
        if keep.sum() < 4 * MIN_RECORDS:
            continue
        sev = resp[keep].astype(int).to_numpy()
        length = g.loc[keep, "response"].astype(str).str.len().to_numpy()
        # rank-based quartiles: ties in length never leave a stratum empty
        ranks = pd.Series(length).rank(method="first").to_numpy()
        quart = np.minimum((4 * (ranks - 1) // len(ranks)).astype(int), 3)
        hit = sev >= 2
        shares = tuple(share(int(hit[quart == q].sum()), int((quart == q).sum()), alpha)
                       for q in range(4))  # fmt: skip
        edges = tuple(int(length[quart == q].max()) for q in range(3))
        table = np.array([[int((hit & (quart == q)).sum()), int((~hit & (quart == q)).sum())]
                          for q in range(4)])  # fmt: skip
        test = trend_test(table, row_scores=np.arange(1, 5), col_scores=np.array([1, 0]))
        p = 1.0 if np.isnan(test.pvalue) else float(test.pvalue)
        out[str(name)] = LengthStrata(str(name), edges, shares, p)
    return out


def sensitivity_numbers(
    dialogue: dict[str, DialogueSensitivity], strata: dict[str, LengthStrata]
) -> dict[str, Number]:
    """Paper numbers, keyed by sample (``hh-rlhf-harmless:chosen`` and the like)."""
    nums: dict[str, Number] = {}

    def put(key: str, s: Share) -> None:
        nums[key] = pct(s.share)
        nums[f"{key} ci"] = ci(s.lo, s.hi)
        nums[f"{key} k"] = count(s.k)
        nums[f"{key} n"] = count(s.n)

    for name, r in dialogue.items():
        key = f"{name} dialogue"
        nums[f"{key} records"] = count(r.n)
        nums[f"{key} read"] = count(r.n_dialogue)
        nums[f"{key} changed"] = count(r.n_changed)
        put(f"{key} escalation last turn", r.escalation_last_turn)
        put(f"{key} escalation", r.escalation_dialogue)
        put(f"{key} from safe last turn", r.from_safe_last_turn)
        put(f"{key} from safe", r.from_safe_dialogue)
        nums[f"{key} diff"] = pp(r.diff)
        nums[f"{key} diff ci"] = ci(r.diff_lo, r.diff_hi, points=True)
        nums[f"{key} mcnemar p"] = pvalue(r.mcnemar_p)
    for name, s in strata.items():
        key = f"{name} length"
        for q, sh in enumerate(s.medium_plus, start=1):
            put(f"{key} q{q} medium", sh)
        nums[f"{key} trend p"] = pvalue(s.trend_p)
    return nums
