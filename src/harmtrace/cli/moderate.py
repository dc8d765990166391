"""Moderation verbs: traces of every response under a policy, and the trace viewer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harmtrace.cli._app import app, fail, log
from harmtrace.cli.train import TrainedGrader, load_caches
from harmtrace.errors import HarmtraceError


@app.command()
def moderate(
    dataset: Annotated[str, typer.Argument(help="dataset whose responses to moderate")],
    policy: Annotated[str, typer.Option(help="policy name (shipped, or given by --policy-spec)")],
    records: Annotated[
        Path | None, typer.Option(help="records parquet [results/records/DATASET.parquet]")
    ] = None,
    judgments: Annotated[
        Path | None,
        typer.Option(help="judgments parquet [results/judgments/GRADER/DATASET.parquet]"),
    ] = None,
    model_dir: Annotated[
        Path | None, typer.Option(help="the trained grader's model [results/models/GRADER]")
    ] = None,
    grader: TrainedGrader = None,
    out: Annotated[
        Path | None, typer.Option(help="traces JSONL [results/traces/POLICY/DATASET.jsonl]")
    ] = None,
    policy_spec: Annotated[
        str | None,
        typer.Option(help="a user policy as a JSON/YAML mapping (e.g. from the config)"),
    ] = None,
    clock: Annotated[
        str | None,
        typer.Option(
            help="trace timestamps: an ISO 8601 instant or Unix time to pin them, or 'now' "
            "[$SOURCE_DATE_EPOCH if set, else now]"
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="processes for sentence splitting")] = 1,
    embedding_cache: Annotated[
        list[Path] | None,
        typer.Option(help="the dataset's embeddings (harmtrace embed-texts --sentences)"),
    ] = None,
) -> None:
    """One trace per response: raw output, safety analysis, intervention, final output."""
    import yaml

    from harmtrace.graders.registry import default_grader, training_api
    from harmtrace.io import read_table
    from harmtrace.moderate.clock import parse_clock
    from harmtrace.moderate.flow import moderate_records
    from harmtrace.moderate.policies import get_policy
    from harmtrace.moderate.trace import write_traces

    try:
        user = None
        if policy_spec is not None:
            spec = yaml.safe_load(policy_spec)
            if not isinstance(spec, dict):
                raise HarmtraceError("--policy-spec must be a mapping of policy fields")
            user = {policy: spec}
        chosen = get_policy(policy, llm=None, user=user)
        records = records or Path("results/records") / f"{dataset}.parquet"
        grader = grader or default_grader()
        judgments = judgments or Path("results/judgments") / grader / f"{dataset}.parquet"
        model_dir = model_dir or Path("results/models") / grader
        out = out or Path("results/traces") / policy / f"{dataset}.jsonl"
        recs = read_table(records, "records")
        other = sorted(set(recs["dataset"].astype(str)) - {dataset})
        if other:
            raise HarmtraceError(f"{records}: holds records of {other}, not only {dataset!r}")
        judged = read_table(judgments, "judgments")
        scorer = training_api(grader).load_scorer(model_dir)
        if embedding_cache:
            scorer.attach_caches(load_caches(embedding_cache) or {})
        traces = moderate_records(
            recs, judged, scorer, chosen, clock=parse_clock(clock), workers=workers
        )
        n = write_traces(traces, out)
        log.info(
            "%s: %d trace(s) into %s; %d record(s) without a response have no trace",
            dataset,
            n,
            out,
            len(recs) - n,
        )
    except (HarmtraceError, ValueError) as exc:
        fail(exc)


@app.command("trace-viewer")
def trace_viewer(
    traces: Annotated[
        list[Path], typer.Option(help="trace JSONL files of one policy (repeat the option)")
    ],
    out_dir: Annotated[Path, typer.Option(help="folder for index.html, requests/, assets/")],
) -> None:
    """A static, offline site to search, filter and read the traces of one policy."""
    from harmtrace.moderate.viewer import build_viewer, load_traces

    try:
        site = build_viewer(load_traces(traces), out_dir)
        log.info("wrote %s and %d trace page(s)", site.index, site.pages)
    except HarmtraceError as exc:
        fail(exc)
