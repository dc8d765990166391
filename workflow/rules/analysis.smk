for producer, spec in ANALYSES.items():

    rule:
        name:
            f"notebook_{producer}"
        input:
            **notebook_inputs(spec),
            notebook=f"notebooks/{spec['notebook']}.ipynb",
        output:
            notebook=f"results/notebooks/{spec['notebook']}.ipynb",
            numbers=numbers(spec["notebook"]),
            tables=directory(f"results/tables/{spec['notebook']}"),
            figures=report(
                directory(f"results/figures/{spec['notebook']}"),
                patterns=["{name}.png"],
                caption="../report/notebook.rst",
                category="Analysis",
                subcategory=spec["notebook"],
            ),
        log:
            logfile("notebooks", spec["notebook"]),
        benchmark:
            bench("notebooks", spec["notebook"])
        conda:
            ENV
        params:
            # one JSON (valid YAML) mapping of every notebook parameter; a plain value, so
            # that a change re-runs this notebook, the numbers and the paper only
            parameters=json.dumps(notebook_parameters(producer, spec), sort_keys=True),
            # plus the backend modules a notebook reaches through the registry
            code=code_hash(
                notebooks=[f"notebooks/{spec['notebook']}.ipynb"],
                modules=spec.get("backend_modules", []),
            ),
        shell:
            "papermill {input.notebook:q} {output.notebook:q} --cwd . --kernel python3 "
            "--no-progress-bar -y {params.parameters:q} > {log:q} 2>&1"

    PAPER_NUMBERS.append(numbers(spec["notebook"]))
    PAPER_ASSETS.extend(
        [
            f"results/tables/{spec['notebook']}",
            f"results/figures/{spec['notebook']}",
        ]
    )
    FINAL.append(f"results/notebooks/{spec['notebook']}.ipynb")
