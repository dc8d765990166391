rule data_numbers:
    """Record counts per dataset, for the paper's data section."""
    input:
        expand(records("{dataset}"), dataset=DATASETS),
    output:
        numbers("data"),
    log:
        logfile("numbers", "data"),
    benchmark:
        bench("numbers", "data")
    conda:
        ENV
    params:
        code=code_hash(verbs=["data-numbers"]),
    shell:
        "harmtrace data-numbers --out {output:q} {input:q} > {log:q} 2>&1"


rule cited_numbers:
    """Figures quoted from the seed study (src/harmtrace/report/cited.yaml)."""
    output:
        numbers("cited"),
    log:
        logfile("numbers", "cited"),
    benchmark:
        bench("numbers", "cited")
    conda:
        ENV
    params:
        code=code_hash(verbs=["cited-numbers"]),
    shell:
        "harmtrace cited-numbers --out {output:q} > {log:q} 2>&1"


PAPER_NUMBERS.extend([rules.data_numbers.output[0], rules.cited_numbers.output[0]])


rule study_manifest:
    """Which datasets, targets, graders and analyses the paper's sections are rendered for."""
    output:
        "results/paper/study.json",
    log:
        logfile("paper", "study_manifest"),
    benchmark:
        bench("paper", "study_manifest")
    conda:
        ENV
    params:
        config=lambda wildcards: json.dumps(config, sort_keys=True),
        numbers=registered(PAPER_NUMBERS),
        code=code_hash(verbs=["study-manifest"]),
    shell:
        "harmtrace study-manifest --config-json {params.config:q} --out {output:q} "
        "{params.numbers:q} > {log:q} 2>&1"


rule numbers:
    """Every producer's numbers as LaTeX macros: the only source of numbers in the paper."""
    input:
        registered(PAPER_NUMBERS),
    output:
        "results/paper/numbers.tex",
    log:
        logfile("paper", "numbers"),
    benchmark:
        bench("paper", "numbers")
    conda:
        ENV
    params:
        code=code_hash(verbs=["numbers"]),
    shell:
        "harmtrace numbers {output:q} {input:q} > {log:q} 2>&1"


PAPER_TARGET = rules.numbers.output
"""What `rule all` asks of the paper stage: the PDF, or only the macros (paper.build)."""


rule paper:
    """The paper draft: LaTeX sources, every number a macro, tables and figures from results/."""
    input:
        # every template file, so that editing one (not only adding one) rebuilds the paper
        templates=paper_sources("paper"),
        study="results/paper/study.json",
        numbers=rules.numbers.output,
        # the producers' raw numbers, from which the templates choose their wording
        numbers_json=registered(PAPER_NUMBERS),
        assets=registered(PAPER_ASSETS),
    output:
        pdf=report(
            "results/paper/paper.pdf", caption="../report/paper.rst", category="Paper"
        ),
    log:
        logfile("paper", "paper"),
    benchmark:
        bench("paper", "paper")
    conda:
        ENV
    params:
        code=code_hash(verbs=["paper"]),
        sources=lambda wildcards, input: os.path.commonpath(input.templates),
    shell:
        "harmtrace paper --out {output.pdf:q} --numbers {input.numbers:q} "
        "--study {input.study:q} --numbers-dir results/numbers "
        "--sources {params.sources:q} --build-dir results/paper/build {input.assets:q} "
        "> {log:q} 2>&1"


if paper_enabled(config):
    PAPER_TARGET = rules.paper.output
