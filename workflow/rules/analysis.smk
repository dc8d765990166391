import json

TRANSITIONS_NUMBERS = "results/numbers/01_transitions.json"


rule notebook_transitions:
    """Transition shares, matrices, asymmetry tests: tables, figures and numbers."""
    input:
        notebook="notebooks/01_transitions.ipynb",
        records=expand(
            "results/records/{dataset}.parquet",
            dataset=config["analysis"]["transitions"]["datasets"],
        ),
        judgments=expand(
            "results/judgments/{grader}/{dataset}.parquet",
            grader=config["analysis"]["transitions"]["grader"],
            dataset=config["analysis"]["transitions"]["datasets"],
        ),
    output:
        notebook="results/notebooks/01_transitions.ipynb",
        numbers=TRANSITIONS_NUMBERS,
        shares="results/tables/01_transitions--shares.tex",
        shares_positive="results/tables/01_transitions--shares_prompt_positive.tex",
        paired="results/tables/01_transitions--paired_hh.tex",
        asymmetry=expand(
            "results/tables/01_transitions--asymmetry_{sample}.tex",
            sample=[
                "air-bench-2024",
                "hh-rlhf-harmless_chosen",
                "hh-rlhf-harmless_rejected",
            ],
        ),
        figures=multiext(
            "results/figures/01_transitions--",
            "shares.pdf",
            "severity_matrix.pdf",
            "severity_matrix_by_category.pdf",
            "persistence_drift.pdf",
        ),
    log:
        "results/logs/notebooks/01_transitions.log",
    benchmark:
        "results/benchmarks/notebooks/01_transitions.tsv"
    conda:
        "../../environment.yml"
    params:
        # every notebook parameter as one JSON (valid YAML) mapping; a plain value, not a
        # function, so that snakemake records it and re-runs the notebook when it changes
        parameters=json.dumps(
            {**config["analysis"]["transitions"], "numbers_out": TRANSITIONS_NUMBERS}
        ),
    shell:
        "papermill {input.notebook} {output.notebook} --cwd . --kernel python3 "
        "--no-progress-bar -y {params.parameters:q} > {log} 2>&1"
