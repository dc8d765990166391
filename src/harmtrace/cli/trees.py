"""Tree verbs: generate harm-benefit trees, fit the aggregation weights, score and steer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from harmtrace.cli._app import BadRows, MaxChars, app, fail, log, mapping_option
from harmtrace.errors import HarmtraceError

Spec = Annotated[
    str | None,
    typer.Option(
        help="the generator's config block as JSON, or @file.yaml (trees.generators.NAME)"
    ),
]
Generator = Annotated[
    str | None,
    typer.Option(help="tree generator by registry name (see docs/trees.md) [the offline one]"),
]
RecordsDir = Annotated[Path, typer.Option(help="folder of records parquet files")]
Endpoint = Annotated[
    list[str] | None,
    typer.Option(
        "--endpoint",
        metavar="KEY=VALUE",
        help="openai: one endpoint setting as KEY=VALUE (repeatable; null for none), e.g. "
        "--endpoint model=my-model; keys are those of "
        "harmtrace.llm.settings.EndpointSettings (docs/llm.md)",
    ),
]


def _default_generator() -> str:
    from harmtrace.trees.registry import DEFAULT_GENERATOR

    return DEFAULT_GENERATOR


def _generator(
    name: str,
    spec: str | None,
    model_dir: Path | None,
    raw_dir: Path | None,
    endpoint: list[str] | None = None,
) -> Any:
    from harmtrace.llm.settings import apply_endpoint_overrides
    from harmtrace.trees.registry import generator_class, make_generator

    overrides: dict[str, Any] = {}
    if raw_dir is not None:
        overrides["raw_dir"] = str(raw_dir)
    if model_dir is not None and "model_dir" in generator_class(name).Spec.model_fields:
        overrides["model_dir"] = str(model_dir)
    block = apply_endpoint_overrides(
        mapping_option(spec, "--spec"),
        endpoint,
        generator_class(name).Spec,
        f"tree generator {name!r}",
    )
    gen = make_generator(name, block, **overrides)
    gen.check()
    return gen


def _profiles(weights: Path, profiles: str | None) -> dict[str, Any]:
    from harmtrace.trees.harm_benefit import load_weights
    from harmtrace.trees.steering import profile_specs, resolve_profiles

    fitted, _ = load_weights(weights)
    return resolve_profiles(fitted, profile_specs(mapping_option(profiles, "--profiles")))


@app.command()
def trees(
    datasets: Annotated[
        list[str] | None, typer.Argument(help="datasets whose records get trees")
    ] = None,
    generator: Generator = None,
    spec: Spec = None,
    endpoint: Endpoint = None,
    records_dir: RecordsDir = Path("results/records"),
    out_dir: Annotated[
        Path, typer.Option(help="trees go to OUT_DIR/<generator>/<dataset>.jsonl")
    ] = Path("results/trees"),
    model_dir: Annotated[
        Path | None, typer.Option(help="trained grader folder (a generator built on it)")
    ] = None,
    raw_dir: Annotated[Path | None, typer.Option(help="where the AIR taxonomy was fetched")] = None,
    input: Annotated[Path | None, typer.Option(help="a .csv/.jsonl/.parquet of prompts")] = None,
    text_column: Annotated[str | None, typer.Option(help="prompt column of --input")] = None,
    id_column: Annotated[str | None, typer.Option(help="id column of --input")] = None,
    output: Annotated[Path | None, typer.Option(help="--input: per-row results parquet")] = None,
    weights: Annotated[
        Path | None, typer.Option(help="--input: fitted weights (fit-tree-weights)")
    ] = None,
    profiles: Annotated[
        str | None, typer.Option(help="steering profiles as JSON or @file (trees.profiles)")
    ] = None,
    bad_rows: BadRows = "error",
    max_text_chars: MaxChars = 100_000,
) -> None:
    """Harm-benefit trees for datasets (one JSONL per dataset), or for a file of prompts
    (with --input: tree JSON, score, probability, label per profile, top effects)."""
    from harmtrace.trees.tree_files import summarise, write_trees

    try:
        generator = generator or _default_generator()
        gen = _generator(generator, spec, model_dir, raw_dir, endpoint)
        if input is not None:
            if datasets:
                raise HarmtraceError("give DATASET names or --input, not both")
            if not text_column or output is None:
                raise HarmtraceError("--input needs --text-column and --output")
            _trees_for_file(
                gen, input, text_column, id_column, output, weights, profiles, bad_rows,
                max_text_chars,
            )  # fmt: skip
            return
        if not datasets:
            raise HarmtraceError("give one or more DATASET names, or --input FILE")
        from harmtrace.data.provenance import read_records

        for ds in datasets:
            recs = read_records(records_dir / f"{ds}.parquet", dataset=ds)
            out = gen.generate(recs)
            path = out_dir / generator / f"{ds}.jsonl"
            write_trees(out, path)
            for line in summarise(out).lines():
                log.info("%s: %s", ds, line)
            log.info("wrote %s", path)
    except HarmtraceError as exc:
        fail(exc)


def _trees_for_file(
    gen: Any,
    input: Path,
    text_column: str,
    id_column: str | None,
    output: Path,
    weights: Path | None,
    profiles: str | None,
    bad_rows: str,
    max_text_chars: int,
) -> None:
    import json

    import pandas as pd

    from harmtrace.data.normalize import read_texts, write_quarantine
    from harmtrace.io import check_output_file, write_table
    from harmtrace.trees.harm_benefit import score_table
    from harmtrace.trees.tree_files import prompt_records, summarise

    check_output_file(output, "--output")
    quarantine = check_output_file(output.with_name(f"{output.stem}.quarantine.jsonl"), "--output")
    weights = weights or Path("results/harm_benefit") / gen.name / "weights.json"
    steer = _profiles(weights, profiles)  # fail on bad weights before generating anything
    texts = read_texts(
        input,
        text_column,
        id_column,
        bad_rows=bad_rows,  # type: ignore[arg-type]
        max_text_chars=max_text_chars,
    )
    t = texts.texts
    recs = prompt_records(t["text"].tolist(), input.stem, t["id"].tolist())
    out = gen.generate(recs)
    for line in summarise(out).lines():
        log.info("%s", line)
    table = score_table(out, list(gen.taxonomy.level2), steer)
    table.insert(2, "input_id", t["id"].reset_index(drop=True))
    table.insert(3, "input_source_row", t["source_row"].reset_index(drop=True))
    table["input_text"] = t["text"].reset_index(drop=True)
    table["input_tree"] = pd.array(
        [
            json.dumps(r.tree.model_dump(mode="json"), sort_keys=True) if r.tree else None
            for r in out
        ],
        dtype="string",
    )
    write_table(table, output, "harm_benefit")
    write_quarantine(texts.quarantined, quarantine)
    log.info("wrote %d rows to %s (profiles: %s)", len(table), output, ", ".join(steer))
    if len(texts.quarantined):
        log.warning("quarantined %d bad row(s) to %s", len(texts.quarantined), quarantine)


@app.command("fit-tree-weights")
def fit_tree_weights(
    generator: Generator = None,
    trees_dir: Annotated[
        Path | None,
        typer.Option(help="folder of <dataset>.jsonl tree files [results/trees/GENERATOR]"),
    ] = None,
    records_dir: RecordsDir = Path("results/records"),
    out_dir: Annotated[
        Path | None,
        typer.Option(
            help="weights.json, weights_ci.parquet, oof.parquet [results/harm_benefit/GENERATOR]"
        ),
    ] = None,
    raw_dir: Annotated[Path, typer.Option(help="where the AIR taxonomy was fetched")] = Path(
        "data/raw"
    ),
    settings: Annotated[
        str | None, typer.Option(help="fit settings as JSON or @file (trees.fit)")
    ] = None,
) -> None:
    """Fit the aggregation weights to labels (harmful benchmarks vs benign texts), with
    leave-one-source-out and k-fold cross-fitted predictions and bootstrap intervals."""
    from harmtrace.data.air_taxonomy import load_air_taxonomy
    from harmtrace.data.provenance import read_records
    from harmtrace.io import write_table
    from harmtrace.trees.harm_benefit import FitSettings, fit_aggregation, fitting_set, save_weights
    from harmtrace.trees.tree_files import read_trees

    generator = generator or _default_generator()
    trees_dir = trees_dir or Path("results/trees") / generator
    out_dir = out_dir or Path("results/harm_benefit") / generator
    try:
        fs_settings = FitSettings.model_validate(mapping_option(settings, "--settings"))
        names = [*fs_settings.harmful, *fs_settings.benign]
        tree_files = {n: read_trees(trees_dir / f"{n}.jsonl") for n in names}
        records = {n: read_records(records_dir / f"{n}.parquet", dataset=n) for n in names}
        fs = fitting_set(tree_files, records, fs_settings)
        gens = {t.provenance.generator for t in fs.trees}
        if gens != {generator}:
            raise HarmtraceError(f"{trees_dir}: trees come from {sorted(gens)}, not {generator!r}")
        tax = load_air_taxonomy(raw_dir)
        log.info(
            "fitting on %d trees (%d harmful, %d benign; %d failed trees left out)",
            len(fs.trees),
            int(fs.y.sum()),
            int((1 - fs.y).sum()),
            sum(t.status == "failed" for t in fs.trees),
        )
        result = fit_aggregation(fs, list(tax.level2), fs_settings)
        first = fs.trees[0].provenance
        prov = {
            "generator": first.generator,
            "versions": sorted({t.provenance.version for t in fs.trees}),
            "spec_hash": first.spec_hash,
            "proxy": first.proxy,
        }
        out_dir.mkdir(parents=True, exist_ok=True)
        save_weights(result, out_dir / "weights.json", prov)
        write_table(result.ci, out_dir / "weights_ci.parquet", "tree_weights")
        write_table(result.oof, out_dir / "oof.parquet", "tree_oof")
        log.info("cross-fitted:\n%s", result.cv.to_string(index=False))
    except (HarmtraceError, ValueError) as exc:
        fail(exc)


@app.command("score-trees")
def score_trees_cmd(
    datasets: Annotated[list[str], typer.Argument(help="datasets whose trees to score")],
    trees_dir: Annotated[
        Path | None,
        typer.Option(help="folder of <dataset>.jsonl tree files [results/trees/GENERATOR]"),
    ] = None,
    weights_dir: Annotated[
        Path | None,
        typer.Option(
            help="weights.json (and oof.parquet) from fit-tree-weights "
            "[results/harm_benefit/GENERATOR]"
        ),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option(help="tables go here (default WEIGHTS_DIR)")
    ] = None,
    raw_dir: Annotated[Path, typer.Option(help="where the AIR taxonomy was fetched")] = Path(
        "data/raw"
    ),
    profiles: Annotated[
        str | None, typer.Option(help="steering profiles as JSON or @file (trees.profiles)")
    ] = None,
) -> None:
    """Score trees under the fitted weights and every steering profile (no regeneration):
    one harm_benefit table per dataset, with explanations and cross-fitted probabilities."""
    from harmtrace.data.air_taxonomy import load_air_taxonomy
    from harmtrace.io import read_table, write_table
    from harmtrace.trees.harm_benefit import score_table
    from harmtrace.trees.tree_files import read_trees

    try:
        weights_dir = weights_dir or Path("results/harm_benefit") / _default_generator()
        trees_dir = trees_dir or Path("results/trees") / _default_generator()
        steer = _profiles(weights_dir / "weights.json", profiles)
        oof_path = weights_dir / "oof.parquet"
        oof = read_table(oof_path, "tree_oof") if oof_path.is_file() else None
        tax = load_air_taxonomy(raw_dir)
        out_dir = out_dir or weights_dir
        for ds in datasets:
            table = score_table(read_trees(trees_dir / f"{ds}.jsonl"), list(tax.level2), steer, oof)
            path = out_dir / f"{ds}.parquet"
            write_table(table, path, "harm_benefit")
            rates = {p: float(table[f"label_{p}"].mean()) for p in steer}
            log.info(
                "%s: %d prompts, %d failed trees; flag rate %s",
                ds,
                len(table),
                int((table["tree_status"] == "failed").sum()),
                ", ".join(f"{p} {r:.1%}" for p, r in rates.items()),
            )
    except (HarmtraceError, ValueError) as exc:
        fail(exc)
