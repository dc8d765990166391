"""The package's shape, checked on every run: small modules, short functions, no import
cycle (function-level imports included, so none can be hidden), no backend named outside
its own module, and the formatting layer (``harmtrace.report``) below the analyses.

Run alone with ``pytest tests/unit/test_architecture.py``; a failure lists every offender.
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The longest known module a dotted name starts with (``a.b.func`` -> ``a.b``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """harmtrace modules one module imports, at any depth of its code."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(filter(None, (_resolve(a.name) for a in node.names)))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            for alias in node.names:
                found = _resolve(f"{origin}.{alias.name}") or _resolve(origin)
                if found:
                    out.add(found)
    out.discard(module)
    return out


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_no_module_is_longer_than_the_limit():
    long = {
        str(p.relative_to(ROOT)): n
        for p in MODULES.values()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_is_longer_than_the_limit():
    long = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n})")
    assert long == []


def test_no_import_cycle():
    graph = {m: imports_of(m) for m in MODULES}
    assert import_cycles(graph) == []


def test_the_cycle_check_finds_a_cycle_and_a_self_contained_graph_has_none():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_the_formatting_layer_imports_no_analysis():
    upper = ("harmtrace.analysis", "harmtrace.trees", "harmtrace.moderate", "harmtrace.graders")
    found = {
        m: sorted(i for i in imports_of(m) if i.startswith(upper))
        for m in MODULES
        if m.startswith("harmtrace.report")
    }
    assert {m: i for m, i in found.items() if i} == {}


SEAMS = ["workflow", "src/harmtrace/config.py", "src/harmtrace/cli", "src/harmtrace/moderate"]
"""Where the workflow meets backends; the config schema is the backends' own config."""


def _grep(word: str) -> list[str]:
    if not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout")
    out = subprocess.run(
        ["git", "grep", "-n", "-w", "-I", word, "--", *SEAMS,
         ":!workflow/schemas/config.schema.yaml"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    return out.splitlines()


def test_the_trained_grader_is_not_named_at_the_seams():
    """The seams ask the registry what a backend can do (trains in the workflow, scores
    sentences, reads record labels) instead of naming the one that does."""
    assert _grep("embedded") == []


@pytest.mark.parametrize("backend", ["openai", "human", "transformers"])
def test_no_other_backend_is_a_literal_at_the_seams(backend):
    """Those words are also library and prose names; a quoted literal is a backend test."""
    quoted = [line for line in _grep(backend) if f'"{backend}"' in line or f"'{backend}'" in line]
    assert quoted == []
