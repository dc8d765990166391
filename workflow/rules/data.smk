rule fetch:
    output:
        manifest=f"{RAW}/{{dataset}}/MANIFEST.json",
    log:
        "results/logs/fetch/{dataset}.log",
    benchmark:
        "results/benchmarks/fetch/{dataset}.tsv"
    conda:
        "../../environment.yml"
    params:
        raw_dir=lambda wildcards, output: Path(output.manifest).parent.parent,
        # only when set, so that $HARMTRACE_DATA_MIRROR still applies otherwise
        mirror=lambda wildcards: (
            f"--mirror {config['data']['mirror']!r}"
            if config["data"]["mirror"]
            else ""
        ),
    shell:
        "harmtrace fetch {wildcards.dataset} --raw-dir {params.raw_dir} {params.mirror} "
        "> {log} 2>&1"


rule normalize:
    input:
        manifest=rules.fetch.output.manifest,
    output:
        records="results/records/{dataset}.parquet",
        quarantine="results/records/{dataset}.quarantine.jsonl",
    log:
        "results/logs/normalize/{dataset}.log",
    benchmark:
        "results/benchmarks/normalize/{dataset}.tsv"
    conda:
        "../../environment.yml"
    params:
        raw_dir=lambda wildcards, input: Path(input.manifest).parent.parent,
        bad_rows=config["data"]["bad_rows"],
        max_text_chars=config["data"]["max_text_chars"],
    shell:
        "harmtrace normalize {wildcards.dataset} --raw-dir {params.raw_dir} "
        "--out {output.records} --quarantine {output.quarantine} "
        "--bad-rows {params.bad_rows} --max-text-chars {params.max_text_chars} "
        "> {log} 2>&1"


rule records:
    """Target: every configured dataset as validated records."""
    input:
        expand("results/records/{dataset}.parquet", dataset=DATASETS),
