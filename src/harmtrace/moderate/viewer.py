"""A static, offline website for reading moderation traces (Jinja2).

``build_viewer`` writes, for the traces of one policy (any number of datasets):

* ``index.html``: counts of actions, a before x after transition table, and one row per
  trace that can be searched and filtered by dataset, flagged category, intervention and
  transition (``assets/viewer.js``; filters can be preset from the address, e.g.
  ``index.html?action=block``); without JavaScript every row is shown;
* ``requests/<request_id>.html``: the four stages of one trace, flagged sentences
  highlighted and labelled (not by colour alone), and the unified diff;
* ``assets/viewer.css`` and ``assets/viewer.js``, copied from the package.

Nothing is fetched from the network. Every value from a trace goes through Jinja2's
autoescaping (no ``|safe`` filter anywhere), and a Content-Security-Policy allows only
the viewer's own script and style files, so a response containing HTML or a script tag
is shown as text and never runs.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

import harmtrace
from harmtrace.errors import HarmtraceError
from harmtrace.moderate.policies import ACTIONS
from harmtrace.moderate.trace import iter_traces
from harmtrace.taxonomy import CATEGORIES, SEVERITY_NAMES, TRANSITIONS

EXCERPT_CHARS = 120
NO_TRANSITION = "n/a"


@dataclass(frozen=True)
class ViewerSite:
    index: Path
    pages: int


def _env() -> Environment:
    return Environment(
        loader=PackageLoader("harmtrace.moderate", "templates"),
        autoescape=True,  # every template, whatever its file name
        undefined=StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
    )


def transition_label(trace: dict[str, Any]) -> str:
    """``before → after`` of the overall transition (``n/a`` when unknown)."""
    t = trace["transition"]
    return f"{t['before'] or NO_TRANSITION} → {t['after'] or NO_TRANSITION}"


def diff_lines(diff: str) -> list[dict[str, str]]:
    """The unified diff as lines tagged ``head``, ``hunk``, ``add``, ``del`` or ``ctx``."""
    out = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            kind = "head"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        out.append({"kind": kind, "text": line})
    return out


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1] + "…"


def load_traces(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Traces of one policy from several files, validated, in file order."""
    traces: list[dict[str, Any]] = []
    for path in paths:
        traces.extend(iter_traces(Path(path)))
    versions = sorted({t["policy"]["policy_version"] for t in traces})
    if len(versions) > 1:
        raise HarmtraceError(f"trace files mix policies {versions}; build one viewer per policy")
    seen: set[str] = set()
    for t in traces:
        if t["request_id"] in seen:
            raise HarmtraceError(f"request id {t['request_id']} occurs twice in the trace files")
        seen.add(t["request_id"])
    return traces


def build_viewer(traces: Sequence[dict[str, Any]], out_dir: Path) -> ViewerSite:
    """Write the index, one page per trace and the assets into ``out_dir``."""
    if not traces:
        raise HarmtraceError("no traces to show; check the --traces files")
    out_dir = Path(out_dir)
    pages_dir = out_dir / "requests"
    if pages_dir.exists():
        shutil.rmtree(pages_dir)  # stale pages of an earlier run must not linger
    pages_dir.mkdir(parents=True)
    assets = out_dir / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    static = resources.files("harmtrace.moderate").joinpath("static")
    for name in ("viewer.css", "viewer.js"):
        (assets / name).write_bytes(static.joinpath(name).read_bytes())

    env = _env()
    policy = traces[0]["policy"]
    common = {
        "policy": policy,
        "harmtrace_version": harmtrace.__version__,
        "severity_names": SEVERITY_NAMES,
    }
    page = env.get_template("trace.html.j2")
    ids = [t["request_id"] for t in traces]
    for i, t in enumerate(traces):
        sentence_flags: dict[int, list[dict[str, Any]]] = {}
        for f in t["stages"]["analysis"]["flags"]:
            if f["scope"] == "sentence":
                sentence_flags.setdefault(f["sentence"], []).append(f)
        html = page.render(
            **common,
            root="../",
            t=t,
            sentence_flags=sentence_flags,
            diff_lines=diff_lines(t["stages"]["intervention"]["diff"]),
            prev=ids[i - 1] if i > 0 else None,
            next=ids[i + 1] if i + 1 < len(ids) else None,
        )
        (pages_dir / f"{t['request_id']}.html").write_text(html, encoding="utf-8")

    rows = [
        {
            "request_id": t["request_id"],
            "dataset": t["dataset"],
            "item_id": t["item_id"],
            "categories": t["categories"],
            "action": t["stages"]["intervention"]["action"],
            "transition": transition_label(t),
            "summary": t["stages"]["final"]["summary"],
            "excerpt": _excerpt(t["stages"]["raw"]["response"]),
        }
        for t in traces
    ]
    actions = Counter(r["action"] for r in rows)
    labels = [*TRANSITIONS, NO_TRANSITION]
    crosstab = {b: dict.fromkeys(labels, 0) for b in labels}
    for t in traces:
        b = t["transition"]["before"] or NO_TRANSITION
        a = t["transition"]["after"] or NO_TRANSITION
        crosstab[b][a] += 1
    used = [x for x in labels if any(crosstab[x].values()) or any(r[x] for r in crosstab.values())]
    pairs = sorted({r["transition"] for r in rows}, key=lambda s: _pair_order(s, labels))
    index = env.get_template("index.html.j2").render(
        **common,
        root="",
        traces=rows,
        datasets=list(dict.fromkeys(r["dataset"] for r in rows)),
        graders=sorted({t["grader"]["version"] for t in traces}),
        categories=list(CATEGORIES),
        action_counts=[(a, actions[a]) for a in ACTIONS if actions[a]],
        transitions=used,
        crosstab=crosstab,
        transition_pairs=pairs,
    )
    path = out_dir / "index.html"
    path.write_text(index, encoding="utf-8")
    return ViewerSite(index=path, pages=len(traces))


def _pair_order(label: str, labels: Sequence[str]) -> tuple[int, int]:
    before, after = label.split(" → ")
    return labels.index(before), labels.index(after)
