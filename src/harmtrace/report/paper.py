"""Build the paper PDF from paper/ templates and the workflow's numbers, tables, figures.

The templates are rendered for the run's study manifest first
(:mod:`harmtrace.report.paper_render`), and the rendered text is what is checked for
missing numbers and built. The build runs in a scratch folder under results/ so the
source tree stays clean, stamps the git commit into the PDF, and pins TeX's clock to the
commit time so the same commit and results give the same PDF.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from harmtrace.errors import HarmtraceError
from harmtrace.report.latex_log import check_layout


class PaperError(HarmtraceError):
    """LaTeX is missing or the build failed."""


def git_stamp(repo: Path) -> tuple[str, int]:
    """(commit id, "-dirty" appended if tracked files changed; commit time) or ("unknown", 0)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        when = int(git("log", "-1", "--format=%ct"))
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (subprocess.CalledProcessError, FileNotFoundError, ValueError):
        return "unknown", 0
    return commit + ("-dirty" if dirty else ""), when


ASSET_KINDS = ("tables", "figures")


def collect_assets(paths: list[Path]) -> dict[str, Path]:
    """``{"tables/<file>": path, "figures/<file>": path}`` from files and producer folders.

    The kind is the ``tables`` or ``figures`` folder a path lies under; producer folders are
    flattened, which is safe because every file name starts with its producer. Two files
    with one name are an error, never a silent overwrite.
    """
    found: dict[str, Path] = {}
    for path in paths:
        path = Path(path)
        kind = next((k for k in reversed(path.parts) if k in ASSET_KINDS), None)
        if kind is None:
            raise PaperError(f"{path}: an asset must lie under a tables/ or figures/ folder")
        # hidden files in a producer folder are bookkeeping (Snakemake's
        # .snakemake_timestamp in every directory output), not assets
        files = (
            sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            if path.is_dir()
            else [path]
        )
        if not path.exists():
            raise PaperError(f"{path}: no such table or figure")
        for file in files:
            key = f"{kind}/{file.name}"
            if key in found and found[key] != file:
                raise PaperError(f"{file} and {found[key]} would both be {key} in the paper")
            found[key] = file
    return found


_USED_MACRO = re.compile(r"\\(Ht[A-Za-z]+)")
_DEFINED_MACRO = re.compile(r"\\newcommand\{\\(Ht[A-Za-z]+)\}")
_USED_ASSET = re.compile(
    r"\\(?:input|includegraphics)(?:\[[^\]]*\])?\{((?:tables|figures)/[^}]+)\}"
)
_COMMENT = re.compile(r"(?<!\\)%.*")
# written by build_paper itself, not by a producer
_BUILD_MACROS = frozenset({"HtGitCommit"})


def missing_inputs(sources: Path, numbers: Path, assets: dict[str, Path]) -> list[str]:
    """Macros and tables/figures the paper's text uses that the workflow did not produce,
    as ``file:line: what`` lines (empty when the paper can be built).

    ``sources`` is the rendered text (see :func:`build_paper`), so a section the templates
    left out for this run needs no numbers. LaTeX would stop at the first one with
    "Undefined control sequence"; this lists them all, with where they are used, first.
    """
    defined = set(_DEFINED_MACRO.findall(numbers.read_text(encoding="utf-8"))) | _BUILD_MACROS
    problems = []
    for tex in sorted(sources.rglob("*.tex")):
        lines = tex.read_text(encoding="utf-8").splitlines()
        for lineno, line in enumerate(lines, start=1):
            code = _COMMENT.sub("", line)
            where = f"{tex}:{lineno}"
            for name in _USED_MACRO.findall(code):
                if name not in defined:
                    problems.append(f"{where}: \\{name} is not in {numbers}")
            for asset in _USED_ASSET.findall(code):
                if asset not in assets and f"{asset}.tex" not in assets:
                    problems.append(f"{where}: {asset} was not produced")
    return problems


def render_into(
    sources: Path,
    numbers: Path,
    build_dir: Path,
    study: Path | None = None,
    numbers_dir: Path | None = None,
) -> None:
    """Fill ``build_dir`` with the paper's text: the templates rendered for ``study``.

    Without a manifest the sources are copied as they are, which is only allowed when they
    hold no template syntax. ``numbers_dir`` holds the producers' JSON files that
    ``numbers`` was written from (default: ``results/numbers`` beside ``results/paper``).
    """
    from harmtrace.report import paper_render as pr

    try:
        if study is None:
            templates = pr.has_template_syntax(sources)
            if templates:
                raise PaperError(
                    f"{templates[0]} is a template: give the study manifest "
                    "(`harmtrace paper --study results/paper/study.json`)"
                )
            if build_dir.exists():
                shutil.rmtree(build_dir)
            shutil.copytree(sources, build_dir)
            return
        if numbers_dir is None:
            numbers_dir = numbers.resolve().parent.parent / "numbers"
        values = pr.Numbers(pr.numbers_files(numbers, numbers_dir))
        pr.render_sources(sources, build_dir, pr.load_manifest(study), values)
    except pr.RenderError as exc:
        raise PaperError(f"cannot render the paper templates: {exc}") from exc


def build_paper(
    sources: Path,
    numbers: Path,
    assets: dict[str, Path],
    out_pdf: Path,
    build_dir: Path,
    repo: Path = Path("."),
    study: Path | None = None,
    numbers_dir: Path | None = None,
) -> Path:
    """Render the sources into ``build_dir``, check that every macro and asset the rendered
    text uses exists, add assets and numbers, run latexmk, copy the PDF to ``out_pdf``.

    ``assets`` maps a path inside the build (``tables/x.tex``) to the file that fills it
    (see :func:`collect_assets`); ``study`` is the manifest the templates are rendered for
    (see :mod:`harmtrace.report.paper_render`).
    """
    render_into(sources, numbers, build_dir, study, numbers_dir)
    missing = missing_inputs(build_dir, numbers, assets)
    if missing:
        shown = missing[:40] + ([f"... and {len(missing) - 40} more"] if len(missing) > 40 else [])
        raise PaperError(
            f"the rendered paper uses {len(missing)} number(s) or asset(s) that this run did "
            "not produce. The templates render a section only for an analysis in the study "
            "manifest, so a missing number means a sentence asks for a result its analysis "
            "does not write for this config (config/config.yaml): guard that sentence in the "
            "template with has()/analysed(), or stop before the PDF "
            "(`snakemake results/paper/numbers.tex` builds everything else). "
            f"Rendered text: {build_dir}\n  " + "\n  ".join(shown)
        )
    if shutil.which("latexmk") is None:
        raise PaperError(
            "latexmk not found: install latexmk texlive-latex-recommended texlive-latex-extra "
            "texlive-fonts-recommended (see README, 'System packages for the paper')"
        )
    for name, file in sorted(assets.items()):
        (build_dir / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, build_dir / name)
    shutil.copyfile(numbers, build_dir / "numbers.tex")
    commit, when = git_stamp(repo)
    (build_dir / "buildinfo.tex").write_text(
        f"\\newcommand{{\\HtGitCommit}}{{{commit}}}\n", encoding="utf-8"
    )
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(when), FORCE_SOURCE_DATE="1")
    cmd = [
        "latexmk",
        "-pdf",
        "-interaction=nonstopmode",
        "-halt-on-error",
        "-file-line-error",
        "main.tex",
    ]
    res = subprocess.run(cmd, cwd=build_dir, env=env, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        log = build_dir / "main.log"
        errors = (
            [
                ln
                for ln in log.read_text(errors="replace").splitlines()
                if ":" in ln and (".tex:" in ln or ln.startswith("!"))
            ]
            if log.exists()
            else []
        )
        raise PaperError(
            "latexmk failed (full log: {}):\n{}".format(
                log, "\n".join(errors[-15:]) or res.stdout[-3000:]
            )
        )
    log_file = build_dir / "main.log"
    layout = check_layout(log_file.read_text(encoding="utf-8", errors="replace"))
    if layout:
        raise PaperError(
            f"the paper's layout fails the build's check (full log: {log_file}; the PDF is in "
            f"{build_dir}): an overfull box over 1pt or a table scaled below footnote "
            "size:\n  " + "\n  ".join(layout)
        )
    out_pdf.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(build_dir / "main.pdf", out_pdf)
    return out_pdf
