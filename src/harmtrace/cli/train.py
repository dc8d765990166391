"""Verbs of the grader the workflow trains (:func:`harmtrace.study.trained_grader`):
fit it with its refusal detector, report its out-of-fold validity, compare extractors.

The backend is found through the registry (``--grader``, default
:func:`~harmtrace.graders.registry.default_grader`) and reached through its training
interface (:class:`harmtrace.graders.base.TrainingAPI`), so these verbs name no backend;
the rules add the backend's modules to each job's code hash.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from harmtrace.cli._app import app, fail, log
from harmtrace.errors import HarmtraceError

TrainingRecords = Annotated[
    list[Path], typer.Option(help="the grader's training records; repeat per dataset")
]
EmbeddingCaches = Annotated[
    list[Path] | None, typer.Option(help="embeddings from `harmtrace embed-texts`")
]
TrainedGrader = Annotated[
    str | None,
    typer.Option(help="a grader the workflow trains (see `harmtrace graders`) [the default one]"),
]


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


def read_training_records(paths: list[Path], grader: str | None = None) -> Any:
    """One training frame from several records parquet files (each its own dataset)."""
    from harmtrace.data.provenance import read_records
    from harmtrace.graders.registry import training_api

    return training_api(grader).training_frame([read_records(p) for p in paths])


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
    stats = detector.training_["in_source"]
    log.info(
        "refusal detector: %d lexicon strings, threshold %.3f; in source (out-of-fold on "
        "%d labelled responses) kappa %.2f, recall %.2f, false-positive rate %.2f",
        len(detector.substrings_) + len(detector.prefixes_),
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
    embedding_cache: EmbeddingCaches = None,
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
    grader: TrainedGrader = None,
) -> None:
    """Fit the trained grader on all labelled records and score them out-of-fold.

    With ``--refusal-lexicon`` and ``--refusal-labels`` the refusal detector that relevance
    uses is trained too; without them the model grades prompts and texts, not responses.
    """
    import shutil

    from harmtrace.graders.registry import training_api

    try:
        api = training_api(grader)
        extractor = extractor or api.DEFAULT_EXTRACTOR
        if (refusal_lexicon is None) != (not refusal_labels):
            raise HarmtraceError("give --refusal-lexicon and --refusal-labels together")
        recs = read_training_records(records, grader)
        weights = parse_weights(source_weight)
        detector = None
        if refusal_lexicon is not None and refusal_labels:
            detector = train_refusal_detector(refusal_lexicon, refusal_labels, seed)
        else:
            log.warning("no refusal detector: this model cannot grade responses")
        log.info("training and cross-fitting %d folds on %d records from %s (%s, weights %s)",
                 folds, len(recs), sorted(recs["dataset"].unique()), extractor,
                 weights or "all 1")  # fmt: skip
        model = api.train_grader(
            recs, model_dir, extractor=extractor, seed=seed, n_splits=folds,
            source_weights=weights, embedding_caches=load_caches(embedding_cache),
            refusal=detector, n_jobs=jobs,
        )  # fmt: skip
        log.info("saved %s (version %s)", model_dir, model.version)
        if oof is not None:
            oof.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(model_dir / api.OOF_FILE, oof)
    except (HarmtraceError, ValueError) as exc:
        fail(exc)


@app.command("evaluate-grader")
def evaluate_grader(
    records: TrainingRecords,
    model_dir: Annotated[Path, typer.Option(help="the trained grader's model folder")],
    numbers: Annotated[Path, typer.Option(help="numbers JSON for the paper")],
    table: Annotated[Path, typer.Option(help="LaTeX table of out-of-fold metrics")],
    grader: TrainedGrader = None,
) -> None:
    """Out-of-fold validity of the trained grader against its human moderation labels.

    A verb of its own, apart from training, so that an edit of the statistics reruns this
    report and not the training and grading.
    """
    import json

    from harmtrace.graders.evaluation import oof_metrics, severe_agreement
    from harmtrace.graders.labels import moderation_rows
    from harmtrace.graders.registry import training_api
    from harmtrace.report.grader_report import grader_numbers, grader_table
    from harmtrace.report.latex import write_table_tex
    from harmtrace.report.macros import count, pct, text, write_numbers

    try:
        api = training_api(grader)
        recs = read_training_records(records, grader)
        n_total, n_sources = len(recs), int(recs["dataset"].nunique())
        scores = api.stored_oof_scores(model_dir, recs)
        if scores is None:
            raise HarmtraceError(f"{records}: not the training records of {model_dir}")
        manifest = json.loads((model_dir / api.MANIFEST_FILE).read_text(encoding="utf-8"))
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
    embedding_cache: EmbeddingCaches = None,
    throughput: Annotated[
        Path | None,
        typer.Option(help="JSON of the texts/s measured here (a timing, never a product)"),
    ] = None,
    grader: TrainedGrader = None,
) -> None:
    """Out-of-fold AUROC/AUPRC/F1 per extractor and category on the moderation texts, and
    leave-one-source-out AUROC on the prompt sets; the rule
    (:func:`~harmtrace.graders.compare.choose_default_extractor`) ranks by the latter.

    No product reads a timing: the measured rates go to ``--throughput`` only."""
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
        everything = read_training_records(records, grader)
        caches = load_caches(embedding_cache)
        recs = everything[moderation_rows(everything)].reset_index(drop=True)
        if recs.empty:
            raise HarmtraceError(f"{records}: no moderation-labelled records (label_<KEY>)")
        sources = sorted(set(everything["dataset"].astype(str)) & set(load_label_map()))
        if not sources:
            log.warning("no prompt set among the records: the rule reads out-of-fold AUPRC only")
        summary = compare_extractors(recs, extractors=names, n_splits=folds,
                                     seeds=[int(x) for x in seeds.split(",") if x],
                                     embedding_caches=caches)  # fmt: skip
        loso = pd.DataFrame({"extractor": [], "dataset": [], "auroc": []})
        if sources:
            loso = loso_comparison(everything, names, sources, inner_splits=inner_splits,
                                   embedding_caches=caches)  # fmt: skip
        _write_comparison(summary, loso, out, loso_out, throughput)
        chosen = choose_default_extractor(summary, loso)
        log.info("comparison:\n%s\nLOSO:\n%s\nrule picks %s", summary.to_string(),
                 loso.to_string(), chosen)  # fmt: skip
        write_numbers(extractor_numbers(summary, loso, chosen, configured), numbers, "extractors")
        tab = extractor_table(summary, loso)
        write_table_tex(tab, table, raw_columns=tuple(tab.columns), align="lrrrrrr")
    except (HarmtraceError, ValueError) as exc:
        fail(exc)


def _write_comparison(
    summary: Any, loso: Any, out: Path, loso_out: Path | None, throughput: Path | None
) -> None:
    """The comparison tables, and the measured rates apart from them (a timing)."""
    import json

    measured = summary.groupby("extractor", sort=False)["texts_per_s"].median()
    out.parent.mkdir(parents=True, exist_ok=True)
    summary.drop(columns=["texts_per_s"]).to_parquet(out, index=False)
    if loso_out is not None:
        loso.to_parquet(loso_out, index=False)
    if throughput is not None:
        rates = {str(k): float(v) for k, v in measured.items()}
        throughput.parent.mkdir(parents=True, exist_ok=True)
        throughput.write_text(json.dumps(rates, indent=2) + "\n", encoding="utf-8")
