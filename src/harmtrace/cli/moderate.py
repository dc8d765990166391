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
    policy: Annotated[
        list[str],
        typer.Option(help="policy name, shipped or given by --policy-spec (repeat the option)"),
    ],
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
        list[Path] | None,
        typer.Option(
            help="traces JSONL, one per --policy in the same order "
            "[results/traces/POLICY/DATASET.jsonl]"
        ),
    ] = None,
    policy_spec: Annotated[
        list[str] | None,
        typer.Option(
            help="a user policy as a JSON/YAML mapping (e.g. from the config); its `name` "
            "says which --policy it defines (may be left out with one --policy)"
        ),
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
    """One trace per response and policy: raw output, safety analysis, intervention, final
    output. Several policies in one call split and score the responses once."""
    from harmtrace.graders.registry import default_grader, training_api
    from harmtrace.io import read_table
    from harmtrace.moderate.clock import parse_clock
    from harmtrace.moderate.flow import moderate_policies
    from harmtrace.moderate.trace import write_traces

    try:
        chosen, outs = _policies(dataset, policy, out, policy_spec or [])
        records = records or Path("results/records") / f"{dataset}.parquet"
        grader = grader or default_grader()
        judgments = judgments or Path("results/judgments") / grader / f"{dataset}.parquet"
        model_dir = model_dir or Path("results/models") / grader
        recs = read_table(records, "records")
        other = sorted(set(recs["dataset"].astype(str)) - {dataset})
        if other:
            raise HarmtraceError(f"{records}: holds records of {other}, not only {dataset!r}")
        judged = read_table(judgments, "judgments")
        scorer = training_api(grader).load_scorer(model_dir)
        if embedding_cache:
            scorer.attach_caches(load_caches(embedding_cache) or {})
        runs = moderate_policies(
            recs, judged, scorer, chosen, clock=parse_clock(clock), workers=workers
        )
        n = 0
        for name, traces, path in zip(policy, runs, outs, strict=True):
            n = write_traces(traces, path)
            log.info("%s under %s: %d trace(s) into %s", dataset, name, n, path)
        # the same records lack a response under every policy: said once
        log.info("%d record(s) without a response have no trace", len(recs) - n)
    except (HarmtraceError, ValueError) as exc:
        fail(exc)


def _policies(
    dataset: str, names: list[str], outs: list[Path] | None, specs: list[str]
) -> tuple[list, list[Path]]:
    """Each --policy resolved (shipped or from its --policy-spec), with its output."""
    from harmtrace.moderate.policies import get_policy

    user = _user_policies(specs, names)
    chosen = [get_policy(name, llm=None, user=user) for name in names]
    paths = list(outs or [Path("results/traces") / name / f"{dataset}.jsonl" for name in names])
    if len(paths) != len(names) or len(set(names)) != len(names):
        raise HarmtraceError(
            f"give each --policy once and one --out per --policy: {len(names)} "
            f"policies {names}, {len(paths)} --out"
        )
    return chosen, paths


def _user_policies(specs: list[str], policies: list[str]) -> dict[str, dict]:
    """``--policy-spec`` mappings by the policy they define: their ``name``, or the one
    ``--policy`` when only one is given."""
    import yaml

    user: dict[str, dict] = {}
    for text in specs:
        spec = yaml.safe_load(text)
        if not isinstance(spec, dict):
            raise HarmtraceError(f"--policy-spec must be a mapping of policy fields: {text!r}")
        name = spec.get("name") or (policies[0] if len(policies) == 1 else None)
        if name is None:
            raise HarmtraceError(
                f"--policy-spec without a name, with {len(policies)} --policy: add "
                f"`name:` to say which policy it defines: {text!r}"
            )
        if name in user:
            raise HarmtraceError(f"two --policy-spec define policy {name!r}")
        user[str(name)] = spec
    return user


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
