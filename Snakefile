from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"


wildcard_constraints:
    dataset="|".join(DATASETS),
    grader="|".join(GRADERS),


include: "workflow/rules/data.smk"
include: "workflow/rules/respond.smk"
include: "workflow/rules/grade.smk"


# the trained grader's own rules (training, transfer checks), declared by its backend
for rules_file in BACKEND_RULES:

    include: rules_file


include: "workflow/rules/trees.smk"
include: "workflow/rules/moderate.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/paper.smk"


rule all:
    """Every final product: records, judgments, the grader and its checks, notebooks, the PDF
    (or, with paper.build false, its macros)."""
    default_target: True
    input:
        registered(FINAL),
        PAPER_TARGET,
