"""Grading verbs: train and compare the embedded grader, grade records or files, validity checks."""

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
    from harmtrace.data.provenance import read_records
    from harmtrace.graders.embedded import training_frame

    return training_frame([read_records(p) for p in paths])


def load_caches(paths: list[Path] | None) -> dict[str, Any] | None:
    """Embedding caches (``harmtrace embed-texts`` output) keyed by extractor name."""
    if not paths:
        return None
    from harmtrace.graders.features import load_caches as load

    try:
        return load(paths)
    except ValueError as exc:
        raise HarmtraceError(str(exc)) from exc


def train_refusal_detector(lexicon: Path, labels: Path | list[Path], seed: int) -> Any:
    """The refusal detector from lexicon records and labelled responses, one or several
    sets pooled (never AIR-Bench)."""
    import pandas as pd

    from harmtrace.data.provenance import read_records
    from harmtrace.graders.refusal import RefusalDetector

    paths = [labels] if isinstance(labels, Path) else list(labels)
    pooled = pd.concat([read_records(p) for p in paths], ignore_index=True)
    detector = RefusalDetector(seed=seed).fit(read_records(lexicon), pooled)
    stats = detector.training["in_source"]
    log.info(
        "refusal detector: %d lexicon strings, threshold %.3f; in source (out-of-fold on "
        "%d labelled responses) kappa %.2f, recall %.2f, false-positive rate %.2f",
        len(detector.substrings) + len(detector.prefixes),
        detector.threshold_,
        stats["n"],
        stats["kappa"],
        stats["recall"],
        stats["false_positive_rate"],
    )
    return detector


@app.command("train-grader")
def train_grader(
    records: Annotated[
        list[Path],
        typer.Option(help="records parquet with human labels; repeat for several datasets"),
    ],
    model_dir: Annotated[
        Path, typer.Option(help="folder for model.pkl, manifest.json, oof_scores.parquet")
    ],
    oof: Annotated[Path | None, typer.Option(help="also copy the out-of-fold scores here")] = None,
    extractor: Annotated[
        str | None,
        typer.Option(
            help="tfidf | wordllama | minilm, or a stack such as tfidf+minilm "
            "(default: the documented pick)"
        ),
    ] = None,
    folds: Annotated[int, typer.Option(help="cross-fitting folds")] = 5,
    seed: Annotated[int, typer.Option(help="seed of folds and fitting")] = 0,
    source_weight: Annotated[
        list[str] | None, typer.Option(help="DATASET=WEIGHT per record of that dataset")
    ] = None,
    embedding_cache: Annotated[
        list[Path] | None, typer.Option(help="embeddings from `harmtrace embed-texts`")
    ] = None,
    refusal_lexicon: Annotated[
        Path | None, typer.Option(help="refusal strings records (garak-refusal) for relevance")
    ] = None,
    refusal_labels: Annotated[
        list[Path] | None,
        typer.Option(
            help="responses with human refusal labels (pyrit-refusal) for relevance; "
            "repeat to pool several sets"
        ),
    ] = None,
    jobs: Annotated[
        int, typer.Option(min=1, help="processes fitting the fold models (same result)")
    ] = 1,
) -> None:
    """Fit the embedded grader on all labelled records and score them out-of-fold.

    With ``--refusal-lexicon`` and ``--refusal-labels`` the refusal detector that relevance
    uses is trained too; without them the model grades prompts and texts, not responses.
    """
    import shutil

    from harmtrace.graders.embedded import DEFAULT_EXTRACTOR, OOF_FILE
    from harmtrace.graders.embedded import train_grader as fit_and_cross_fit

    extractor = extractor or DEFAULT_EXTRACTOR
    try:
        if (refusal_lexicon is None) != (not refusal_labels):
            raise HarmtraceError("give --refusal-lexicon and --refusal-labels together")
        recs = read_training_records(records)
        weights = parse_weights(source_weight)
        detector = None
        if refusal_lexicon is not None and refusal_labels:
            detector = train_refusal_detector(refusal_lexicon, refusal_labels, seed)
        else:
            log.warning("no refusal detector: this model cannot grade responses")
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
            refusal=detector,
            n_jobs=jobs,
        )
        log.info("saved %s (version %s)", model_dir, model.version)
        if oof is not None:
            oof.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(model_dir / OOF_FILE, oof)
    except (HarmtraceError, ValueError) as exc:
        fail(exc)


@app.command("evaluate-grader")
def evaluate_grader(
    records: Annotated[
        list[Path], typer.Option(help="the grader's training records; repeat per dataset")
    ],
    model_dir: Annotated[Path, typer.Option(help="trained embedded grader")],
    numbers: Annotated[Path, typer.Option(help="numbers JSON for the paper")],
    table: Annotated[Path, typer.Option(help="LaTeX table of out-of-fold metrics")],
) -> None:
    """Out-of-fold validity of the embedded grader against its human moderation labels.

    A verb of its own, apart from training, so that an edit of the statistics reruns this
    report and not the training and grading.
    """
    import json

    from harmtrace.graders.embedded import MANIFEST_FILE, stored_oof_scores
    from harmtrace.graders.evaluation import oof_metrics, severe_agreement
    from harmtrace.graders.labels import moderation_rows
    from harmtrace.report.grader_report import grader_numbers, grader_table
    from harmtrace.report.latex import write_table_tex
    from harmtrace.report.macros import count, pct, text, write_numbers

    try:
        recs = read_training_records(records)
        n_total, n_sources = len(recs), int(recs["dataset"].nunique())
        scores = stored_oof_scores(model_dir, recs)
        if scores is None:
            raise HarmtraceError(f"{records}: not the training records of {model_dir}")
        manifest = json.loads((model_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
        extractor = manifest["extractor"]["name"]
        folds = int(manifest["files"]["oof_scores.parquet"]["n_splits"])
        recs = recs[moderation_rows(recs)]  # the moderation-set figures of the paper
        if recs.empty:
            raise HarmtraceError(f"{records}: no moderation-labelled records (label_<KEY>)")
        scores = scores[scores["record_id"].isin(recs["record_id"].astype("string"))]
        metrics = oof_metrics(recs, scores)
        log.info("out-of-fold metrics:\n%s", metrics.to_string())
        severe = severe_agreement(recs, scores)
        nums = grader_numbers(metrics, severe, len(recs), extractor, folds)
        nums["n train total"] = count(n_total)
        nums["n sources"] = count(n_sources)
        # the prior each category's classifier was fitted with (weighted share of positives
        # among its training texts with a known label), as the model manifest records it
        for cat, fit in manifest["classifier"]["categories"].items():
            if fit.get("prior") is not None:
                nums[f"{cat} training prior"] = pct(fit["prior"])
                nums[f"{cat} training known"] = count(int(fit["n_train"]))
        parts = manifest["extractor"].get("params", {}).get("parts") or [manifest["extractor"]]
        encoders = [p["params"]["model"] for p in parts if "model" in p.get("params", {})]
        nums["encoder"] = text(", ".join(encoders) or "none")
        write_numbers(nums, numbers, "grader")
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
        typer.Option(help="embedded: also write judgments adjusted to this dataset's priors"),
    ] = None,
    raw_out: Annotated[
        Path | None,
        typer.Option(help="embedded: also write the unadjusted judgments (prior shift off)"),
    ] = None,
    priors_out: Annotated[
        Path | None,
        typer.Option(help="embedded: the dataset's EM category priors beside the training ones"),
    ] = None,
    in_sample: Annotated[
        bool,
        typer.Option(help="embedded: score training texts with the final model, not out-of-fold"),
    ] = False,
) -> None:
    """Severity per category, confidence and relevance for records or a file of texts.

    Flags override the backend's config block given with --spec (--endpoint KEY=VALUE
    its endpoint keys); the openai backend's key is read only from the environment
    variable named by --endpoint api_key_env=NAME.
    """
    from harmtrace.graders.registry import grader_class, make_grader
    from harmtrace.graders.shards import Shard, read_shard
    from harmtrace.io import write_table
    from harmtrace.llm.settings import apply_endpoint_overrides

    try:
        if input is not None:
            if not text_column or output is None:
                raise HarmtraceError("--input needs --text-column and --output")
            quarantine = _check_input_outputs(output, quarantine)
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
        backend = make_grader(grader, block, **overrides)
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
        extras = (prior_shift_out, raw_out, priors_out)
        if grader != "embedded" and (in_sample or any(p is not None for p in extras)):
            raise HarmtraceError(
                "--in-sample, --prior-shift-out, --raw-out and --priors-out are options of "
                "the embedded grader"
            )
        if part and any(p is not None for p in extras):
            raise HarmtraceError("prior shift needs a whole dataset: drop --shard")
        options = {"in_sample": in_sample} if grader == "embedded" else {}
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
            raw = judged
            if backend.spec.prior_shift:
                raw = backend.grade(recs, in_sample=in_sample, prior_shift=False)
            shifted, priors = backend.grade_shifted(recs, raw=raw, in_sample=in_sample)
            log.info("category priors (EM, Saerens et al. 2002):\n%s", priors.to_string())
            for path, frame, schema in (
                (prior_shift_out, shifted, "judgments"),
                (raw_out, raw, "judgments"),
                (priors_out, priors, "category_priors"),
            ):
                if path is not None:
                    write_table(frame, path, schema)
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
    records: Annotated[
        list[Path],
        typer.Option(
            help="the grader's training records (repeat): moderation texts and prompt sets"
        ),
    ],
    out: Annotated[Path, typer.Option(help="comparison parquet")],
    numbers: Annotated[Path, typer.Option(help="numbers JSON for the paper")],
    table: Annotated[Path, typer.Option(help="LaTeX table")],
    extractors: Annotated[
        str | None, typer.Option(help="comma-separated names (default: COMPARED_EXTRACTORS)")
    ] = None,
    seeds: Annotated[str, typer.Option(help="comma-separated fold seeds")] = "0,1,2",
    folds: Annotated[int, typer.Option(help="folds per seed")] = 5,
    configured: Annotated[
        str | None, typer.Option(help="the configured default (default: the documented pick)")
    ] = None,
    loso_out: Annotated[
        Path | None, typer.Option(help="leave-one-source-out AUROC parquet")
    ] = None,
    inner_splits: Annotated[
        int, typer.Option(min=2, help="inner folds of each leave-one-source-out fit")
    ] = 3,
    embedding_cache: Annotated[
        list[Path] | None, typer.Option(help="embeddings from `harmtrace embed-texts`")
    ] = None,
    throughput: Annotated[
        Path | None,
        typer.Option(help="JSON of the texts/s measured here (a timing, never a product)"),
    ] = None,
) -> None:
    """Out-of-fold AUROC/AUPRC/F1 per extractor and category on the moderation texts, and
    leave-one-source-out AUROC on the prompt sets; the rule
    (:func:`~harmtrace.graders.compare.choose_default_extractor`) ranks by the latter.

    No product reads a timing: the measured rates go to ``--throughput`` only."""
    import json

    import pandas as pd

    from harmtrace.graders.compare import (
        choose_default_extractor,
        compare_extractors,
        loso_comparison,
    )
    from harmtrace.graders.features import COMPARED_EXTRACTORS, DEFAULT_EXTRACTOR
    from harmtrace.graders.labels import load_label_map, moderation_rows
    from harmtrace.report.grader_report import extractor_numbers, extractor_table
    from harmtrace.report.latex import write_table_tex
    from harmtrace.report.macros import write_numbers

    names = [e for e in (extractors or ",".join(COMPARED_EXTRACTORS)).split(",") if e]
    configured = configured or DEFAULT_EXTRACTOR
    try:
        everything = read_training_records(records)
        caches = load_caches(embedding_cache)
        recs = everything[moderation_rows(everything)].reset_index(drop=True)
        if recs.empty:
            raise HarmtraceError(f"{records}: no moderation-labelled records (label_<KEY>)")
        sources = sorted(
            n for n in everything["dataset"].astype(str).unique() if n in load_label_map()
        )
        if not sources:
            log.warning("no prompt set among the records: the rule reads out-of-fold AUPRC only")
        summary = compare_extractors(
            recs,
            extractors=names,
            n_splits=folds,
            seeds=[int(x) for x in seeds.split(",") if x],
            embedding_caches=caches,
        )
        loso = (
            loso_comparison(
                everything, names, sources, inner_splits=inner_splits, embedding_caches=caches
            )
            if sources
            else pd.DataFrame({"extractor": [], "dataset": [], "auroc": []})
        )
        measured = summary.groupby("extractor", sort=False)["texts_per_s"].median()
        out.parent.mkdir(parents=True, exist_ok=True)
        summary.drop(columns=["texts_per_s"]).to_parquet(out, index=False)
        if loso_out is not None:
            loso.to_parquet(loso_out, index=False)
        if throughput is not None:
            rates = {str(k): float(v) for k, v in measured.items()}
            throughput.parent.mkdir(parents=True, exist_ok=True)
            throughput.write_text(json.dumps(rates, indent=2) + "\n", encoding="utf-8")
        chosen = choose_default_extractor(summary, loso)
        log.info("comparison:\n%s\nLOSO:\n%s\nrule picks %s", summary.to_string(),
                 loso.to_string(), chosen)  # fmt: skip
        write_numbers(extractor_numbers(summary, loso, chosen, configured), numbers, "extractors")
        tab = extractor_table(summary, loso)
        write_table_tex(tab, table, raw_columns=tuple(tab.columns), align="lrrrrrr")
    except (HarmtraceError, ValueError) as exc:
        fail(exc)


@app.command("validate-relevance")
def validate_relevance_cmd(
    records: Annotated[Path, typer.Option(help="AIR-Bench records (air_judge_score)")],
    judgments: Annotated[Path, typer.Option(help="their judgments")],
    numbers: Annotated[Path, typer.Option(help="numbers JSON for the paper")],
    table: Annotated[Path, typer.Option(help="LaTeX confusion table")],
    refusal_table: Annotated[
        Path | None,
        typer.Option(help="LaTeX table: refusal detector in source vs out of sample"),
    ] = None,
    model_dir: Annotated[Path, typer.Option(help="trained embedded grader")] = Path(
        "results/models/embedded"
    ),
) -> None:
    """Agreement of relevance/refusal with the AIR-Bench judge's refusal scores.

    The refusal detector never saw these responses: its figures here are out of sample,
    reported beside its in-source figures (out-of-fold on its own labelled responses).
    """
    from harmtrace.data.provenance import read_records
    from harmtrace.graders.embedded import EmbeddedGrader
    from harmtrace.graders.refusal import agreement
    from harmtrace.graders.relevance import validate_relevance
    from harmtrace.io import read_table
    from harmtrace.report.grader_report import (
        refusal_frame,
        refusal_numbers,
        relevance_numbers,
        relevance_table,
    )
    from harmtrace.report.latex import write_table_tex
    from harmtrace.report.macros import write_numbers

    try:
        recs = read_records(records)
        judged = read_table(judgments, "judgments")
        model = EmbeddedGrader.load(model_dir)
        detector = model.relevance.refusal if model.relevance is not None else None
        if detector is None:
            raise HarmtraceError(
                f"{model_dir}: the model has no refusal detector; retrain with "
                "--refusal-lexicon and --refusal-labels"
            )
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
        per = result["per_record"]
        refused = per["air_judge_score"].to_numpy() == 1.0
        test = agreement(
            refused,
            per["refusal"].astype(bool).to_numpy(),
            per["refusal_probability"].to_numpy(dtype=float),
        )
        in_source = detector.training["in_source"]
        nums = relevance_numbers(result["summary"])
        for key, value in refusal_numbers(in_source, test, detector.params()).items():
            nums[f"refusal {key}"] = value
        write_numbers(nums, numbers, "relevance")
        write_table_tex(relevance_table(result["confusion"]), table, align="lrrr")
        if refusal_table is not None:
            labelled = ", ".join(detector.training["labelled"]) or "labelled responses"
            test_name = str(recs["dataset"].iloc[0]) if len(recs) else "test"
            tab = refusal_frame(in_source, test, labelled, test_name)
            write_table_tex(
                tab, refusal_table, raw_columns=tuple(tab.columns), align="lrr",
                escape_header=False,
            )  # fmt: skip
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
