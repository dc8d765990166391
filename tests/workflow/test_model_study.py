"""A few lines of config study another prompt file and another local model folder, with no
code change: the respond stage follows the config (docs/study.md, README)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harmtrace.io import read_table
from tests.devdata import prepared_smollm2
from tests.workflow.helpers import planned_rules, snakemake

pytestmark = pytest.mark.workflow


def test_an_overlay_studies_a_user_prompt_file_with_a_local_model_folder(
    project: Path, mirror: Path
):
    folder = prepared_smollm2()
    (project / "data").mkdir(exist_ok=True)
    pd.DataFrame({"prompt": ["What is the capital of France?", "Name a colour.", "Hi"]}).to_csv(
        project / "data" / "myprompts.csv", index=False
    )
    overlay = {
        "data": {"user_datasets": {"myprompts": {"path": "data/myprompts.csv",
                                                 "prompt_column": "prompt"}}},
        "targets": {
            "mine-a": {"backend": "transformers", "model": str(folder),
                       "generation": {"max_tokens": 8}},
            "mine-b": {"backend": "transformers", "model": str(folder),
                       "system_prompt": "Refuse anything harmful.",
                       "generation": {"max_tokens": 8}},
        },
        "study": {"targets": ["mine-a", "mine-b"]},
        "respond": {"prompt_sets": {"myprompts": "harmful"}},
        "analysis": {"model_study": {"parameters": {"baseline": "mine-a", "treatment": "mine-b"}}},
    }  # fmt: skip
    (project / "mine.yaml").write_text(yaml.safe_dump(overlay))
    outputs = [f"results/records/myprompts--{t}.parquet" for t in ("mine-a", "mine-b")]
    args = ("--configfile", "mine.yaml")
    everything = planned_rules(project, mirror, *args)
    assert "notebook_model_study" in everything
    assert "prepare_model" not in everything  # a local folder needs no conversion
    # --configfile takes several files: the targets go before it
    snakemake(project, "--cores", "2", *outputs, *args, mirror=mirror)
    a, b = (read_table(project / out, "records") for out in outputs)
    assert len(a) == len(b) == 3
    assert a["gen_prompt_record_id"].tolist() == b["gen_prompt_record_id"].tolist()
    sa, sb = (json.loads(t["gen_settings"].iloc[0]) for t in (a, b))
    assert sa["model"] == sb["model"] == str(folder)
    assert sa["system_prompt"] is None and sb["system_prompt"] == "Refuse anything harmful."
    assert (
        sa["weights_sha256"] == json.loads((folder / "manifest.json").read_text())["weights_sha256"]
    )
    # a warm rerun has nothing to do
    assert planned_rules(project, mirror, *outputs, *args) == set()
