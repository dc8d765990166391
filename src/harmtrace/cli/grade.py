"""Grading verbs: train and compare the embedded grader, grade records or files, validity checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from harmtrace.cli._app import app, fail, log
from harmtrace.errors import HarmtraceError


def parse_weights(items: list[str] | None) -> dict[str, float]:
    """``NAME=WEIGHT`` pairs (``--source-weight``) as a dict; a clear error otherwise."""
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not sep or not name or not weight > 0:
            raise HarmtraceError(
                f"--source-weight {item!r}: write DATASET=WEIGHT with a positive weight"
            )
        out[name] = weight
    return out


def read_training_records(paths: list[Path]) -> Any:
    """One training frame from several records parquet files (each its own dataset)."""
    from harmtrace.graders.embedded import training_frame
    from harmtrace.io import read_table

    return training_frame([read_table(p, "records") for p in paths])


def load_caches(paths: list[Path] | None) -> dict[str, Any] | None:
    """Embedding caches (``harmtrace embed-texts`` output) keyed by extractor name."""
    if not paths:
        return None
    import pandas as pd

    from harmtrace.graders.features import EmbeddingCache

    caches = {}
    for path in paths:
        names = pd.read_parquet(path, columns=["extractor"])["extractor"].unique()
        if len(names) != 1:
            raise HarmtraceError(f"{path}: expected one extractor, found {list(names)}")
        caches[str(names[0])] = EmbeddingCache.load(path, str(names[0]))
    return caches


@app.command("train-grader")
def train_grader(
    records: Annotated[
        list[Path],
        typer.Option(help="records parquet with human labels; repeat for several datasets"),
    ],
    model_dir: Annotated[
        Path, typer.Option(help="folder for model.pkl, manifest.json, oof_scores.parquet")
    ],
    numbers: Annotated[Path, typer.Option(help="numbers JSON for the paper")],
    table: Annotated[Path, typer.Option(help="LaTeX table of out-of-fold metrics")],
    oof: Annotated[Path | None, typer.Option(help="also copy the out-of-fold scores here")] = None,
    extractor: Annotated[
        str, typer.Option(help="tfidf | wordllama | minilm, or a stack such as tfidf+wordllama")
    ] = "tfidf",
    folds: Annotated[int, typer.Option(help="cross-fitting folds")] = 5,
    seed: Annotated[int, typer.Option(help="seed of folds and fitting")] = 0,
    source_weight: Annotated[
        list[str] | None, typer.Option(help="DATASET=WEIGHT per record of that dataset")
    ] = None,
    embedding_cache: Annotated[
        list[Path] | None, typer.Option(help="embeddings from `harmtrace embed-texts`")
    ] = None,
) -> None:
    """Fit the embedded grader on all labelled records and score them out-of-fold."""
    import shutil

    from harmtrace.graders.embedded import OOF_FILE, stored_oof_scores
    from harmtrace.graders.embedded import train_grader as fit_and_cross_fit
    from harmtrace.graders.evaluation import oof_metrics, severe_agreement
    from harmtrace.graders.labels import moderation_rows
    from harmtrace.report.grader_report import grader_numbers, grader_table
    from harmtrace.report.latex import write_table_tex
    from harmtrace.report.macros import write_numbers

    try:
        recs = read_training_records(records)
        weights = parse_weights(source_weight)
        log.info(
            "training and cross-fitting %d folds on %d records from %s (%s, weights %s)",
            folds,
            len(recs),
            sorted(recs["dataset"].unique()),
            extractor,
            weights or "all 1",
        )
        model = fit_and_cross_fit(
            recs,
            model_dir,
            extractor=extractor,
            seed=seed,
            n_splits=folds,
            source_weights=weights,
            embedding_caches=load_caches(embedding_cache),
        )
        log.info("saved %s (version %s)", model_dir, model.version)
        scores = stored_oof_scores(model_dir, recs)
        if oof is not None:
            oof.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(model_dir / OOF_FILE, oof)
        recs = recs[moderation_rows(recs)]  # the moderation-set figures of the paper
        if recs.empty:
            raise HarmtraceError("no moderation-labelled records (label_<KEY>) to report on")
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
    except (HarmtraceError, ValueError) as exc:
        fail(exc)


@app.command()
def grade(
    dataset: Annotated[str | None, typer.Argument(help="dataset whose records to grade")] = None,
    grader: Annotated[str, typer.Option(help="grader backend")] = "embedded",
    records: Annotated[Path | None, typer.Option(help="records parquet")] = None,
    model_dir: Annotated[Path, typer.Option(help="trained embedded grader")] = Path(
        "results/models/embedded"
    ),
    oof: Annotated[
        Path | None, typer.Option(help="out-of-fold prompt scores (for the training set)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="judgments parquet")] = None,
    input: Annotated[Path | None, typer.Option(help="any .csv/.jsonl/.parquet of texts")] = None,
    text_column: Annotated[str | None, typer.Option(help="text column of --input")] = None,
    id_column: Annotated[str | None, typer.Option(help="id column of --input")] = None,
    output: Annotated[Path | None, typer.Option(help="scores parquet for --input")] = None,
    prior_shift_out: Annotated[
        Path | None,
        typer.Option(help="also write judgments adjusted to this dataset's category priors"),
    ] = None,
    priors_out: Annotated[
        Path | None, typer.Option(help="estimated category priors (parquet) with --prior-shift-out")
    ] = None,
    in_sample: Annotated[
        bool, typer.Option(help="score training texts with the final model, not out-of-fold")
    ] = False,
) -> None:
    """Severity per category, confidence and relevance for records or a file of texts."""
    from harmtrace.graders.embedded import (
        EmbeddedGrader,
        grade_records,
        grade_texts,
        oof_for_texts,
    )
    from harmtrace.io import read_table, write_table

    try:
        if grader != "embedded":
            raise HarmtraceError(f"grader {grader!r} is not available yet; use 'embedded'")
        model = EmbeddedGrader.load(model_dir)
        if input is not None:
            if not text_column or output is None:
                raise HarmtraceError("--input needs --text-column and --output")
            from harmtrace.data.normalize import read_user_file

            frame = read_user_file(input)
            shown = [c for c in frame.columns if c != "_source_row"]
            for col in (text_column, id_column):
                if col and col not in frame:
                    raise HarmtraceError(f"{input}: no column {col!r}; the file has {shown}")
            ids = frame[id_column].map(str).tolist() if id_column else None
            scores = grade_texts(model, frame[text_column].tolist(), ids)
            output.parent.mkdir(parents=True, exist_ok=True)
            scores.to_parquet(output, index=False)
            log.info("graded %d texts into %s", len(scores), output)
            return
        if dataset is None:
            raise HarmtraceError("give a DATASET or --input FILE")
        records = records or Path("results/records") / f"{dataset}.parquet"
        recs = read_table(records, "records")
        prompt_scores, partial = None, False
        if oof is not None:
            import pandas as pd

            prompt_scores = pd.read_parquet(oof)
            log.info("prompt side from out-of-fold scores %s", oof)
        elif not in_sample:
            prompt_scores = oof_for_texts(model_dir, recs)
            partial = prompt_scores is not None
            if partial:
                log.info(
                    "%d prompts were training texts: their out-of-fold scores are used",
                    len(prompt_scores),
                )
        judged = grade_records(model, recs, prompt_scores=prompt_scores, partial=partial)
        out = out or Path("results/judgments") / grader / f"{dataset}.parquet"
        write_table(judged, out, "judgments")
        log.info("graded %d records into %s", len(judged), out)
        if prior_shift_out is not None:
            from harmtrace.graders.prior_shift import judgment_priors

            shifted = grade_records(
                model, recs, prompt_scores=prompt_scores, partial=partial, prior_shift=True
            )
            write_table(shifted, prior_shift_out, "judgments")
            priors = judgment_priors(model, judged)
            log.info("category priors (EM, Saerens et al. 2002):\n%s", priors.to_string())
            if priors_out is not None:
                write_table(priors, priors_out, "category_priors")
    except (HarmtraceError, ValueError) as exc:
        fail(exc)


@app.command("compare-extractors")
def compare_extractors_cmd(
    records: Annotated[Path, typer.Option(help="records with human labels")],
    out: Annotated[Path, typer.Option(help="comparison parquet")],
    numbers: Annotated[Path, typer.Option(help="numbers JSON for the paper")],
    table: Annotated[Path, typer.Option(help="LaTeX table")],
    extractors: Annotated[str, typer.Option(help="comma-separated names")] = "tfidf,wordllama",
    seeds: Annotated[str, typer.Option(help="comma-separated fold seeds")] = "0,1,2",
    folds: Annotated[int, typer.Option(help="folds per seed")] = 5,
    configured: Annotated[str, typer.Option(help="the configured default")] = "tfidf",
) -> None:
    """Repeated out-of-fold AUROC/AUPRC/F1 and throughput per extractor and category."""
    from harmtrace.graders.compare import (
        MIN_TEXTS_PER_S,
        choose_default_extractor,
        compare_extractors,
    )
    from harmtrace.io import read_table
    from harmtrace.report.grader_report import extractor_numbers, extractor_table
    from harmtrace.report.latex import write_table_tex
    from harmtrace.report.macros import write_numbers

    try:
        recs = read_table(records, "records")
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
    from harmtrace.graders.embedded import EmbeddedGrader
    from harmtrace.graders.relevance import validate_relevance
    from harmtrace.io import read_table
    from harmtrace.report.grader_report import relevance_numbers, relevance_table
    from harmtrace.report.latex import write_table_tex
    from harmtrace.report.macros import write_numbers

    try:
        recs = read_table(records, "records")
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
