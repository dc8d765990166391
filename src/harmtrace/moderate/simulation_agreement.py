"""The written traces must say what the simulation computed.

The paper's numbers come from the simulation and the audit trail from ``harmtrace
moderate``; both apply a policy with the same code, and this check makes a drift between
them (an old trace file, another policy version) an error instead of a silent mismatch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from harmtrace.errors import HarmtraceError
from harmtrace.moderate.policies import PolicySpec
from harmtrace.moderate.trace import iter_traces
from harmtrace.taxonomy import CATEGORIES


def check_traces_agree(
    outcomes: pd.DataFrame, policies: Sequence[PolicySpec], trace_paths: Sequence[str]
) -> pd.DataFrame:
    """Check that the written traces say what the simulation computed.

    For every trace file of a simulated policy: same policy version, and for every
    response the same action and the same final severity per category. Returns one row
    per file (``policy, dataset, traces, compared, agree``) and raises
    :class:`~harmtrace.errors.HarmtraceError` on any disagreement, so the paper's numbers
    and the audit trail cannot drift apart.
    """
    by_name = {p.name: p for p in policies}
    index = outcomes.assign(policy=outcomes["policy"].astype(str)).set_index(
        ["policy", "record_id"]
    )
    rows = []
    for path in trace_paths:
        traces = list(iter_traces(Path(path)))
        if not traces:
            continue
        name = traces[0]["policy"]["name"]
        if name not in by_name:
            raise HarmtraceError(
                f"{path}: traces of policy {name!r}, which the simulation did not run; "
                "add it to the simulated policies or drop the file"
            )
        want = by_name[name].policy_version
        got = traces[0]["policy"]["policy_version"]
        if got != want:
            raise HarmtraceError(
                f"{path}: traces of {got}, but the simulation ran {want}; rerun moderate"
            )
        compared = agree = 0
        for t in traces:
            key = (name, t["record_id"])
            if key not in index.index:
                continue
            row = index.loc[key]
            compared += 1
            same_action = row["action"] == t["stages"]["intervention"]["action"]
            sev = t["stages"]["final"]["severity"]
            same_sev = all(int(row[f"after_sev_{c}"]) == sev[c] for c in CATEGORIES)
            agree += int(same_action and same_sev)
        rows.append(
            {
                "policy": name,
                "dataset": traces[0]["dataset"],
                "traces": len(traces),
                "compared": compared,
                "agree": agree,
            }
        )
        if agree != compared:
            raise HarmtraceError(
                f"{path}: {compared - agree} of {compared} traces disagree with the simulation "
                "of the same policy; rerun moderate and the notebook"
            )
    return pd.DataFrame(rows, columns=["policy", "dataset", "traces", "compared", "agree"])
