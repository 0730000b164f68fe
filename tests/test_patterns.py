"""The pattern library: every pattern's own example is detected (by ast, and by ruff where it
has rules), its fast version is valid Python with the same name, and detection degrades to the
ast detectors when ruff is missing."""

from __future__ import annotations

import ast

import pytest

from speedsmith.search import patterns
from speedsmith.search.patterns import PATTERNS, detect

RUFF = patterns.ruff_binary() is not None


@pytest.mark.parametrize("pattern", [pytest.param(p, id=p.id) for p in PATTERNS])
def test_examples_are_valid_and_small(pattern: patterns.Pattern):
    before = ast.parse(pattern.before).body[0]
    after = ast.parse(pattern.after).body[0]
    assert isinstance(before, ast.FunctionDef) and isinstance(after, ast.FunctionDef)
    assert before.name == after.name
    assert len(pattern.after.splitlines()) <= 5 and len(pattern.before.splitlines()) <= 6
    assert pattern.hypothesis[0].isupper() and not pattern.hypothesis.endswith(".")


@pytest.mark.parametrize(
    "pattern", [pytest.param(p, id=p.id) for p in PATTERNS if p.detector is not None]
)
def test_each_example_is_detected_without_ruff(pattern: patterns.Pattern):
    found = {f.pattern.id for f in detect(pattern.before, ("import re", "import math"), False)}
    assert pattern.id in found


@pytest.mark.skipif(not RUFF, reason="no ruff binary")
@pytest.mark.parametrize(
    ("source", "pattern", "rule"),
    [
        pytest.param(
            "def f(xs):\n    out = []\n    for x in xs:\n        out.append(x + 1)\n    return out",
            "append-loop",
            "PERF401",
            id="perf401",
        ),
        pytest.param(
            "def f(xs):\n    return [x for x in xs if x in [1, 2, 3]]",
            "list-membership",
            "PLR6201",
            id="plr6201",
        ),
        pytest.param(
            "def f(xs):\n    return sorted(xs)[0]", "sorted-first", "FURB192", id="furb192"
        ),
        pytest.param(
            "def f(xs):\n    for x in xs:\n        if x:\n            return True\n"
            "    return False",
            "builtin-reduce",
            "SIM110",
            id="sim110",
        ),
        pytest.param(
            "def f(d):\n    return [k for k in d.keys()]", "redundant-work", "C416", id="c416"
        ),
    ],
)
def test_ruff_detects(source: str, pattern: str, rule: str):
    found = {f.pattern.id: f.by for f in detect(source)}
    assert found.get(pattern) == rule


@pytest.mark.parametrize(
    ("source", "absent"),
    [
        pytest.param("def f(x):\n    return x + 1", set(p.id for p in PATTERNS), id="plain"),
        pytest.param(
            "def f(s):\n    return re.sub('a', 'b', s)", {"regex-once"}, id="regex-outside-loop"
        ),
        pytest.param("def f(n):\n    return f(n - 1)", {"cache-recursion"}, id="one-self-call"),
    ],
)
def test_not_detected(source: str, absent: set[str]):
    assert not absent & {f.pattern.id for f in detect(source, ("import re",))}


def test_missing_ruff_degrades_to_ast(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(patterns, "ruff_binary", lambda: None)
    source = "def g(xs):\n    out = []\n    for x in xs:\n        out.append(x * 3)\n    return out"
    assert patterns.run_ruff(source, patterns.RUFF_RULES, fix=True) is None
    found = detect(source)
    assert [(f.pattern.id, f.by) for f in found][:1] == [("append-loop", "ast")]


def test_hypotheses_follow_library_order():
    source = (
        "def f(xs):\n    s = ''\n    for i in range(len(xs)):\n        s += xs[i]\n    return s"
    )
    ideas = patterns.hypotheses(source)
    order = [p.hypothesis for p in PATTERNS]
    assert ideas == sorted(ideas, key=order.index)
    assert patterns.BY_ID["string-concat"].hypothesis in ideas
    assert patterns.BY_ID["range-len"].hypothesis in ideas


def test_maxmode_hypotheses_start_with_the_detected_patterns():
    import threading

    from speedsmith.isolate import collect_context, find_function
    from speedsmith.llm.base import Generation, Prompt
    from speedsmith.search.budget import resolve
    from speedsmith.search.prompt import HYPOTHESES_PREFILL
    from speedsmith.search.strategies import StrategyConfig, run_search
    from speedsmith.verify.verifier import Verdict

    module = "def g(xs):\n    s = ''\n    for x in xs:\n        s += x\n    return s\n"
    fn = find_function(module, "g")

    class Backend:
        name = "fake"

        def generate(
            self,
            prompt: Prompt,
            *,
            max_tokens: int,
            temperature: float,
            seed: int,
            stop: tuple[str, ...],
            cancel: threading.Event | None = None,
        ) -> Generation:
            if prompt.prefill == HYPOTHESES_PREFILL:
                return Generation(" Use numpy\n2. Use a cache", 5, 10, 0.0)
            return Generation("return ''.join(xs)\n", 5, 10, 0.0)

    result = run_search(
        fn,
        collect_context(module, fn),
        Backend(),
        lambda source: Verdict(False, "no"),
        config=StrategyConfig(name="maxmode", maxmode_width=2, maxmode_depth=1),
        budget=resolve(1000, None, 128),
        temperature=0.7,
        seed=1,
        progress=lambda phase, message: None,
    )
    assert result.hypotheses[0] == patterns.BY_ID["string-concat"].hypothesis
    assert "Use numpy" in result.hypotheses
