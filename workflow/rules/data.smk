rule fetch:
    """Download a registered dataset (or copy it from the mirror) and verify its sha256."""
    output:
        manifest=f"{RAW}/{{dataset}}/MANIFEST.json",
    log:
        logfile("fetch", "{dataset}"),
    benchmark:
        bench("fetch", "{dataset}")
    wildcard_constraints:
        dataset=one_of(SOURCES),
    conda:
        ENV
    params:
        raw_dir=lambda wildcards, output: Path(output.manifest).parent.parent,
        # only when set, so that $HARMTRACE_DATA_MIRROR still applies otherwise
        mirror=(
            ["--mirror", config["data"]["mirror"]] if config["data"]["mirror"] else []
        ),
        allow_unpinned=ALLOW_UNPINNED,
        code=code_hash(verbs=["fetch"]),
    shell:
        "harmtrace fetch {wildcards.dataset:q} --raw-dir {params.raw_dir:q} {params.mirror:q} "
        "{params.allow_unpinned:q} > {log:q} 2>&1"


rule normalize:
    """Validated prompt-response records; bad rows stop the run or go to quarantine."""
    input:
        unpack(normalize_input),
    output:
        records="results/records/{dataset}.parquet",
        quarantine="results/records/{dataset}.quarantine.jsonl",
    log:
        logfile("normalize", "{dataset}"),
    benchmark:
        bench("normalize", "{dataset}")
    wildcard_constraints:
        dataset=one_of(SOURCES),
    conda:
        ENV
    params:
        source=normalize_source,
        bad_rows=config["data"]["bad_rows"],
        max_text_chars=config["data"]["max_text_chars"],
        sample=sample_args,
        code=code_hash(verbs=["normalize"]),
    shell:
        "harmtrace normalize {params.source:q} "
        "--out {output.records:q} --quarantine {output.quarantine:q} "
        "--bad-rows {params.bad_rows:q} --max-text-chars {params.max_text_chars} "
        "{params.sample:q} > {log:q} 2>&1"


rule records:
    """Target: every configured dataset as validated records."""
    input:
        expand(records("{dataset}"), dataset=DATASETS),


FINAL.extend(rules.records.input)
