"""The scikit-learn convention for every model the package fits: ``__init__`` stores its
parameters as given and nothing else (no loading, no learned state), and whatever is
learned from data is an attribute with a trailing underscore (``coef_``, ``s_on_``).

Two checks: a static one over every class in ``src/harmtrace`` with a ``fit`` method (no
method assigns a public attribute without the underscore, except ``__init__``, which
assigns none with it), and a dynamic one that fits the main models on small data.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

from harmtrace.graders.calibration import CalibratedLinear
from harmtrace.graders.embedded import EmbeddedGrader
from harmtrace.graders.features import TfidfExtractor, WordLlamaExtractor, make_extractor
from harmtrace.graders.refusal import RefusalDetector
from harmtrace.graders.relevance import RelevanceScorer
from tests.devdata import toy_refusal_detector, toy_refusal_records
from tests.unit.test_grader_embedded import synthetic_records

SRC = Path(__file__).resolve().parents[2] / "src" / "harmtrace"
LAZY = {"_model"}
"""Private caches of loaded weights, set on first use (never in ``__init__``)."""
RENAMED = {EmbeddedGrader: {"extractor": "extractor_choice", "relevance": "use_relevance"}}
"""Parameters stored under another name because the plain name reads a fitted value."""


def _self_assignments(function: ast.FunctionDef) -> list[tuple[str, int]]:
    names = []
    for node in ast.walk(function):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        for target in targets:
            elts = target.elts if isinstance(target, ast.Tuple) else [target]
            for t in elts:
                if isinstance(t, ast.Attribute) and getattr(t.value, "id", None) == "self":
                    names.append((t.attr, t.lineno))
    return names


def attribute_offences(tree: ast.AST, where: str) -> list[str]:
    """Public attributes a fitted class assigns against the convention."""
    out = []
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        methods = [n for n in cls.body if isinstance(n, ast.FunctionDef)]
        if not any(m.name.startswith("fit") for m in methods):
            continue
        for method in methods:
            for name, line in _self_assignments(method):
                if name.startswith("_"):
                    continue
                in_init = method.name == "__init__"
                if in_init == name.endswith("_"):
                    what = "fitted in __init__" if in_init else "learned without '_'"
                    out.append(f"{where}:{line} {cls.name}.{method.name}: {name} ({what})")
    return out


def test_fitted_classes_name_learned_attributes_with_an_underscore():
    offences = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        offences += attribute_offences(tree, str(path.relative_to(SRC)))
    assert not offences, "\n".join(offences)


def test_the_static_check_finds_an_offence():
    source = (
        "class M:\n"
        "    def __init__(self, c):\n        self.c = c\n        self.coef_ = None\n"
        "    def fit(self, x):\n        self.vocabulary = x\n        self.ok_, self._cache = 1, 2\n"
    )
    found = attribute_offences(ast.parse(source), "m.py")
    assert len(found) == 2
    assert "coef_ (fitted in __init__)" in found[0] and "vocabulary (learned" in found[1]


def _fitted_pairs():
    """(fresh instance, how to fit it, whether fit learns state itself) for each main
    fitted class (an embedding learns nothing; a stack's parts do)."""
    lexicon, labelled = toy_refusal_records()
    texts = [f"text number {i} about {w}" for i, w in enumerate("abcdefghij" * 2)]
    x = np.random.default_rng(0).normal(size=(40, 3))
    y = x[:, 0] + np.random.default_rng(1).normal(size=40) > 0
    records = synthetic_records(60)
    return [
        (RefusalDetector(n_splits=3), lambda m: m.fit(lexicon, labelled), True),
        (RelevanceScorer(refusal=toy_refusal_detector()), lambda m: m.fit(texts), True),
        (
            CalibratedLinear(c_grid=(1.0,), standardise=True, inner_splits=3),
            lambda m: m.fit(x, y),
            True,
        ),
        (TfidfExtractor(min_df=1), lambda m: m.fit(texts), True),
        (WordLlamaExtractor(), lambda m: m.fit(texts).transform(texts), False),
        (make_extractor("tfidf+wordllama"), lambda m: m.fit(texts), False),
        (
            EmbeddedGrader(extractor="tfidf", extractor_params={"min_df": 1}, c_grid=(4.0,)),
            lambda m: m.fit(records, refusal=toy_refusal_detector()),
            True,
        ),
    ]


@pytest.mark.parametrize("index", range(7))
def test_init_stores_parameters_and_fit_adds_only_underscored_attributes(index):
    model, fit, learns = _fitted_pairs()[index]
    name = type(model).__name__
    renamed = RENAMED.get(type(model), {})
    params = {renamed.get(p, p) for p in inspect.signature(type(model)).parameters}
    assert set(vars(model)) == params, f"{name}.__init__ sets more than its parameters"
    before = {k: v for k, v in vars(model).items() if not isinstance(v, list | dict)}
    fit(model)
    learned = set(vars(model)) - params - LAZY
    assert bool(learned) == learns, f"{name}: fit learned {sorted(learned)}"
    assert all(a.endswith("_") and not a.startswith("_") for a in learned), (name, learned)
    after = {k: vars(model)[k] for k in before}
    assert after == before, f"{name}.fit changed a constructor parameter"


def test_a_model_pickled_with_unsuffixed_attributes_is_refused(tmp_path):
    """The loader tells a model saved before the renames (``s_on`` for ``s_on_``) from a
    current one, instead of failing later in grading."""
    import copy

    model = EmbeddedGrader(extractor="tfidf", c_grid=(4.0,), inner_splits=3)
    model.fit(synthetic_records(60), refusal=toy_refusal_detector())
    model.save(tmp_path / "current")
    assert EmbeddedGrader.load(tmp_path / "current").current
    old = copy.copy(model)
    old.relevance_ = copy.copy(model.relevance_)
    for name in ("s_off", "s_on", "null_source", "null_size"):
        setattr(old.relevance_, name, vars(old.relevance_).pop(f"{name}_"))
    old.save(tmp_path / "old")
    with pytest.raises(TypeError, match="older harmtrace"):
        EmbeddedGrader.load(tmp_path / "old")
