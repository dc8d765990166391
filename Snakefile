from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")

DATASETS = config["data"]["datasets"]
RAW = config["data"]["raw_dir"]


wildcard_constraints:
    dataset="|".join(DATASETS),


include: "workflow/rules/data.smk"
include: "workflow/rules/grade.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/paper.smk"


rule all:
    default_target: True
    input:
        rules.records.input,
        expand("results/judgments/embedded/{dataset}.parquet", dataset=DATASETS),
        rules.paper.output,
