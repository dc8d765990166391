"""Out-of-source checks of the trained grader (leave-one-source-out transfer, relevance
against a judge) and the embedding cache its extractor reads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from harmtrace.cli._app import app, fail, log
from harmtrace.cli.train import (
    EmbeddingCaches,
    TrainedGrader,
    TrainingRecords,
    load_caches,
    parse_weights,
    read_training_records,
)
from harmtrace.errors import HarmtraceError

METRIC_TYPES = {
    "evaluation": "string",
    "dataset": "string",
    "positives": "string",
    "n": "Int64",
    "n_positive": "Int64",
    "n_benign": "Int64",
    "n_categories": "Int64",
    **{
        c: "Float64" for c in ("auroc", "auroc_categories", "f1", "recall", "fpr", "category_auroc")
    },
}
"""Column types of the transfer metrics table (schemas: transfer_metrics)."""


def _write_transfer_report(
    metrics: Any, harm_word_source: str | None, params: dict, numbers: Path, table: Path
) -> None:
    """The paper's numbers and table of the transfer evaluation."""
    from harmtrace.report.macros import count, text, write_numbers
    from harmtrace.report.transfer_report import (
        transfer_numbers,
        transfer_table,
        transfer_table_tex,
    )

    nums = transfer_numbers(metrics, harm_word_source)
    nums["loso c grid"] = text(
        ", ".join(f"{c:g}" for c in params.get("c_grid", ())) or "searched per fit"
    )
    nums["loso inner splits"] = count(params["inner_splits"])
    write_numbers(nums, numbers, "transfer")
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text(transfer_table_tex(transfer_table(metrics)), encoding="utf-8")


def _write_scores(frame: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


def _model_c_grid(manifest: dict) -> tuple[float, ...]:
    """The C values the trained model chose for its heads (``--c-from-model``)."""
    chosen = manifest["classifier"]["categories"]
    heads = [*chosen.values(), manifest["classifier"].get("harmful") or {}]
    return tuple(sorted({float(m["C"]) for m in heads if "C" in m}))


@app.command("evaluate-transfer")
def evaluate_transfer_cmd(
    records: TrainingRecords,
    model_dir: Annotated[Path, typer.Option(help="trained grader (for its out-of-fold scores)")],
    out: Annotated[Path, typer.Option(help="tidy metrics parquet (oof and loso rows)")],
    numbers: Annotated[Path, typer.Option(help="numbers JSON for the paper")],
    table: Annotated[Path, typer.Option(help="LaTeX table")],
    scores_out: Annotated[
        Path | None, typer.Option(help="leave-one-source-out scores parquet")
    ] = None,
    holdout: Annotated[
        list[str] | None,
        typer.Option(help="sources to hold out (default: every prompt set in the label table)"),
    ] = None,
    harm_word_source: Annotated[
        str | None, typer.Option(help="the benign-with-harm-words source whose FPR is reported")
    ] = None,
    extractor: Annotated[
        str | None, typer.Option(help="extractor (default: the trained model's)")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of fitting")] = 0,
    c_from_model: Annotated[
        bool,
        typer.Option(help="use the C values the trained model chose: no nested C search"),
    ] = False,
    inner_splits: Annotated[
        int, typer.Option(help="inner folds for Platt scaling and thresholds of each fit")
    ] = 5,
    source_weight: Annotated[
        list[str] | None, typer.Option(help="DATASET=WEIGHT, as for train-grader")
    ] = None,
    embedding_cache: EmbeddingCaches = None,
    grader: TrainedGrader = None,
) -> None:
    """Prompt-level AUROC, F1 and FPR per source: in-source (out-of-fold) and out-of-source
    (a grader fitted without that source).

    ``--c-from-model`` fits each held-out grader with the ``C`` values the trained model
    chose on all training data (one fit per source, no grid search): the choice of ``C``
    then saw the held-out labels, a small optimism the docs state, for the time budget.
    """
    import json

    import pandas as pd

    from harmtrace.graders.labels import load_label_map
    from harmtrace.graders.registry import training_api
    from harmtrace.graders.transfer import loso_scores, transfer_metrics
    from harmtrace.io import write_table

    try:
        api = training_api(grader)
        recs = read_training_records(records, grader)
        names = sorted(set(recs["dataset"].astype(str)))
        sources = list(holdout or sorted(set(names) & set(load_label_map())))
        if not sources:
            raise HarmtraceError(f"no prompt sources to hold out among {names}")
        manifest = json.loads((model_dir / api.MANIFEST_FILE).read_text(encoding="utf-8"))
        extractor = extractor or manifest["extractor"]["name"]
        params: dict = {"inner_splits": inner_splits}
        if c_from_model:
            params["c_grid"] = _model_c_grid(manifest)
        log.info("leave-one-source-out over %s (%s, %s)", sources, extractor, params)
        loso = loso_scores(recs, sources, extractor=extractor, seed=seed,
                           source_weights=parse_weights(source_weight),
                           embedding_caches=load_caches(embedding_cache), **params)  # fmt: skip
        oof = pd.read_parquet(model_dir / api.OOF_FILE)
        metrics = pd.concat([transfer_metrics(recs, oof, "oof", sources),
                             transfer_metrics(recs, loso, "loso", sources)],
                            ignore_index=True)  # fmt: skip
        log.info("transfer metrics:\n%s", metrics.to_string())
        write_table(metrics.astype(METRIC_TYPES), out, "transfer_metrics")
        if scores_out is not None:
            _write_scores(loso, scores_out)
        _write_transfer_report(metrics, harm_word_source, params, numbers, table)
    except (HarmtraceError, ValueError) as exc:
        fail(exc)


@app.command("embed-texts")
def embed_texts_cmd(
    records: Annotated[list[Path], typer.Argument(help="records parquet files")],
    out: Annotated[Path, typer.Option(help="embedding cache parquet")],
    extractor: Annotated[str, typer.Option(help="a stateless extractor: minilm | wordllama")],
    responses: Annotated[bool, typer.Option(help="embed responses too")] = False,
    model_dir: Annotated[
        Path | None,
        typer.Option(
            help="trained grader: embed every text grading reads (prompts, "
            "responses and what each response conveys)"
        ),
    ] = None,
    sentences: Annotated[
        bool, typer.Option(help="embed each response sentence too (what moderation scores)")
    ] = False,
    threads: Annotated[int, typer.Option(min=1, help="torch CPU threads")] = 1,
    known: Annotated[
        list[Path] | None,
        typer.Option(help="caches of the same encoder whose vectors are reused (not redone)"),
    ] = None,
    grader: TrainedGrader = None,
) -> None:
    """Embed each distinct text once and keep the vectors as an artifact."""
    from harmtrace.data.provenance import read_records
    from harmtrace.graders.base import as_texts
    from harmtrace.graders.features import EmbeddingCache, encoder_id, make_extractor, text_key
    from harmtrace.graders.registry import training_api

    try:
        ex = make_extractor(extractor)
        if not ex.stateless:
            raise HarmtraceError(f"{extractor!r} is fitted on a corpus; only embeddings cache")
        getattr(ex, "set_threads", lambda n: None)(threads)
        model = None
        if model_dir is not None:
            model = training_api(grader).load_model(model_dir)
        texts: list[str] = []
        for path in records:
            frame = read_records(path)
            if model is not None:
                texts += model.texts_read(frame)
            else:
                texts += as_texts(frame["prompt"])
                if responses:
                    texts += as_texts(frame["response"].dropna())
            if sentences and "response" in frame:
                from harmtrace.moderate.sentences import split_many

                spans = split_many(as_texts(frame["response"].dropna()))
                texts += [sp.text for group in spans for sp in group]
        unique = sorted(set(texts), key=lambda t: (len(t), t))
        cache = EmbeddingCache(extractor, encoder=encoder_id(ex))
        wanted = {text_key(t) for t in unique}
        for path in known or []:
            other = EmbeddingCache.load(path, extractor)
            if other.encoder and other.encoder != cache.encoder:
                raise HarmtraceError(f"{path}: made by {other.encoder}, not {cache.encoder}")
            cache.vectors.update({k: v for k, v in other.vectors.items() if k in wanted})
        reused = len(cache.vectors)
        cache.lookup(unique, ex.transform)
        cache.save(out)
        log.info("%d distinct texts (%d reused, %d new) with %s into %s", len(unique),
                 reused, len(unique) - reused, cache.encoder, out)  # fmt: skip
    except (HarmtraceError, ValueError, ImportError) as exc:
        fail(exc)


@app.command("evaluate-refusal-transfer")
def evaluate_refusal_transfer_cmd(
    lexicon: Annotated[Path, typer.Option(help="refusal strings records (garak-refusal)")],
    source: Annotated[
        list[Path],
        typer.Option(help="records with refusal labels (pyr_refusal or air_judge_score); repeat"),
    ],
    out: Annotated[Path, typer.Option(help="metrics parquet (per source and evaluation)")],
    numbers: Annotated[Path, typer.Option(help="numbers JSON for the paper")],
    table: Annotated[Path, typer.Option(help="LaTeX table")],
    train: Annotated[
        list[str] | None,
        typer.Option(help="dataset the deployed detector trains on (refusal.labels); repeat"),
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of folds and bootstrap")] = 0,
    n_boot: Annotated[int, typer.Option(min=100, help="bootstrap resamples per kappa")] = 2000,
) -> None:
    """Refusal detection in source, out of source and as deployed, per labelled source."""
    from harmtrace.data.provenance import read_records
    from harmtrace.graders.refusal_transfer import refusal_labels, refusal_transfer
    from harmtrace.io import write_table
    from harmtrace.report.latex import write_table_tex
    from harmtrace.report.macros import write_numbers
    from harmtrace.report.transfer_report import refusal_transfer_numbers, refusal_transfer_table

    try:
        sources = {}
        for path in source:
            labelled = refusal_labels(read_records(path))
            name = str(labelled["dataset"].iloc[0])
            if name in sources:
                raise HarmtraceError(f"{path}: source {name!r} given twice")
            sources[name] = labelled
        result = refusal_transfer(
            read_records(lexicon), sources, train=train, seed=seed, n_resamples=n_boot
        )
        log.info("refusal transfer:\n%s", result.metrics.to_string())
        write_table(result.metrics, out, "refusal_transfer")
        write_numbers(refusal_transfer_numbers(result.metrics), numbers, "refusal_transfer")
        tab = refusal_transfer_table(result.metrics)
        write_table_tex(
            tab,
            table,
            align="l" + "r" * (tab.shape[1] - 1),
            raw_header=tuple(c for c in tab.columns if "$" in c),
        )
    except (HarmtraceError, ValueError) as exc:
        fail(exc)


@app.command("validate-relevance")
def validate_relevance_cmd(
    records: Annotated[Path, typer.Option(help="AIR-Bench records (air_judge_score)")],
    judgments: Annotated[Path, typer.Option(help="their judgments")],
    numbers: Annotated[Path, typer.Option(help="numbers JSON for the paper")],
    table: Annotated[Path, typer.Option(help="LaTeX confusion table")],
    model_dir: Annotated[Path, typer.Option(help="the trained grader's model folder")],
    refusal_table: Annotated[
        Path | None,
        typer.Option(help="LaTeX table: refusal detector in source vs out of sample"),
    ] = None,
    grader: TrainedGrader = None,
) -> None:
    """Agreement of relevance/refusal with the AIR-Bench judge's refusal scores.

    The refusal detector never saw these responses: its figures here are out of sample,
    reported beside its in-source figures (out-of-fold on its own labelled responses).
    """
    from harmtrace.data.provenance import read_records
    from harmtrace.graders.refusal import agreement
    from harmtrace.graders.registry import training_api
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
        model = training_api(grader).load_model(model_dir)
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
        in_source = detector.training_["in_source"]
        nums = relevance_numbers(result["summary"])
        for key, value in refusal_numbers(in_source, test, detector.params()).items():
            nums[f"refusal {key}"] = value
        write_numbers(nums, numbers, "relevance")
        write_table_tex(relevance_table(result["confusion"]), table, align="lrrr")
        if refusal_table is not None:
            labelled = ", ".join(detector.training_["labelled"]) or "labelled responses"
            test_name = str(recs["dataset"].iloc[0]) if len(recs) else "test"
            tab = refusal_frame(in_source, test, labelled, test_name)
            write_table_tex(
                tab, refusal_table, raw_columns=tuple(tab.columns), align="lrr",
                escape_header=False,
            )  # fmt: skip
        log.info("relevance validation:\n%s", result["summary"].to_string())
    except (HarmtraceError, ValueError) as exc:
        fail(exc)
