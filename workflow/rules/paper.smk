NUMBERS = [
    "results/numbers/cited.json",
    "results/numbers/data.json",
    "results/numbers/flags.json",
    "results/numbers/grader.json",
    "results/numbers/extractors.json",
    "results/numbers/relevance.json",
    "results/numbers/01_transitions.json",
]


rule data_numbers:
    """Record counts per dataset, for the paper's data section."""
    input:
        expand("results/records/{dataset}.parquet", dataset=DATASETS),
    output:
        "results/numbers/data.json",
    log:
        "results/logs/numbers/data.log",
    conda:
        "../../environment.yml"
    shell:
        "harmtrace data-numbers --out {output} {input} > {log} 2>&1"


rule cited_numbers:
    """Figures quoted from the seed study (src/harmtrace/report/cited.yaml)."""
    output:
        "results/numbers/cited.json",
    log:
        "results/logs/numbers/cited.log",
    conda:
        "../../environment.yml"
    shell:
        "harmtrace cited-numbers --out {output} > {log} 2>&1"


rule numbers:
    """Every producer's numbers as LaTeX macros: the only source of numbers in the paper."""
    input:
        NUMBERS,
    output:
        "results/paper/numbers.tex",
    log:
        "results/logs/paper/numbers.log",
    conda:
        "../../environment.yml"
    shell:
        "harmtrace numbers {output} {input} > {log} 2>&1"


rule paper:
    input:
        tex="paper/main.tex",
        bib="paper/references.bib",
        numbers=rules.numbers.output,
        notebook_outputs=rules.notebook_transitions.output,
        grader_tables=[
            "results/tables/grader--oof_metrics.tex",
            "results/tables/extractors--comparison.tex",
            "results/tables/relevance--validation.tex",
        ],
    output:
        pdf="results/paper/paper.pdf",
    log:
        "results/logs/paper/paper.log",
    benchmark:
        "results/benchmarks/paper/paper.tsv"
    conda:
        "../../environment.yml"
    shell:
        "harmtrace paper --out {output.pdf} --numbers {input.numbers} --sources paper "
        "--figures results/figures --tables results/tables "
        "--build-dir results/paper/build > {log} 2>&1"
