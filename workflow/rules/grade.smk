EMBEDDED = config["grader"]["embedded"]
TRAIN = EMBEDDED["train_dataset"]


rule train_grader:
    """Fit the embedded grader on human labels; score its own training texts out-of-fold."""
    input:
        records=f"results/records/{TRAIN}.parquet",
    output:
        model="results/models/embedded/model.pkl",
        manifest="results/models/embedded/manifest.json",
        oof="results/models/embedded/oof_scores.parquet",
        numbers="results/numbers/grader.json",
        table="results/tables/grader--oof_metrics.tex",
    log:
        "results/logs/grade/train_grader.log",
    benchmark:
        "results/benchmarks/grade/train_grader.tsv"
    conda:
        "../../environment.yml"
    params:
        extractor=EMBEDDED["extractor"],
        folds=EMBEDDED["folds"],
        seed=EMBEDDED["seed"],
        model_dir=lambda wildcards, output: Path(output.model).parent,
    shell:
        "harmtrace train-grader --records {input.records} --model-dir {params.model_dir} "
        "--extractor {params.extractor} --folds {params.folds} --seed {params.seed} "
        "--numbers {output.numbers} --table {output.table} > {log} 2>&1"


rule compare_extractors:
    """Out-of-fold AUROC/AUPRC/F1 and throughput of each offline feature extractor."""
    input:
        records=f"results/records/{TRAIN}.parquet",
    output:
        results="results/models/embedded/extractor_comparison.parquet",
        numbers="results/numbers/extractors.json",
        table="results/tables/extractors--comparison.tex",
    log:
        "results/logs/grade/compare_extractors.log",
    benchmark:
        "results/benchmarks/grade/compare_extractors.tsv"
    conda:
        "../../environment.yml"
    threads: 2
    params:
        extractors=",".join(EMBEDDED["compare"]["extractors"]),
        seeds=",".join(str(s) for s in EMBEDDED["compare"]["seeds"]),
        folds=EMBEDDED["folds"],
        configured=EMBEDDED["extractor"],
    shell:
        "harmtrace compare-extractors --records {input.records} "
        "--extractors {params.extractors} --seeds {params.seeds} --folds {params.folds} "
        "--configured {params.configured} --out {output.results} "
        "--numbers {output.numbers} --table {output.table} > {log} 2>&1"


rule grade:
    """Severity, confidence and relevance for every record of one dataset."""
    input:
        records="results/records/{dataset}.parquet",
        # the training set is graded with the model's stored out-of-fold scores
        model=rules.train_grader.output.model,
    output:
        "results/judgments/embedded/{dataset}.parquet",
    log:
        "results/logs/grade/embedded/{dataset}.log",
    benchmark:
        "results/benchmarks/grade/embedded/{dataset}.tsv"
    conda:
        "../../environment.yml"
    params:
        model_dir=lambda wildcards, input: Path(input.model).parent,
    shell:
        "harmtrace grade --grader embedded {wildcards.dataset} --records {input.records} "
        "--model-dir {params.model_dir} --out {output} > {log} 2>&1"


rule validate_relevance:
    """Agreement of the relevance/refusal method with the AIR-Bench judge's refusal scores."""
    input:
        records="results/records/air-bench-2024.parquet",
        judgments="results/judgments/embedded/air-bench-2024.parquet",
    output:
        numbers="results/numbers/relevance.json",
        table="results/tables/relevance--validation.tex",
    log:
        "results/logs/grade/validate_relevance.log",
    conda:
        "../../environment.yml"
    shell:
        "harmtrace validate-relevance --records {input.records} "
        "--judgments {input.judgments} --numbers {output.numbers} --table {output.table} "
        "> {log} 2>&1"


rule flag_rates:
    """Prompt flag rates per dataset: how much known harm the thresholds still catch."""
    input:
        expand("results/judgments/embedded/{dataset}.parquet", dataset=DATASETS),
    output:
        "results/numbers/flags.json",
    log:
        "results/logs/grade/flag_rates.log",
    conda:
        "../../environment.yml"
    shell:
        "harmtrace flag-rates --out {output} {input} > {log} 2>&1"
