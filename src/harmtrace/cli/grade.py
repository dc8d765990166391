"""Grading verbs: train and compare the embedded grader, grade records or files, validity checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harmtrace.cli._app import BadRows, MaxChars, app, fail, log
from harmtrace.errors import HarmtraceError


@app.command("train-grader")
def train_grader(
    records: Annotated[Path, typer.Option(help="records with human labels (label_<KEY>)")],
    model_dir: Annotated[
        Path, typer.Option(help="folder for model.pkl, manifest.json, oof_scores.parquet")
    ],
    oof: Annotated[Path | None, typer.Option(help="also copy the out-of-fold scores here")] = None,
    extractor: Annotated[
        str | None, typer.Option(help="tfidf | wordllama | minilm (default: the documented pick)")
    ] = None,
    folds: Annotated[int, typer.Option(help="cross-fitting folds")] = 5,
    seed: Annotated[int, typer.Option(help="seed of folds and fitting")] = 0,
) -> None:
    """Fit the embedded grader on all labelled records and score them out-of-fold."""
    import shutil

    from harmtrace.data.provenance import read_records
    from harmtrace.graders.embedded import DEFAULT_EXTRACTOR, OOF_FILE
    from harmtrace.graders.embedded import train_grader as fit_and_cross_fit

    extractor = extractor or DEFAULT_EXTRACTOR
    try:
        recs = read_records(records)
        log.info(
            "training and cross-fitting %d folds on %d records (%s)", folds, len(recs), extractor
        )
        model = fit_and_cross_fit(recs, model_dir, extractor=extractor, seed=seed, n_splits=folds)
        log.info("saved %s (version %s)", model_dir, model.version)
        if oof is not None:
            oof.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(model_dir / OOF_FILE, oof)
    except (HarmtraceError, ValueError) as exc:
        fail(exc)


@app.command("evaluate-grader")
def evaluate_grader(
    records: Annotated[Path, typer.Option(help="the grader's training records (label_<KEY>)")],
    model_dir: Annotated[Path, typer.Option(help="trained embedded grader")],
    numbers: Annotated[Path, typer.Option(help="numbers JSON for the paper")],
    table: Annotated[Path, typer.Option(help="LaTeX table of out-of-fold metrics")],
) -> None:
    """Out-of-fold validity of the embedded grader against its human labels.

    A verb of its own, apart from training, so that an edit of the statistics reruns this
    report and not the training and grading.
    """
    import json

    from harmtrace.data.provenance import read_records
    from harmtrace.graders.embedded import MANIFEST_FILE, stored_oof_scores
    from harmtrace.graders.evaluation import oof_metrics, severe_agreement
    from harmtrace.report.grader_report import grader_numbers, grader_table
    from harmtrace.report.latex import write_table_tex
    from harmtrace.report.macros import write_numbers

    try:
        recs = read_records(records)
        scores = stored_oof_scores(model_dir, recs)
        if scores is None:
            raise HarmtraceError(f"{records}: not the training records of {model_dir}")
        manifest = json.loads((model_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
        extractor = manifest["extractor"]["name"]
        folds = int(manifest["files"]["oof_scores.parquet"]["n_splits"])
        metrics = oof_metrics(recs, scores)
        log.info("out-of-fold metrics:\n%s", metrics.to_string())
        severe = severe_agreement(recs, scores)
        write_numbers(
            grader_numbers(metrics, severe, len(recs), extractor, folds), numbers, "grader"
        )
        tab = grader_table(metrics)
        write_table_tex(
            tab, table, raw_columns=tuple(tab.columns), align="lrrrrrl", escape_header=False
        )
    except (HarmtraceError, ValueError, OSError, KeyError) as exc:
        fail(exc)


@app.command()
def grade(
    dataset: Annotated[str | None, typer.Argument(help="dataset whose records to grade")] = None,
    grader: Annotated[str, typer.Option(help="grader backend (see `harmtrace graders`)")] = (
        "embedded"
    ),
    spec: Annotated[
        str | None, typer.Option(help="the backend's config block as JSON (config grader.NAME)")
    ] = None,
    records: Annotated[Path | None, typer.Option(help="records parquet")] = None,
    model_dir: Annotated[
        Path | None, typer.Option(help="embedded: trained model folder (overrides the spec)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="judgments parquet")] = None,
    shard: Annotated[
        str | None, typer.Option(help="grade only shard I/N (1-based) of the records")
    ] = None,
    base_url: Annotated[str | None, typer.Option(help="openai: API root (…/v1)")] = None,
    model: Annotated[str | None, typer.Option(help="openai: model name")] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="openai: NAME of the env variable with the key")
    ] = None,
    temperature: Annotated[float | None, typer.Option(help="openai: temperature")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="openai: tokens per reply")] = None,
    concurrency: Annotated[int | None, typer.Option(help="openai: requests in flight")] = None,
    rps: Annotated[float | None, typer.Option(help="openai: requests per second")] = None,
    timeout: Annotated[float | None, typer.Option(help="openai: seconds per request")] = None,
    max_retries: Annotated[int | None, typer.Option(help="openai: retries")] = None,
    max_reasks: Annotated[int | None, typer.Option(help="openai: re-asks")] = None,
    prompt_style: Annotated[str | None, typer.Option(help="openai: rubric | llamaguard")] = None,
    response_format: Annotated[
        str | None, typer.Option(help="openai: json_schema | json_object | none")
    ] = None,
    few_shot: Annotated[Path | None, typer.Option(help="openai: few-shot YAML file")] = None,
    cache: Annotated[Path | None, typer.Option(help="openai: SQLite answer cache")] = None,
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
) -> None:
    """Severity per category, confidence and relevance for records or a file of texts.

    Flags override the backend's config block given with --spec; the openai backend's
    key is read only from the environment variable named by --api-key-env.
    """
    from harmtrace.graders.registry import make_grader
    from harmtrace.graders.shards import Shard, read_shard
    from harmtrace.io import write_table

    try:
        if input is not None:
            if not text_column or output is None:
                raise HarmtraceError("--input needs --text-column and --output")
            quarantine = _check_input_outputs(output, quarantine)
        overrides = {
            "model_dir": str(model_dir) if model_dir else None,
            "base_url": base_url,
            "model": model,
            "api_key_env": api_key_env,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "concurrency": concurrency,
            "rps": rps,
            "timeout": timeout,
            "max_retries": max_retries,
            "max_reasks": max_reasks,
            "prompt_style": prompt_style,
            "response_format": response_format,
            "few_shot": str(few_shot) if few_shot else None,
            "cache": str(cache) if cache else None,
        }
        backend = make_grader(grader, _spec_json(spec), **overrides)
        part = Shard.parse(shard) if shard else None
        backend.check()
        if input is not None:
            assert text_column is not None and output is not None and quarantine is not None
            if not hasattr(backend, "grade_texts"):
                raise HarmtraceError(f"grader {grader!r} grades records, not loose texts")
            _grade_input(
                backend, input, text_column, id_column, output, quarantine, bad_rows,
                max_text_chars,
            )  # fmt: skip
            return
        if dataset is None:
            raise HarmtraceError("give a DATASET or --input FILE")
        records = records or Path("results/records") / f"{dataset}.parquet"
        recs = read_shard(records, part, dataset=dataset)
        where = f" (shard {part.index}/{part.count})" if part else ""
        log.info("grading %d records of %s%s with %s", len(recs), dataset, where, backend.version)
        judged = backend.grade(recs)
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
    except (HarmtraceError, ValueError) as exc:
        fail(exc)


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


def _spec_json(spec: str | None) -> dict:
    """``--spec`` as a mapping: inline JSON, or ``@path`` to a JSON/YAML file."""
    import json

    import yaml

    if not spec:
        return {}
    try:
        if spec.startswith("@"):
            value = yaml.safe_load(Path(spec[1:]).read_text(encoding="utf-8"))
        else:
            value = json.loads(spec)
    except (OSError, ValueError) as exc:
        raise HarmtraceError(f"--spec: not JSON or a readable @file ({exc})") from exc
    if not isinstance(value, dict):
        raise HarmtraceError("--spec must be a JSON object (the grader's config block)")
    return value


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


@app.command("compare-extractors")
def compare_extractors_cmd(
    records: Annotated[Path, typer.Option(help="records with human labels")],
    out: Annotated[Path, typer.Option(help="comparison parquet")],
    numbers: Annotated[Path, typer.Option(help="numbers JSON for the paper")],
    table: Annotated[Path, typer.Option(help="LaTeX table")],
    extractors: Annotated[
        str | None, typer.Option(help="comma-separated names (default: tfidf,wordllama)")
    ] = None,
    seeds: Annotated[str, typer.Option(help="comma-separated fold seeds")] = "0,1,2",
    folds: Annotated[int, typer.Option(help="folds per seed")] = 5,
    configured: Annotated[
        str | None, typer.Option(help="the configured default (default: the documented pick)")
    ] = None,
) -> None:
    """Repeated out-of-fold AUROC/AUPRC/F1 and throughput per extractor and category."""
    from harmtrace.data.provenance import read_records
    from harmtrace.graders.compare import (
        MIN_TEXTS_PER_S,
        choose_default_extractor,
        compare_extractors,
    )
    from harmtrace.graders.features import COMPARED_EXTRACTORS, DEFAULT_EXTRACTOR
    from harmtrace.report.grader_report import extractor_numbers, extractor_table
    from harmtrace.report.latex import write_table_tex
    from harmtrace.report.macros import write_numbers

    extractors = extractors or ",".join(COMPARED_EXTRACTORS)
    configured = configured or DEFAULT_EXTRACTOR
    try:
        recs = read_records(records)
        summary = compare_extractors(
            recs,
            extractors=[e for e in extractors.split(",") if e],
            n_splits=folds,
            seeds=[int(x) for x in seeds.split(",") if x],
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        summary.to_parquet(out, index=False)
        chosen = choose_default_extractor(summary)
        log.info("comparison:\n%s\nrule picks %s", summary.to_string(), chosen)
        write_numbers(
            extractor_numbers(summary, chosen, configured, MIN_TEXTS_PER_S), numbers, "extractors"
        )
        tab = extractor_table(summary)
        write_table_tex(tab, table, raw_columns=tuple(tab.columns), align="llrrrr")
    except (HarmtraceError, ValueError) as exc:
        fail(exc)


@app.command("validate-relevance")
def validate_relevance_cmd(
    records: Annotated[Path, typer.Option(help="AIR-Bench records (air_judge_score)")],
    judgments: Annotated[Path, typer.Option(help="their judgments")],
    numbers: Annotated[Path, typer.Option(help="numbers JSON for the paper")],
    table: Annotated[Path, typer.Option(help="LaTeX confusion table")],
    model_dir: Annotated[Path, typer.Option(help="trained embedded grader")] = Path(
        "results/models/embedded"
    ),
) -> None:
    """Agreement of relevance/refusal with the AIR-Bench judge's refusal scores."""
    from harmtrace.data.provenance import read_records
    from harmtrace.graders.embedded import EmbeddedGrader
    from harmtrace.graders.relevance import validate_relevance
    from harmtrace.io import read_table
    from harmtrace.report.grader_report import relevance_numbers, relevance_table
    from harmtrace.report.latex import write_table_tex
    from harmtrace.report.macros import write_numbers

    try:
        recs = read_records(records)
        judged = read_table(judgments, "judgments")
        model = EmbeddedGrader.load(model_dir)
        result = validate_relevance(recs, scorer=model.relevance)
        mine = result["per_record"].set_index("record_id")["relevance"].astype(int)
        lacking = ~mine.index.isin(judged["record_id"])
        if lacking.any():
            raise HarmtraceError(
                f"{judgments}: no judgment for {int(lacking.sum())} record(s); regrade"
            )
        stored = judged.set_index("record_id").loc[mine.index, "relevance"].astype(int)
        if not mine.equals(stored):
            raise HarmtraceError(f"{judgments}: relevance differs from the grader's; regrade")
        write_numbers(relevance_numbers(result["summary"]), numbers, "relevance")
        write_table_tex(relevance_table(result["confusion"]), table, align="lrrr")
        log.info("relevance validation:\n%s", result["summary"].to_string())
    except (HarmtraceError, ValueError) as exc:
        fail(exc)


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
