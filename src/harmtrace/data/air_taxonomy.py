"""The AIR 2024 risk taxonomy (Zeng et al. 2024), loaded from its two fetched files.

The taxonomy is registered like every dataset (``air-2024-taxonomy``, ``kind: taxonomy``
in ``registry.yaml``) so it is fetched, pinned and verified the same way, but it holds
no records: ``normalize`` skips it and this module reads it instead.

Two upstream files describe the same hierarchy and disagree in a few places:

* ``risk_mapping.json``: 16 level-2 categories -> level-3 groups -> level-4 risks, with
  clean names, but 312 level-4 items (radiological weapons missing; "Military" and
  "Warfare" merged into one item ``3.12.22``);
* ``judge_prompts.arrow`` (an Arrow IPC *stream*): one AIR-Bench judge prompt per
  level-4 risk, 314 rows, with ids that the AIR-Bench records use, but a few truncated
  names ("drugs", "services/exploitation", "Schemes").

The loaded taxonomy has one row per judge prompt (314, the count the AIR paper gives
and the ids the records carry), named from ``risk_mapping.json`` wherever the id is
there and from the judge prompt otherwise. Every disagreement is kept visible in
:attr:`AirTaxonomy.quirks`, not silently fixed. Each risk's description is the judge
prompt's task sentence ("evaluate whether the model response ..."), which says in one
line what the risk is; zero-shot matching uses it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd
import pyarrow.ipc as ipc

from harmtrace.errors import HarmtraceError

DATASET = "air-2024-taxonomy"
MAPPING_FILE = "risk_mapping.json"
JUDGE_FILE = "judge_prompts.arrow"
_TASK = re.compile(r"Your task is to (?:evaluate|determine|assess) (?:whether|if) (.*?)\s*\n", re.S)


class TaxonomyError(HarmtraceError):
    """The taxonomy files are missing or do not have the expected structure."""


@dataclass(frozen=True)
class AirTaxonomy:
    """The AIR 2024 hierarchy as a tidy frame plus lookups by name.

    ``risks`` has one row per level-4 risk: ``idx`` (e.g. ``"1.1.3"``), ``l2_idx``
    (``"1"``..``"16"``), ``l3_idx`` (``"1.1"``), ``l2``, ``l3``, ``l4`` names,
    ``description`` (from the judge prompt) and ``source`` (``both``, ``judge_only``).
    """

    risks: pd.DataFrame
    quirks: tuple[str, ...] = ()
    sha256: str = ""

    @cached_property
    def level2(self) -> tuple[str, ...]:
        """Level-2 names in taxonomy order (by numeric id)."""
        order = self.risks.drop_duplicates("l2_idx").sort_values(
            "l2_idx", key=lambda s: s.astype(int)
        )
        return tuple(order["l2"])

    @cached_property
    def level3(self) -> pd.DataFrame:
        """One row per level-3 group: ``l3_idx``, ``l2``, ``l3``, ``n_risks``."""
        g = self.risks.groupby(["l3_idx", "l2", "l3"], sort=False).size()
        return g.rename("n_risks").reset_index()

    @cached_property
    def names(self) -> dict[str, dict[str, dict[str, str]]]:
        """``{l2: {l3: {l4: idx}}}`` in taxonomy order: plain dicts for fast lookups."""
        out: dict[str, dict[str, dict[str, str]]] = {l2: {} for l2 in self.level2}
        for r in self.risks.itertuples(index=False):
            out[r.l2].setdefault(r.l3, {})[r.l4] = r.idx
        return out

    def l3_names(self, l2: str) -> tuple[str, ...]:
        """Level-3 names under one level-2 category."""
        return tuple(self.names.get(l2, {}))

    def find(self, l2: str, l3: str | None = None, l4: str | None = None) -> pd.DataFrame:
        """Risks matching the given names exactly (case-insensitive); empty if none."""
        mask = self.risks["l2"].str.casefold() == l2.casefold()
        if l3 is not None:
            mask &= self.risks["l3"].str.casefold() == l3.casefold()
        if l4 is not None:
            mask &= self.risks["l4"].str.casefold() == l4.casefold()
        return self.risks[mask]


def _description(prompt: str) -> str:
    m = _TASK.search(prompt)
    if not m:
        return ""
    return " ".join(m.group(1).split()).rstrip(".")


def read_risk_mapping(path: Path) -> pd.DataFrame:
    """``risk_mapping.json`` as rows ``idx, l2_idx, l3_idx, l2, l3, l4``."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        rows = []
        for l2_idx, l2 in raw.items():
            for l3_idx, l3 in l2["subcategories"].items():
                for item in l3["items"]:
                    rows.append((item["idx"], l2_idx, l3_idx, l2["name"], l3["name"], item["name"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TaxonomyError(
            f"{path}: not an AIR risk mapping (expected {{l2: {{name, subcategories: "
            f"{{l3: {{name, items: [{{idx, name}}]}}}}}}}}): {exc}"
        ) from exc
    return pd.DataFrame(rows, columns=["idx", "l2_idx", "l3_idx", "l2", "l3", "l4"])


def read_judge_prompts(path: Path) -> pd.DataFrame:
    """``judge_prompts.arrow`` (Arrow IPC stream) as ``idx, l2, l3, l4, judge_prompt``."""
    try:
        with path.open("rb") as fh:
            table = ipc.open_stream(fh).read_all()
    except (OSError, ValueError) as exc:
        raise TaxonomyError(
            f"{path}: not an Arrow IPC stream ({exc}); it must be read with "
            "pyarrow.ipc.open_stream, as HELM caches it"
        ) from exc
    need = ["cate-idx", "l2-name", "l3-name", "l4-name", "judge_prompt"]
    missing = [c for c in need if c not in table.column_names]
    if missing:
        raise TaxonomyError(f"{path}: missing column(s) {missing}; has {table.column_names}")
    df = table.select(need).to_pandas()
    df.columns = ["idx", "l2", "l3", "l4", "judge_prompt"]
    return df.astype(str)


def build_taxonomy(mapping: pd.DataFrame, judge: pd.DataFrame, sha256: str = "") -> AirTaxonomy:
    """Merge the two upstream files into one table (see the module docstring)."""
    quirks: list[str] = []
    if judge["idx"].duplicated().any():
        dup = judge.loc[judge["idx"].duplicated(), "idx"].tolist()
        raise TaxonomyError(f"{JUDGE_FILE}: duplicate risk ids {dup}")
    merged = judge.merge(mapping, on="idx", how="left", suffixes=("_judge", ""))
    in_both = merged["l2"].notna()
    merged["source"] = in_both.map({True: "both", False: "judge_only"})
    for col in ("l2", "l3", "l4"):
        differs = in_both & (merged[col] != merged[f"{col}_judge"])
        for row in merged[differs].itertuples():
            quirks.append(
                f"{row.idx}: {col} is {getattr(row, col)!r} in {MAPPING_FILE} and "
                f"{getattr(row, col + '_judge')!r} in {JUDGE_FILE}; using the former"
            )
        merged[col] = merged[col].where(in_both, merged[f"{col}_judge"])
    for row in merged[~in_both].itertuples():
        quirks.append(f"{row.idx} ({row.l4!r}) is only in {JUDGE_FILE}")
    parts = merged["idx"].str.split(".")
    merged["l2_idx"] = parts.str[0]
    merged["l3_idx"] = merged["l3_idx"].where(in_both, parts.str[0] + "." + parts.str[1])
    # level-3 ids of judge-only risks must name a level-3 group the mapping has
    known_l3 = dict(zip(mapping["l3_idx"], mapping["l3"], strict=False))
    for row in merged[~in_both].itertuples():
        if row.l3_idx in known_l3 and known_l3[row.l3_idx] != row.l3:
            merged.loc[row.Index, "l3"] = known_l3[row.l3_idx]
    for row in mapping[~mapping["idx"].isin(judge["idx"])].itertuples():
        quirks.append(f"{row.idx} ({row.l4!r}) is only in {MAPPING_FILE}; left out")
    merged["description"] = merged["judge_prompt"].map(_description)
    empty = merged["description"] == ""
    if empty.any():
        raise TaxonomyError(
            f"{JUDGE_FILE}: no task sentence in the judge prompt of {merged.loc[empty, 'idx']}"
        )
    key = merged["idx"].str.split(".").map(lambda p: tuple(int(x) for x in p))
    merged = merged.assign(_key=key).sort_values("_key").drop(columns="_key")
    cols = ["idx", "l2_idx", "l3_idx", "l2", "l3", "l4", "description", "source"]
    risks = merged[cols].reset_index(drop=True).astype("string")
    return AirTaxonomy(risks=risks, quirks=tuple(quirks), sha256=sha256)


def load_air_taxonomy(raw_dir: str | Path) -> AirTaxonomy:
    """The taxonomy from ``raw_dir/air-2024-taxonomy/`` (run ``harmtrace fetch`` first)."""
    folder = Path(raw_dir) / DATASET
    paths = {name: folder / name for name in (MAPPING_FILE, JUDGE_FILE)}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise TaxonomyError(
            f"AIR taxonomy files not found: {missing}; run `harmtrace fetch {DATASET} "
            f"--raw-dir {raw_dir}` first"
        )
    digest = hashlib.sha256()
    for p in paths.values():
        digest.update(p.read_bytes())
    return build_taxonomy(
        read_risk_mapping(paths[MAPPING_FILE]),
        read_judge_prompts(paths[JUDGE_FILE]),
        sha256=digest.hexdigest(),
    )


LOADERS: dict[str, Callable[[Path], AirTaxonomy]] = {"air_taxonomy": load_air_taxonomy}
"""Loaders of non-record datasets, by the registry's ``adapter`` name."""
