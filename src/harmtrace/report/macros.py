"""Numbers for the paper: each producer writes a JSON of named values, and one
step turns them all into LaTeX macros, so no number in the paper is typed by hand.

A value is stored with its display form already decided (percent, count,
p-value...), because formatting is part of what a number claims.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path

from harmtrace.errors import HarmtraceError

_DIGIT_WORDS = ["Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine"]


class MacroError(HarmtraceError):
    """A number cannot become a LaTeX macro (bad name, clash, non-finite value)."""


def macro_name(producer: str, key: str) -> str:
    """CamelCase, letters only: LaTeX macro names cannot hold digits or punctuation."""
    words = re.split(r"[^0-9A-Za-z]+", f"ht {producer} {key}")
    out = []
    for word in words:
        if not word:
            continue
        word = re.sub(r"\d", lambda m: _DIGIT_WORDS[int(m.group())], word)
        out.append(word[0].upper() + word[1:])
    return "".join(out)


def fmt_int(n: int) -> str:
    """Thousands separated with a LaTeX-safe comma: 4624 -> 4{,}624."""
    return f"{int(n):,}".replace(",", "{,}")


def fmt_pct(x: float, digits: int = 1) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{100 * x:.{digits}f}\\%"


def fmt_num(x: float, digits: int = 2) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{x:.{digits}f}"


def fmt_p(p: float) -> str:
    """APA-style p-value: exact to three decimals, or an upper bound below .001."""
    if not math.isfinite(p):
        return "n/a"
    if p < 0.001:
        return "$<$0.001"
    return f"{p:.3f}"


def fmt_ci(lo: float, hi: float, pct: bool = True, digits: int = 1) -> str:
    f = (lambda v: fmt_pct(v, digits)) if pct else (lambda v: fmt_num(v, digits))
    return f"[{f(lo)}, {f(hi)}]"


def write_numbers(values: Mapping[str, str], path: Path, producer: str) -> None:
    """Write one producer's display-ready numbers as sorted JSON (stable bytes)."""
    bad = {k: v for k, v in values.items() if not isinstance(v, str)}
    if bad:
        raise MacroError(f"{producer}: numbers must be formatted strings, got {bad}")
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"producer": producer, "numbers": dict(sorted(values.items()))}
    path.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def collect_macros(paths: list[Path]) -> str:
    """All producers' numbers as one .tex file of \\newcommand lines, clashes refused."""
    seen: dict[str, str] = {}
    lines = ["% Written by `harmtrace report numbers`; do not edit.", ""]
    for path in sorted(paths, key=lambda p: p.name):
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        producer = payload["producer"]
        lines.append(f"% from {producer} ({Path(path).name})")
        for key, value in payload["numbers"].items():
            name = macro_name(producer, key)
            if name in seen:
                raise MacroError(f"macro \\{name} from {path} clashes with {seen[name]}")
            seen[name] = str(path)
            lines.append(f"\\newcommand{{\\{name}}}{{{value}}}")
        lines.append("")
    return "\n".join(lines)


def cited_numbers() -> dict[str, str]:
    """Figures quoted from the literature (``cited.yaml``), for the paper's comparisons."""
    from importlib import resources

    import yaml

    raw = yaml.safe_load(resources.files("harmtrace.report").joinpath("cited.yaml").read_text())
    return {str(k): str(v) for k, v in raw["numbers"].items()}
