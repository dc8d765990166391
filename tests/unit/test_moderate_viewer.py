"""The static trace viewer: pages, escaping, offline assets, labels (no browser needed)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from harmtrace.errors import HarmtraceError
from harmtrace.moderate.clock import fixed_clock
from harmtrace.moderate.flow import moderate_records
from harmtrace.moderate.policies import get_policy
from harmtrace.moderate.trace import write_traces
from harmtrace.moderate.viewer import build_viewer, diff_lines, load_traces, transition_label
from tests.moderation_fakes import KeywordScorer, make_judgments, make_records

HOSTILE = '<script>document.title="pwned";window.__pwned=1</script><img src=x onerror="alert(1)">'


def write(tmp_path: Path, policy: str, rows, dataset: str = "toy") -> Path:
    scorer = KeywordScorer()
    records = make_records(rows, dataset=dataset)
    traces = moderate_records(
        records, make_judgments(records, scorer), scorer, get_policy(policy), clock=fixed_clock(0)
    )
    path = tmp_path / policy / f"{dataset}.jsonl"
    write_traces(traces, path)
    return path


@pytest.fixture
def site(tmp_path):
    rows = [
        ("Hi", "The weather was fine."),
        ("War?", "Then came the massacre. It ended."),
        ("Story", "He would stab the dragon. Then he went home."),
        ("Inject", f"Here it is. {HOSTILE} Done."),
    ]
    a = write(tmp_path, "redact_medium_block_high", rows, "toy")
    b = write(tmp_path, "redact_medium_block_high", rows[:2], "other")
    out = tmp_path / "site"
    build_viewer(load_traces([a, b]), out)
    return out


def test_index_and_one_page_per_trace(site):
    pages = sorted((site / "requests").glob("req-*.html"))
    assert len(pages) == 6
    index = (site / "index.html").read_text()
    for page in pages:
        assert f'href="requests/{page.name}"' in index
    assert (site / "assets" / "viewer.css").is_file() and (site / "assets" / "viewer.js").is_file()


def test_dataset_text_is_escaped_everywhere(site):
    for path in [site / "index.html", *(site / "requests").glob("*.html")]:
        html = path.read_text()
        assert "<script>document" not in html
        assert "<img src=x" not in html
    page = next(p for p in (site / "requests").glob("*.html") if "pwned" in p.read_text())
    assert "&lt;script&gt;document.title=&#34;pwned&#34;" in page.read_text()


def test_no_network_resources_and_no_unescaped_output():
    pkg = resources.files("harmtrace.moderate")
    for folder in ("templates", "static"):
        for entry in pkg.joinpath(folder).iterdir():
            text = entry.read_text("utf-8")
            assert not re.search(r"(src|href)=\"(https?:)?//", text), entry.name
            assert "@import" not in text and "url(" not in text, entry.name
            assert "|safe" not in text.replace(" ", "") and "Markup" not in text, entry.name
            assert "innerHTML" not in text and "eval(" not in text, entry.name


def test_every_control_has_a_label(site):
    index = (site / "index.html").read_text()
    ids = re.findall(r"<(?:input|select)[^>]*\bid=\"([^\"]+)\"", index)
    assert len(ids) == 5
    for control in ids:
        assert f'<label for="{control}">' in index


def test_trace_page_has_the_four_stages_and_marks(site):
    page = next(p for p in (site / "requests").glob("*.html") if "stab the dragon" in p.read_text())
    html = page.read_text()
    for stage in ("stage-raw", "stage-analysis", "stage-intervention", "stage-final"):
        assert f'id="{stage}"' in html
    assert '<mark class="flag level-medium" id="s1">He would stab the dragon.</mark>' in html
    assert '<span class="add">+[sentence removed]</span>' in html


def test_stale_pages_are_removed(tmp_path, site):
    (site / "requests" / "req-0000000000000000.html").write_text("old")
    path = write(tmp_path, "observe", [("Hi", "Fine.")])
    build_viewer(load_traces([path]), site)
    assert [p.name for p in (site / "requests").iterdir()] != []
    assert not (site / "requests" / "req-0000000000000000.html").exists()


def test_mixed_policies_are_refused(tmp_path):
    a = write(tmp_path, "observe", [("Hi", "Fine.")])
    b = write(tmp_path, "block_high", [("Hi", "Fine.")])
    with pytest.raises(HarmtraceError, match="mix policies"):
        load_traces([a, b])


def test_helpers():
    assert (
        transition_label({"transition": {"before": "escalate", "after": None}}) == "escalate → n/a"
    )
    kinds = [d["kind"] for d in diff_lines("--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n z")]
    assert kinds == ["head", "head", "hunk", "del", "add", "ctx"]
