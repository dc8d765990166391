"""Respond verbs: put a prompt set to a target model, gather its answers as records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from harmtrace.cli._app import app, fail, log, mapping_option
from harmtrace.errors import HarmtraceError

MaxPrompts = Annotated[
    int | None, typer.Option(help="answer at most this many prompts (a stable sample by id)")
]


def _prompts(records: Path, prompt_set: str, max_prompts: int | None):
    from harmtrace.data.provenance import read_records
    from harmtrace.targets.respond import sample_prompts

    return sample_prompts(read_records(records, dataset=prompt_set), max_prompts)


@app.command("respond-plan")
def respond_plan(
    records: Annotated[Path, typer.Option(help="the prompt set's records parquet")],
    shard_size: Annotated[int, typer.Option(help="most prompts per respond job")],
    out: Annotated[Path, typer.Option(help="plan JSON: prompts, shard_size, shards")],
    max_prompts: MaxPrompts = None,
) -> None:
    """How many respond jobs a prompt set needs."""
    from harmtrace.graders.shards import shard_count
    from harmtrace.io import table_rows

    try:
        n = table_rows(records)
        if max_prompts is not None:
            n = min(n, max_prompts)
        plan = {"prompts": n, "shard_size": shard_size, "shards": shard_count(n, shard_size)}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(plan, sort_keys=True) + "\n", encoding="utf-8")
        log.info("%s: %d prompts -> %d respond job(s)", records, n, plan["shards"])
    except HarmtraceError as exc:
        fail(exc)


@app.command()
def respond(
    prompt_set: Annotated[str, typer.Argument(help="dataset whose prompts to answer")],
    target: Annotated[str, typer.Option(help="target name (config targets.NAME)")],
    spec: Annotated[str, typer.Option(help="the target's config block as JSON, or @file")],
    records: Annotated[Path, typer.Option(help="the prompt set's records parquet")],
    out: Annotated[Path, typer.Option(help="answer records of this shard (parquet)")],
    kind: Annotated[str, typer.Option(help="harmful | benign: what the prompt set asks")],
    shard: Annotated[str | None, typer.Option(help="answer only shard I/N (1-based)")] = None,
    max_prompts: MaxPrompts = None,
    model_dir: Annotated[
        Path | None, typer.Option(help="prepared weights folder of a registered model")
    ] = None,
    progress: Annotated[
        Path | None,
        typer.Option(help="answer log that makes a killed job resume (JSON lines)"),
    ] = None,
) -> None:
    """Answers of one target to (one shard of) a prompt set, as records with provenance."""
    from harmtrace.graders.shards import Shard
    from harmtrace.io import write_table
    from harmtrace.targets.registry import make_target
    from harmtrace.targets.respond import RespondError, answer_shard

    try:
        if kind not in ("harmful", "benign"):
            raise RespondError(f"--kind {kind!r}: harmful or benign")
        overrides = {"model_dir": str(model_dir)} if model_dir else {}
        backend = make_target(target, mapping_option(spec, "--spec"), **overrides)
        prompts = _prompts(records, prompt_set, max_prompts)
        if shard:
            part = Shard.parse(shard)
            start, stop = part.bounds(len(prompts))
            prompts = prompts.iloc[start:stop].reset_index(drop=True)
        log.info("answering %d prompts of %s with target %s", len(prompts), prompt_set, target)
        try:
            result = answer_shard(
                prompts,
                prompt_set=prompt_set,
                target_name=target,
                target=backend,
                kind=kind,  # type: ignore[arg-type]
                progress=progress,
            )
        finally:
            backend.close()
        write_table(result.records, out, "records")
        log.info(
            "%s: %d answers generated, %d reused from %s, %d failed",
            out,
            result.generated,
            result.reused,
            progress,
            result.failed,
        )
    except HarmtraceError as exc:
        fail(exc)


@app.command("gather-answers")
def gather_answers_cmd(
    shards: Annotated[list[Path], typer.Argument(help="answer shards, in order")],
    prompt_set: Annotated[str, typer.Option(help="the prompt set's name")],
    target: Annotated[str, typer.Option(help="the target's name")],
    records: Annotated[Path, typer.Option(help="the prompt set's records parquet")],
    out: Annotated[Path, typer.Option(help="answer records (results/records/<name>.parquet)")],
    max_prompts: MaxPrompts = None,
) -> None:
    """One answer records table: shards checked (every prompt answered once) and joined."""
    from harmtrace.data.provenance import Provenance
    from harmtrace.io import read_table, write_table
    from harmtrace.targets.respond import answer_dataset, gather_answers, target_settings

    try:
        prompts = _prompts(records, prompt_set, max_prompts)
        frame = gather_answers([read_table(p, "records") for p in shards], prompts)
        dataset = answer_dataset(prompt_set, target)
        prov = Provenance(
            kind="answers",
            dataset=dataset,
            source=f"{prompt_set} answered by {target}",
            files=(),
            n_records=len(frame),
            n_quarantined=0,
            target=dict(target_settings(frame)),
        )
        write_table(frame, out, "records", metadata=prov.to_metadata())
        failed = int((frame["gen_finish_reason"] == "error").sum())
        log.info("wrote %d answer records (%d failed) to %s", len(frame), failed, out)
    except HarmtraceError as exc:
        fail(exc)
