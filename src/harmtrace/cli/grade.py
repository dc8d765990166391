"""Grading verbs: grade records or files with any backend, in shards, and the prompt flag
rates. The trained grader's own verbs are in :mod:`harmtrace.cli.train`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from harmtrace.cli._app import BadRows, MaxChars, app, fail, log, mapping_option
from harmtrace.errors import HarmtraceError

ENDPOINT_HELP = (
    "openai: one endpoint setting as KEY=VALUE (repeatable; null for none), e.g. "
    "--endpoint base_url=http://127.0.0.1:8000/v1 --endpoint model=my-model; keys are "
    "those of harmtrace.llm.settings.EndpointSettings (docs/llm.md)"
)


@app.command()
def grade(
    dataset: Annotated[str | None, typer.Argument(help="dataset whose records to grade")] = None,
    grader: Annotated[
        str | None,
        typer.Option(help="grader backend (see `harmtrace graders`) [the trained one]"),
    ] = None,
    spec: Annotated[
        str | None, typer.Option(help="the backend's config block as JSON (config grader.NAME)")
    ] = None,
    records: Annotated[Path | None, typer.Option(help="records parquet")] = None,
    model_dir: Annotated[
        Path | None, typer.Option(help="trained grader: model folder (overrides the spec)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="judgments parquet")] = None,
    shard: Annotated[
        str | None, typer.Option(help="grade only shard I/N (1-based) of the records")
    ] = None,
    endpoint: Annotated[
        list[str] | None, typer.Option("--endpoint", metavar="KEY=VALUE", help=ENDPOINT_HELP)
    ] = None,
    prompt_style: Annotated[str | None, typer.Option(help="openai: rubric | llamaguard")] = None,
    few_shot: Annotated[Path | None, typer.Option(help="openai: few-shot YAML file")] = None,
    input: Annotated[Path | None, typer.Option(help="any .csv/.jsonl/.parquet of texts")] = None,
    text_column: Annotated[str | None, typer.Option(help="text column of --input")] = None,
    id_column: Annotated[str | None, typer.Option(help="id column of --input")] = None,
    output: Annotated[Path | None, typer.Option(help="scores parquet for --input")] = None,
    bad_rows: BadRows = "error",
    quarantine: Annotated[
        Path | None,
        typer.Option(help="side file for bad rows of --input (default <output>.quarantine.jsonl)"),
    ] = None,
    max_text_chars: MaxChars = 100_000,
    prior_shift_out: Annotated[
        Path | None,
        typer.Option(help="trained grader: also write judgments adjusted to the dataset's priors"),
    ] = None,
    raw_out: Annotated[
        Path | None,
        typer.Option(help="trained grader: also write the unadjusted judgments (prior shift off)"),
    ] = None,
    priors_out: Annotated[
        Path | None,
        typer.Option(help="trained grader: the EM category priors beside the training ones"),
    ] = None,
    in_sample: Annotated[
        bool,
        typer.Option(help="trained grader: score training texts by the final model (not OOF)"),
    ] = False,
) -> None:
    """Severity per category, confidence and relevance for records or a file of texts.

    Flags override the backend's config block given with --spec (--endpoint KEY=VALUE
    its endpoint keys); the openai backend's key is read only from the environment
    variable named by --endpoint api_key_env=NAME.
    """
    from harmtrace.graders.registry import default_grader
    from harmtrace.graders.shards import Shard

    try:
        grader = grader or default_grader()
        if input is not None:
            if not text_column or output is None:
                raise HarmtraceError("--input needs --text-column and --output")
            quarantine = _check_input_outputs(output, quarantine)
        backend = _backend(grader, spec, endpoint, model_dir, prompt_style, few_shot)
        part = Shard.parse(shard) if shard else None
        backend.check()
        if input is not None:
            assert text_column is not None and output is not None and quarantine is not None
            _grade_input(backend, input, text_column, id_column, output, quarantine, bad_rows,
                         max_text_chars)  # fmt: skip
        elif dataset is None:
            raise HarmtraceError("give a DATASET or --input FILE")
        else:
            extras = (prior_shift_out, raw_out, priors_out)
            _grade_dataset(backend, dataset, records, part, out, in_sample, extras)
    except (HarmtraceError, ValueError) as exc:
        fail(exc)


def _backend(
    grader: str,
    spec: str | None,
    endpoint: list[str] | None,
    model_dir: Path | None,
    prompt_style: str | None,
    few_shot: Path | None,
) -> Any:
    """The backend from its --spec block, --endpoint settings and flag overrides."""
    from harmtrace.graders.registry import grader_class, make_grader
    from harmtrace.llm.settings import apply_endpoint_overrides

    overrides = {
        "model_dir": str(model_dir) if model_dir else None,
        "prompt_style": prompt_style,
        "few_shot": str(few_shot) if few_shot else None,
    }
    block = apply_endpoint_overrides(
        mapping_option(spec, "--spec"),
        endpoint,
        grader_class(grader).Spec,
        f"grader {grader!r}",
    )
    return make_grader(grader, block, **overrides)


def _grade_dataset(
    backend: Any,
    dataset: str,
    records: Path | None,
    part: Any,
    out: Path | None,
    in_sample: bool,
    extras: tuple[Path | None, Path | None, Path | None],
) -> None:
    """Judge one dataset (or one shard of it) and write the judgments, plus the prior-shift
    side outputs of a trained grader when asked."""
    from harmtrace.graders.shards import read_shard
    from harmtrace.io import write_table

    grader = backend.name
    records = records or Path("results/records") / f"{dataset}.parquet"
    recs = read_shard(records, part, dataset=dataset)
    where = f" (shard {part.index}/{part.count})" if part else ""
    log.info("grading %d records of %s%s with %s", len(recs), dataset, where, backend.version)
    trained = getattr(backend, "trains_in_workflow", False)
    if not trained and (in_sample or any(p is not None for p in extras)):
        raise HarmtraceError(
            "--in-sample, --prior-shift-out, --raw-out and --priors-out are options of "
            f"a grader the workflow trains; {grader!r} is not one"
        )
    if part and any(p is not None for p in extras):
        raise HarmtraceError("prior shift needs a whole dataset: drop --shard")
    options = {"in_sample": in_sample} if trained else {}
    judged = backend.grade(recs, **options)
    if len(judged) != len(recs) or not judged["record_id"].astype("string").equals(
        recs["record_id"].astype("string").reset_index(drop=True)
    ):
        raise HarmtraceError(f"grader {grader!r} did not return one row per record in order")
    if out is None:
        out = Path("results/judgments") / grader / f"{dataset}.parquet"
        if part:
            out = out.with_name(f"{dataset}.shard-{part.label}.parquet")
    write_table(judged, out, "judgments")
    failed = int((judged["status"] == "failed").sum())
    log.info("graded %d records into %s (%d failed)", len(judged), out, failed)
    if any(p is not None for p in extras):
        _write_prior_shift(backend, recs, judged, in_sample, extras)


def _write_prior_shift(
    backend: Any,
    recs: Any,
    judged: Any,
    in_sample: bool,
    extras: tuple[Path | None, Path | None, Path | None],
) -> None:
    """Judgments adjusted to the dataset's EM priors, the unadjusted ones, and the priors."""
    from harmtrace.io import write_table

    raw = judged
    if backend.spec.prior_shift:
        raw = backend.grade(recs, in_sample=in_sample, prior_shift=False)
    shifted, priors = backend.grade_shifted(recs, raw=raw, in_sample=in_sample)
    log.info("category priors (EM, Saerens et al. 2002):\n%s", priors.to_string())
    for path, frame, schema in zip(
        extras, (shifted, raw, priors), ("judgments", "judgments", "category_priors"), strict=True
    ):
        if path is not None:
            write_table(frame, path, schema)


@app.command("gather-judgments")
def gather_judgments_cmd(
    out: Annotated[Path, typer.Option(help="gathered judgments parquet")],
    shards: Annotated[list[Path], typer.Argument(help="shard judgments, in shard order")],
    records: Annotated[
        Path | None,
        typer.Option(help="the records graded: check coverage and restore their order"),
    ] = None,
) -> None:
    """Concatenate judgment shards into one table, checking records in = records out."""
    from harmtrace.graders.shards import gather_judgments
    from harmtrace.io import write_table

    try:
        judged = gather_judgments(shards, records)
        write_table(judged, out, "judgments")
        failed = int((judged["status"] == "failed").sum())
        log.info(
            "gathered %d shards, %d records (%d failed) into %s",
            len(shards),
            len(judged),
            failed,
            out,
        )
    except HarmtraceError as exc:
        fail(exc)


@app.command("shard-plan")
def shard_plan_cmd(
    records: Annotated[Path, typer.Option(help="records parquet")],
    shard_size: Annotated[int, typer.Option(help="most records per shard")],
    out: Annotated[Path, typer.Option(help="plan JSON: records, shard_size, shards")],
) -> None:
    """How many shards a dataset needs (reads only the parquet footer)."""
    import json

    from harmtrace.graders.shards import shard_count
    from harmtrace.io import table_rows

    try:
        n = table_rows(records)
        plan = {"records": n, "shard_size": shard_size, "shards": shard_count(n, shard_size)}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(plan, sort_keys=True) + "\n", encoding="utf-8")
        log.info("%s: %d records -> %d shard(s)", records, n, plan["shards"])
    except HarmtraceError as exc:
        fail(exc)


def _check_input_outputs(output: Path, quarantine: Path | None) -> Path:
    """Fail before any work when --output or --quarantine cannot be written."""
    from harmtrace.io import check_output_file

    check_output_file(output, "--output")
    quarantine = check_output_file(
        quarantine or output.with_name(f"{output.stem}.quarantine.jsonl"), "--quarantine"
    )
    if quarantine.resolve() == output.resolve():
        raise HarmtraceError("--quarantine and --output must be different files")
    return quarantine


def _grade_input(
    backend,
    input: Path,
    text_column: str,
    id_column: str | None,
    output: Path,
    quarantine: Path,
    bad_rows: str,
    max_text_chars: int,
) -> None:
    """Grade a user's file of texts: every row graded or quarantined, by its row number."""
    if not hasattr(backend, "grade_texts"):
        raise HarmtraceError(f"grader {backend.name!r} grades records, not loose texts")
    from harmtrace.data.normalize import read_texts, write_quarantine

    texts = read_texts(
        input,
        text_column,
        id_column,
        bad_rows=bad_rows,  # type: ignore[arg-type]
        max_text_chars=max_text_chars,
    )
    scores = backend.grade_texts(texts.texts["text"].tolist(), texts.texts["id"].tolist())
    scores.insert(1, "source_row", texts.texts["source_row"].to_numpy())
    try:
        scores.to_parquet(output, index=False)
    except OSError as exc:
        raise HarmtraceError(f"--output {output}: cannot write ({exc.strerror or exc})") from exc
    write_quarantine(texts.quarantined, quarantine)
    log.info("graded %d texts into %s", len(scores), output)
    if len(texts.quarantined):
        log.warning("quarantined %d bad row(s) to %s", len(texts.quarantined), quarantine)


@app.command()
def graders() -> None:
    """List the registered grader backends with their config keys."""
    from harmtrace.graders.registry import grader_class, grader_names

    for name in grader_names():
        try:
            cls = grader_class(name)
        except HarmtraceError as exc:
            typer.echo(f"{name:10s} unavailable: {exc}")
            continue
        keys = ", ".join(cls.Spec.model_fields)
        typer.echo(f"{name:10s} {cls.backend_version:6s} keys: {keys}")


@app.command("flag-rates")
def flag_rates_cmd(
    out: Annotated[Path, typer.Option(help="numbers JSON")],
    judgments: Annotated[list[Path], typer.Argument(help="judgments parquet files")],
) -> None:
    """How often prompts are flagged per category: a transfer check on harmful benchmarks."""
    from harmtrace.graders.evaluation import flag_rates
    from harmtrace.io import read_table
    from harmtrace.report.grader_report import flag_rate_numbers
    from harmtrace.report.macros import write_numbers

    try:
        rates = {p.stem: flag_rates(read_table(p, "judgments")) for p in judgments}
        for name, frame in rates.items():
            log.info("%s prompt flag rates:\n%s", name, frame.to_string())
        write_numbers(flag_rate_numbers(rates), out, "flags")
    except HarmtraceError as exc:
        fail(exc)
