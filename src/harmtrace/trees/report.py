"""Evaluation, steering rates, figures and paper numbers of the harm-benefit strand
(notebook 05); its LaTeX tables are formatted in :mod:`harmtrace.trees.tables`.

Everything the notebook shows is computed here from the workflow's outputs: the
harm-benefit tables (``results/harm_benefit/<generator>/<dataset>.parquet``), the
fitted weights with their intervals, the embedded grader's judgments and the records.
The aggregation is always evaluated on cross-fitted probabilities (leave-one-source-out
for the F1 table), never on the trees it was fitted to.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from harmtrace.data.provenance import read_records
from harmtrace.io import read_table
from harmtrace.report.macros import Number, count, pct, real, text
from harmtrace.report.macros import ci as ci_number
from harmtrace.trees.evaluation import F1, grader_prompt_flags, prompt_f1
from harmtrace.trees.harm_benefit import benign_mask
from harmtrace.trees.steering import FITTED, flag_rate_changes

OOF_COLUMN = {"loso": "oof_prob_loso", "kfold": "oof_prob_kfold"}


@dataclass(frozen=True)
class Inputs:
    """What notebook 05 loads: per dataset, records and harm-benefit tables per generator."""

    records: dict[str, pd.DataFrame]
    tables: dict[str, dict[str, pd.DataFrame]]
    """generator -> dataset -> harm_benefit table"""
    judgments: dict[str, pd.DataFrame]
    weights: dict[str, dict[str, Any]]
    """generator -> weights.json payload"""
    ci: dict[str, pd.DataFrame]


def load_inputs(
    datasets: Sequence[str],
    generators: Sequence[str],
    records_dir: Path,
    harm_benefit_dir: Path,
    judgments_dir: Path | None = None,
    grader: str = "embedded",
) -> Inputs:
    records = {d: read_records(Path(records_dir) / f"{d}.parquet", dataset=d) for d in datasets}
    tables: dict[str, dict[str, pd.DataFrame]] = {}
    weights, ci = {}, {}
    for g in generators:
        folder = Path(harm_benefit_dir) / g
        tables[g] = {d: read_table(folder / f"{d}.parquet", "harm_benefit") for d in datasets}
        weights[g] = json.loads((folder / "weights.json").read_text(encoding="utf-8"))
        ci[g] = read_table(folder / "weights_ci.parquet", "tree_weights")
    judgments = {}
    if judgments_dir is not None:
        for d in datasets:
            judgments[d] = read_table(Path(judgments_dir) / grader / f"{d}.parquet", "judgments")
    return Inputs(records, tables, judgments, weights, ci)


def system_labels(
    inputs: Inputs, grader_label: str = "Embedded grader (flag: severity 2+)"
) -> dict[str, str]:
    """Display names of the systems in the F1 table; proxy trees are marked as such."""
    out = {"grader": grader_label}
    if HARM_SYSTEM in _judgment_systems(inputs):
        out[HARM_SYSTEM] = "Embedded grader, harm head (harm of any kind)"
    for g, by_ds in inputs.tables.items():
        proxy = all(bool(t["proxy"].all()) for t in by_ds.values())
        out[g] = f"Aggregation, {g} trees" + (" (proxy)" if proxy else "")
    return out


HARM_SYSTEM = "harmhead"
"""System id of the embedded grader's harm head (its ``prompt_harmful`` call)."""


def _judgment_systems(inputs: Inputs) -> dict[str, Callable[[pd.DataFrame], pd.Series]]:
    """Systems read from the grader's judgments: the category flag (severity >= 2), and
    the harm head's call where every judgments table carries one (the embedded grader)."""
    if not inputs.judgments:
        return {}
    systems: dict[str, Callable[[pd.DataFrame], pd.Series]] = {"grader": grader_prompt_flags}
    tables = inputs.judgments.values()
    if all("prompt_harmful" in j and j["prompt_harmful"].notna().all() for j in tables):
        systems[HARM_SYSTEM] = lambda j: j["prompt_harmful"].astype(bool)
    return systems


def benign_ids(records: pd.DataFrame) -> pd.Index:
    return pd.Index(records.loc[benign_mask(records), "record_id"].astype(str))


def aggregation_flags(table: pd.DataFrame, threshold: float, scheme: str = "loso") -> pd.Series:
    """Cross-fitted flags; null where the tree failed or the prompt was not in the fit."""
    p = table[OOF_COLUMN[scheme]]
    return (p >= threshold).astype("boolean").mask(p.isna(), pd.NA)


@dataclass(frozen=True)
class Evaluation:
    results: dict[str, dict[str, F1]]
    """system -> dataset -> F1 on that dataset (harmful sets and the benign texts)"""
    frame: pd.DataFrame


def evaluate(
    inputs: Inputs,
    harmful: Sequence[str],
    benign: Sequence[str],
    scheme: str = "loso",
) -> Evaluation:
    """F1 per system and harmful dataset, and flag rates on the benign texts (as F1
    objects whose ``flagged / n`` is the false-positive rate). Systems are keyed by short
    ids: ``grader`` (the embedded grader, flag at severity >= 2), ``harmhead`` (its harm
    head's call, when the judgments carry one) and each generator name (the aggregation
    of its trees)."""
    results: dict[str, dict[str, F1]] = {}
    for name, flags_of in _judgment_systems(inputs).items():
        results[name] = {}
        for d in [*harmful, *benign]:
            j = inputs.judgments[d]
            flags = flags_of(j)
            ids = j["record_id"].astype(str)
            if d in benign:
                keep = ids.isin(benign_ids(inputs.records[d])).to_numpy()
                results[name][d] = prompt_f1(flags[keep].tolist(), [False] * int(keep.sum()))
            else:
                results[name][d] = prompt_f1(flags.tolist(), [True] * len(j))
    for g, by_ds in inputs.tables.items():
        name = g
        thr = float(inputs.weights[g]["weights"]["threshold"])
        results[name] = {}
        for d in [*harmful, *benign]:
            t = by_ds[d]
            if d in benign:
                t = t[t["record_id"].astype(str).isin(benign_ids(inputs.records[d]))]
            flags = aggregation_flags(t, thr, scheme)
            results[name][d] = prompt_f1(flags.tolist(), [d not in benign] * len(t))
    rows = []
    for system, by_ds in results.items():
        for d, r in by_ds.items():
            rows.append({"system": system, "dataset": d, **r.__dict__})
    return Evaluation(results, pd.DataFrame(rows))


def harmful_results(evaluation: Evaluation, harmful: Sequence[str]) -> dict[str, dict[str, F1]]:
    """Per system, its scores on the harmful datasets only: the rows of the F1 table."""
    return {
        s: {d: r for d, r in by.items() if d in harmful} for s, by in evaluation.results.items()
    }


# ------------------------------------------------------------------------ steering
def steering_table(
    tables: Mapping[str, pd.DataFrame],
    profiles: Sequence[str],
    by: tuple[str, ...],
    keep: Mapping[str, pd.Index] | None = None,
) -> pd.DataFrame:
    """Flag rates per profile; ``keep`` limits a dataset to some records (a labelled benign
    source to its benign texts, as the evaluation counts them: :func:`benign_ids`)."""
    keep = keep or {}
    t = pd.concat(
        [
            tab.loc[tab["record_id"].astype(str).isin(keep[d])] if d in keep else tab
            for d, tab in tables.items()
        ],
        ignore_index=True,
    )
    if "primary_risk" in by:
        t = t.assign(primary_risk=t["primary_risk"].fillna("(no harm)"))
    return flag_rate_changes(t, list(profiles), by=by)


def profiles_of(table: pd.DataFrame) -> list[str]:
    names = [c[len("label_") :] for c in table.columns if c.startswith("label_")]
    return sorted(names, key=lambda n: (n != FITTED, n))


def _wrap(label: str, width: int = 14) -> str:
    return textwrap.fill(label, width, break_long_words=False, break_on_hyphens=False)


def plot_steering(rates: pd.DataFrame, labels: Mapping[str, str] | None = None) -> plt.Figure:
    """Share flagged per dataset under each steering profile."""
    labels = labels or {}
    datasets = list(dict.fromkeys(rates["dataset"]))
    profiles = list(dict.fromkeys(rates["profile"]))
    fig, ax = plt.subplots(figsize=(1.3 + 1.2 * len(datasets), 2.8))
    width = 0.8 / len(profiles)
    x = np.arange(len(datasets))
    colors = ("#4f81bd", "#c0504d", "#9bbb59", "#8064a2", "#f79646")
    for j, p in enumerate(profiles):
        sub = rates[rates["profile"] == p].set_index("dataset").reindex(datasets)
        ax.bar(
            x + (j - (len(profiles) - 1) / 2) * width,
            sub["rate"],
            width,
            label=p,
            color=colors[j % len(colors)],
        )
    # long names wrapped and level: rotated, "OpenAI mod. (benign)" ran into its
    # neighbour's label (issue 19)
    ax.set_xticks(x, [_wrap(labels.get(d, d)) for d in datasets])
    ax.set_ylabel("share flagged")
    ax.set_ylim(0, 1)
    ax.legend(
        title="profile",
        fontsize=7,
        title_fontsize=7,
        ncols=len(profiles),
        loc="upper center",
        bbox_to_anchor=(0.5, 1.18),
        frameon=False,
    )
    return fig


def plot_weights(ci: pd.DataFrame, prefix: str) -> plt.Figure:
    """Fitted weights with bootstrap intervals, for the weights whose names start with
    ``prefix`` (e.g. ``action.harm:``); weights no tree used are left out and listed
    in the caption by the caller."""
    sub = ci[ci["weight"].str.startswith(prefix) & (ci["n_effects"].fillna(1) > 0)]
    names = [w[len(prefix) :] for w in sub["weight"]]
    fig, ax = plt.subplots(figsize=(4.2, 0.22 * len(sub) + 0.8))
    y = np.arange(len(sub))[::-1]
    est = sub["estimate"].to_numpy(dtype=float)
    lo = sub["lo"].to_numpy(dtype=float)
    hi = sub["hi"].to_numpy(dtype=float)
    # a percentile bootstrap interval need not contain the estimate (few refits, a
    # penalised fit), so the interval is drawn as its own segment, not as +- error bars
    ax.hlines(y, lo, hi, color="#333333", lw=1)
    ax.plot(est, y, "o", ms=3, color="#333333")
    ax.axvline(1.0, color="#999999", lw=0.8, ls="--")
    ax.set_yticks(y, names)
    ax.set_xlabel("weight (1 = neutral)")
    return fig


# ------------------------------------------------------------------------- numbers
def paper_numbers(
    evaluation: Evaluation,
    harmful: Sequence[str],
    benign: Sequence[str],
    weights: Mapping[str, dict[str, Any]],
    tables: Mapping[str, Mapping[str, pd.DataFrame]],
    steering: Mapping[str, pd.DataFrame],
    agreement: Mapping[str, float] | None,
    f1_numbers: Mapping[str, Number],
    weights_ci: Mapping[str, pd.DataFrame] | None = None,
) -> dict[str, Number]:
    out: dict[str, Number] = dict(f1_numbers)
    for system, by_ds in evaluation.results.items():
        for d in benign:
            if d in by_ds:
                r = by_ds[d]
                out[f"benign flagged {system} {d}"] = pct(r.flagged / r.n if r.n else np.nan, 1)
                out[f"benign n {d}"] = count(r.n)
        for d in harmful:
            if d in by_ds:
                out[f"n {d}"] = count(by_ds[d].n)
    for g, payload in weights.items():
        for row in payload["cv"]:
            key = "loso" if row["scheme"].startswith("leave") else "kfold"
            out[f"auroc {g} {key}"] = real(row["auroc"], 3)
        out[f"fit trees {g}"] = count(payload["fit"]["n_trees"])
        out[f"fit harmful {g}"] = count(payload["fit"]["n_positive"])
        out[f"fit benign {g}"] = count(payload["fit"]["n_trees"] - payload["fit"]["n_positive"])
        out[f"bootstrap {g}"] = count(payload["settings"]["bootstrap"])
        out[f"threshold {g}"] = real(payload["weights"]["threshold"], 2)
        all_t = pd.concat(tables[g].values(), ignore_index=True)
        out[f"trees {g}"] = count(len(all_t))
        out[f"trees failed {g}"] = count(int((all_t["tree_status"] == "failed").sum()))
        out[f"generator {g}"] = text(g)
        out[f"proxy {g}"] = text("proxy" if bool(all_t["proxy"].all()) else "LLM")
    for g, ci in (weights_ci or {}).items():
        est = ci.set_index("weight")
        for w in ("action.benefit", "discount", "likelihood.low", "likelihood.medium"):
            if w in est.index:
                out[f"weight {g} {w}"] = real(float(est.loc[w, "estimate"]), 2)
                out[f"weight {g} {w} ci"] = ci_number(
                    float(est.loc[w, "lo"]), float(est.loc[w, "hi"]), pct=False, digits=2
                )
        harm = ci[ci["weight"].str.startswith("action.harm:") & (ci["n_effects"] > 0)]
        top = harm.sort_values("estimate", ascending=False, kind="stable").iloc[0]
        out[f"top action {g}"] = text(str(top["weight"]).removeprefix("action.harm:"))
        out[f"top action {g} weight"] = real(float(top["estimate"]), 2)
    for g, rates in steering.items():
        for r in rates.itertuples():
            out[f"flag {g} {r.profile} {r.dataset}"] = pct(r.rate, 1)
    if agreement:
        out["air top one"] = pct(agreement["top1"], 1)
        out["air top three"] = pct(agreement["top3"], 1)
        out["air chance top one"] = pct(agreement["chance_top1"], 1)
        out["air chance top three"] = pct(agreement["chance_top3"], 1)
        out["air n"] = count(agreement["n"])
    return out
