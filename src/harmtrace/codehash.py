"""Which library code a workflow step runs, as one hash, so Snakemake reruns exactly the
jobs a code edit affects.

Snakemake sees a rule's inputs and params, not the Python it imports. Each rule therefore
carries a param ``code=code_hash(...)`` over the source of every harmtrace module the step
can execute. The module set is found statically (:mod:`ast`), never by importing:

* for a CLI verb: the source of the verb's function (and its module's private helpers),
  the imports at the top of its module and inside the function (verbs import lazily, so a
  module's other verbs neither count nor change the hash);
* for a notebook: the imports in its code cells;
* then, transitively, every harmtrace module those import, at module level or inside
  functions (library code may import lazily too).

Non-Python package data a module reads (schemas, registries, templates) belongs to the
package folder of that module and is hashed with it.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path

PACKAGE = "harmtrace"
ROOT = Path(__file__).resolve().parent
DATA_SUFFIXES = (".yaml", ".yml", ".json", ".j2", ".html", ".css", ".js", ".txt", ".csv")


def module_path(module: str) -> Path:
    rel = Path(*module.split(".")[1:])
    pkg = ROOT / rel / "__init__.py"
    return pkg if pkg.is_file() else ROOT / rel.with_suffix(".py")


def _resolve(node: ast.ImportFrom, current: str) -> str:
    if node.level == 0:
        return node.module or ""
    base = current.split(".")
    is_pkg = module_path(current).name == "__init__.py"
    base = base if is_pkg else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imports(nodes: Iterable[ast.AST], current: str) -> set[str]:
    found: set[str] = set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import):
                found |= {a.name for a in sub.names}
            elif isinstance(sub, ast.ImportFrom):
                mod = _resolve(sub, current)
                found.add(mod)
                found |= {f"{mod}.{a.name}" for a in sub.names}  # submodules imported by name
    return {m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")}


def _existing(modules: Iterable[str]) -> set[str]:
    return {m for m in modules if module_path(m).is_file()}


@cache
def _module_imports(module: str) -> frozenset[str]:
    tree = ast.parse(module_path(module).read_text(encoding="utf-8"))
    if module.startswith(f"{PACKAGE}.cli"):
        # verbs import lazily: a CLI module's other verbs are not run by this one
        found = _imports(
            [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)], module
        )
    else:
        found = _imports([tree], module)
    # importing a.b.c runs a/__init__ and a/b/__init__ too
    parents = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
    return frozenset(_existing(found | parents) - {module})


def closure(modules: Iterable[str]) -> list[str]:
    """Every harmtrace module reachable from ``modules`` by imports, sorted."""
    seen: set[str] = set()
    todo = list(_existing(modules))
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        todo.extend(_module_imports(mod) - seen)
    return sorted(seen)


@cache
def _verb(verb: str) -> tuple[str, str, frozenset[str]]:
    """(CLI module, source of the verb's function, modules the call imports)."""
    for path in sorted((ROOT / "cli").glob("*.py")):
        module = f"{PACKAGE}.cli.{path.stem}"
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and _verb_name(node) == verb:
                top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
                helpers = [  # module-level helpers the verb may call (private functions)
                    n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name[0] == "_"
                ]
                source = "\n".join(ast.get_source_segment(text, n) or "" for n in [node, *helpers])
                return module, source, frozenset(_imports([*top, node, *helpers], module))
    raise KeyError(f"no harmtrace verb {verb!r} in {ROOT / 'cli'}")


def verb_modules(verb: str) -> set[str]:
    """Modules a ``harmtrace VERB`` call imports: its CLI module's top level + the verb."""
    return set(_verb(verb)[2])


def _verb_name(fn: ast.FunctionDef) -> str | None:
    for dec in fn.decorator_list:
        if isinstance(dec, ast.Call) and getattr(dec.func, "attr", "") == "command":
            if dec.args and isinstance(dec.args[0], ast.Constant):
                return str(dec.args[0].value)
            return fn.name.replace("_", "-")
    return None


def notebook_modules(notebook: str | Path) -> set[str]:
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    code = "\n".join(
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in cells
        if c["cell_type"] == "code"
    )
    return _imports([ast.parse(code)], PACKAGE)


def _files(modules: Iterable[str]) -> list[Path]:
    """Source and data files of ``modules``; CLI verb modules are hashed verb by verb."""
    files = set()
    for mod in modules:
        path = module_path(mod)
        if path.parent == ROOT / "cli" and path.stem not in ("__init__", "_app"):
            continue
        files.add(path)
        files |= _data_files(path.parent)
    return sorted(files)


def _data_files(package: Path) -> set[Path]:
    """Data files of a package, including those in its plain data folders (folders that
    are not packages themselves, e.g. ``graders/prompts/`` with the prompt templates)."""
    found = set()
    for p in package.iterdir():
        if p.is_file() and p.suffix in DATA_SUFFIXES:
            found.add(p)
        elif p.is_dir() and p.name != "__pycache__" and not (p / "__init__.py").exists():
            found |= _data_files(p)
    return found


def _entry_modules(
    verbs: Iterable[str], notebooks: Iterable[str | Path], modules: Iterable[str]
) -> set[str]:
    found = set(modules)
    for verb in verbs:
        found |= verb_modules(verb)
    for nb in notebooks:
        found |= notebook_modules(nb)
    return found


def code_hash(
    *,
    verbs: Iterable[str] = (),
    notebooks: Iterable[str | Path] = (),
    modules: Iterable[str] = (),
) -> str:
    """sha256 (16 hex digits) over the source of everything the verbs/notebooks can run.

    ``modules`` adds what static analysis cannot see, such as a grader backend that the
    registry imports by name.
    """
    verbs = sorted(verbs)
    modules = _entry_modules(verbs, notebooks, modules)
    h = hashlib.sha256()
    for verb in verbs:
        h.update(f"verb {verb}\0{_verb(verb)[1]}\0".encode())
    for path in _files(closure(modules)):
        h.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def describe(
    *,
    verbs: Iterable[str] = (),
    notebooks: Iterable[str | Path] = (),
    modules: Iterable[str] = (),
) -> list[str]:
    """The files a :func:`code_hash` covers, for docs and debugging."""
    modules = _entry_modules(verbs, notebooks, modules)
    return [p.relative_to(ROOT).as_posix() for p in _files(closure(modules))]
