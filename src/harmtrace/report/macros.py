"""Numbers for the paper: each producer writes a JSON of named raw values, and one
step turns them all into LaTeX macros, so no number in the paper is typed by hand.

A producer stores the value itself (a count, a share, a p-value, an interval) with a
format spec (:class:`Number`): how a number is shown is part of what it claims, but
escaping belongs to the target. LaTeX escaping happens only when ``numbers.tex`` is
written (:func:`collect_macros`); notebooks, the Snakemake report and HTML pages read
the same JSON (:func:`read_numbers`) and render it as plain text (:func:`render`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

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


Kind = Literal["count", "pct", "pp", "real", "p", "ci_pct", "ci_pp", "ci_real", "text"]
KINDS: tuple[str, ...] = ("count", "pct", "pp", "real", "p", "ci_pct", "ci_pp", "ci_real", "text")


@dataclass(frozen=True)
class Number:
    """A raw value and how to show it: ``kind`` and ``digits`` after the decimal point."""

    value: Any
    kind: Kind
    digits: int = 1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise MacroError(f"unknown number kind {self.kind!r}; use one of {KINDS}")

    def to_json(self) -> dict[str, Any]:
        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            return v

        value = self.value
        if self.kind.startswith("ci_"):
            value = [clean(float(v)) for v in value]
        elif self.kind == "count":
            value = int(value)
        elif self.kind != "text":
            value = clean(float(value))
        return {"value": value, "kind": self.kind, "digits": self.digits}

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> Number:
        value = payload["value"]
        if value is None:
            value = math.nan
        elif isinstance(value, list):
            value = tuple(math.nan if v is None else v for v in value)
        return cls(value, payload["kind"], int(payload.get("digits", 1)))


def count(n: int) -> Number:
    return Number(int(n), "count", 0)


def pct(x: float, digits: int = 1) -> Number:
    """A share in [0, 1] shown as a percentage."""
    return Number(float(x), "pct", digits)


def pp(x: float, digits: int = 1) -> Number:
    """A difference of two shares, shown in percentage points (0.053 -> 5.3 pp)."""
    return Number(float(x), "pp", digits)


def real(x: float, digits: int = 2) -> Number:
    return Number(float(x), "real", digits)


def pvalue(p: float) -> Number:
    """Shown with its relation (``= 0.034`` or ``< 0.001``): write ``$p$~\\Macro``."""
    return Number(float(p), "p", 3)


def ci(lo: float, hi: float, pct: bool = True, digits: int = 1, points: bool = False) -> Number:
    """An interval of shares (``pct``), of share differences (``points``) or of reals."""
    kind = "ci_pp" if points else ("ci_pct" if pct else "ci_real")
    return Number((float(lo), float(hi)), kind, digits)


def text(s: str) -> Number:
    """Words (a dataset or extractor name); escaped for LaTeX when macros are written."""
    return Number(str(s), "text", 0)


def render(number: Number, target: Literal["latex", "plain"] = "latex") -> str:
    """The number as shown in the paper (``latex``) or in notebooks and HTML (``plain``)."""
    latex = target == "latex"
    v, d = number.value, number.digits
    if number.kind == "text":
        return escape_latex(v) if latex else v
    if number.kind == "count":
        return fmt_int(v) if latex else f"{int(v):,}"
    if number.kind == "ci_pct":
        return "[{}, {}]".format(*(render(Number(x, "pct", d), target) for x in v))
    if number.kind == "ci_real":
        return "[{}, {}]".format(*(render(Number(x, "real", d), target) for x in v))
    if number.kind == "ci_pp":
        lo, hi = (render(Number(x, "pp", d), target) for x in v)
        unit = "\\,pp" if latex else " pp"
        return f"[{lo.removesuffix(unit)}, {hi}]"
    if not math.isfinite(v):
        return "n/a"
    if number.kind == "pct":
        return f"{100 * v:.{d}f}" + ("\\%" if latex else "%")
    if number.kind == "pp":
        shown = f"{100 * v:.{d}f}"
        if latex:
            return ("$-$" + shown[1:] if shown.startswith("-") else shown) + "\\,pp"
        return f"{shown} pp"
    if number.kind == "real":
        return f"{v:.{d}f}"
    # p-value with its relation, APA style: exact to three decimals or a bound
    rel, shown = ("<", "0.001") if v < 0.001 else ("=", f"{v:.3f}")
    return f"${rel}$\\,{shown}" if latex else f"{rel} {shown}"


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def escape_latex(value: object) -> str:
    """Text that LaTeX prints as given: the ten special characters become commands."""
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in str(value))


def write_numbers(values: Mapping[str, Number], path: Path, producer: str) -> None:
    """Write one producer's raw numbers with their format specs as sorted JSON."""
    bad = {k: type(v).__name__ for k, v in values.items() if not isinstance(v, Number)}
    if bad:
        raise MacroError(
            f"{producer}: numbers must be harmtrace.report.macros.Number values "
            f"(count, pct, real, pvalue, ci, text), got {bad}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "producer": producer,
        "numbers": {k: values[k].to_json() for k in sorted(values)},
    }
    path.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def read_numbers(path: Path) -> tuple[str, dict[str, Number]]:
    """(producer, numbers) of a file written by :func:`write_numbers`."""
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        numbers = {k: Number.from_json(v) for k, v in payload["numbers"].items()}
        return payload["producer"], numbers
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MacroError(f"{path}: not a numbers file ({exc})") from exc


def collect_macros(paths: list[Path]) -> str:
    """All producers' numbers as one .tex file of \\newcommand lines, clashes refused."""
    seen: dict[str, str] = {}
    lines = ["% Written by `harmtrace numbers`; do not edit.", ""]
    for path in sorted(paths, key=lambda p: Path(p).name):
        producer, numbers = read_numbers(path)
        lines.append(f"% from {producer} ({Path(path).name})")
        for key, number in numbers.items():
            name = macro_name(producer, key)
            if name in seen:
                raise MacroError(f"macro \\{name} from {path} clashes with {seen[name]}")
            seen[name] = str(path)
            lines.append(f"\\newcommand{{\\{name}}}{{{render(number)}}}")
        lines.append("")
    return "\n".join(lines)


def cited_numbers() -> dict[str, Number]:
    """Figures quoted from the literature (``cited.yaml``), for the paper's comparisons."""
    from importlib import resources

    import yaml

    raw = yaml.safe_load(resources.files("harmtrace.report").joinpath("cited.yaml").read_text())
    out = {}
    for key, spec in raw["numbers"].items():
        out[str(key)] = Number(spec["value"], spec["kind"], int(spec.get("digits", 0)))
    return out
