"""Hot lines of the original: the harness's line profile over the recorded calls, the
sentence the model reads, and revision prompts (search and engine) that carry it."""

from __future__ import annotations

import dataclasses
import functools
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from speedsmith.engine import optimize
from speedsmith.isolate import collect_context, find_function
from speedsmith.llm.base import Generation, Prompt
from speedsmith.search.budget import BudgetSpec, candidate_tokens
from speedsmith.search.prompt import HYPOTHESES_PREFILL, build_revision_prompt, hot_lines_text
from speedsmith.search.strategies import REVISING, StrategyConfig, run_search
from speedsmith.settings import STRATEGIES, Settings
from speedsmith.verify.harness import _measure
from speedsmith.verify.verifier import HotLine, Verdict, profile
from speedsmith.workload import Workload, record_workload

pytestmark = pytest.mark.usefixtures("no_plugin_autoload")

DEDUPE = """
def dedupe(items):
    seen = []
    for x in items:
        if x not in seen:
            seen.append(x)
    return seen
"""
DEDUPE_TESTS = """
from dedupe import dedupe


def test_small():
    assert dedupe([3, 1, 3, 2, 1]) == [3, 1, 2]


def test_big():
    items = [(i * 7919) % 400 for i in range(4000)]
    assert dedupe(items) == list(dict.fromkeys(items))
"""
MEMBERSHIP = 4
"""The line of ``if x not in seen:`` in dedupe.py."""
HOT = "Where the original spends its time: line 4 `if x not in seen:`"
SETTINGS = Settings(candidate_timeout_seconds=20.0)


@dataclass(frozen=True)
class Recorded:
    file: Path
    workload: Workload


@pytest.fixture(scope="module")
def dedupe(project_factory: Any) -> Iterator[Recorded]:
    project = project_factory({"dedupe.py": DEDUPE, "test_dedupe.py": DEDUPE_TESTS})
    out = project.root.parent / f"out-{project.root.name}"
    out.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        workload = record_workload(project.path("dedupe.py"), "dedupe", out_dir=out, timeout=60)
    assert workload.error == "" and workload.calls == 2, workload.pytest_output
    yield Recorded(project.path("dedupe.py"), workload)


# -- the profile in the sandbox -------------------------------------------------------------


def test_profile_finds_the_membership_test(dedupe: Recorded):
    found = profile(dedupe.file, "dedupe", dedupe.workload, SETTINGS)
    assert found.calls == 2
    hottest = found.lines[0]
    assert hottest.line_number == MEMBERSHIP
    assert hottest.text == "if x not in seen:"
    assert hottest.hits == 5 + 4000, "once per item of each recorded call"
    assert hottest.share > 0.4
    shares = [line.share for line in found.lines]
    assert shares == sorted(shares, reverse=True)
    assert 0 < sum(shares) <= 1.0 + 1e-9
    assert {line.line_number for line in found.lines} <= set(range(1, 7))
    source = dedupe.file.read_text(encoding="utf-8")
    text = hot_lines_text(found.lines, find_function(source, "dedupe"))
    assert text.startswith(HOT) and len(text) <= 200


@pytest.mark.parametrize(
    ("qualname", "workload_path"),
    [
        pytest.param("nope", None, id="unknown-function"),
        pytest.param("dedupe", "missing.pkl", id="workload-missing"),
    ],
)
def test_profile_failures_give_an_empty_profile(
    dedupe: Recorded, tmp_path: Path, qualname: str, workload_path: str | None
):
    workload = dedupe.workload
    if workload_path is not None:
        workload = dataclasses.replace(workload, path=tmp_path / workload_path)
    found = profile(dedupe.file, qualname, workload, SETTINGS)
    assert found.lines == () and found.calls == 0


# -- the tracer itself (in process) ----------------------------------------------------------


def _dedupe(items):
    seen = []
    for x in items:
        if x not in seen:  # hottest
            seen.append(x)
    return seen


@functools.wraps(_dedupe)
def _wrapped(items):
    return _dedupe(items)


def _squares(n):
    for i in range(n):
        yield sum(range(i * 10))  # hottest


def _fib(n):
    if n < 2:
        return n
    return _fib(n - 1) + _fib(n - 2)  # hottest


def _call(*args: Any, iterator: int | None = None) -> dict[str, Any]:
    call = {"args": pickle.dumps((args, {})), "result": pickle.dumps(None)}
    if iterator is not None:
        call.update(iterator=True, result=pickle.dumps(list(range(iterator))))
    return call


def _line_of(fn: Callable[..., Any], marker: str = "# hottest") -> int:
    code = fn.__code__
    lines = Path(code.co_filename).read_text(encoding="utf-8").splitlines()
    first = code.co_firstlineno
    return next(i for i in range(first, len(lines) + 1) if marker in lines[i - 1])


@pytest.mark.parametrize(
    ("fn", "calls", "hot"),
    [
        pytest.param(_dedupe, [_call([i % 300 for i in range(2000)])] * 2, _dedupe, id="plain"),
        pytest.param(_wrapped, [_call([i % 300 for i in range(2000)])], _dedupe, id="unwrapped"),
        pytest.param(_squares, [_call(300, iterator=300)], _squares, id="generator"),
        pytest.param(_fib, [_call(14)], _fib, id="recursive"),
    ],
)
def test_tracer_finds_the_hottest_line(fn: Any, calls: list[dict[str, Any]], hot: Any):
    found = _measure.line_profile(fn, calls, 2.0)
    assert found["calls"] == len(calls)
    assert found["lines"][0][0] == _line_of(hot)
    assert 0 < sum(seconds for _, _, seconds in found["lines"]) <= found["seconds"] + 1e-9


def test_tracer_stops_at_its_time_cap():
    slow = [_call([i % 3000 for i in range(100000)])] * 3
    started = time.perf_counter()
    found = _measure.line_profile(_dedupe, slow, 0.2)
    assert time.perf_counter() - started < 1.5, "the traced call is cut short"
    assert found["calls"] == 0 and found["lines"][0][0] == _line_of(_dedupe)


# -- the sentence for the model ----------------------------------------------------------------

MODULE = """import os


@cache
def dedupe(items):
    seen = []
    for x in items:
        if x not in seen:
            seen.append(x)
    return seen
"""
MODULE_FN = find_function(MODULE, "dedupe")  # lines 4 (the decorator) to 10


def hot(line: int, share: float, text: str = "if x not in seen:", hits: int = 12000) -> HotLine:
    return HotLine(line, hits, share * 0.5, share, text)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        pytest.param((), "", id="no-profile"),
        pytest.param(
            (hot(8, 0.612), hot(9, 0.3, "seen.append(x)", 400)),
            "Where the original spends its time: line 5 `if x not in seen:` 61% (12000 runs); "
            "line 6 `seen.append(x)` 30% (400 runs).",
            id="relative-to-the-first-line",
        ),
        pytest.param(
            (hot(8, 0.9, hits=1), hot(7, 0.04, "for x in items:")),
            "Where the original spends its time: line 5 `if x not in seen:` 90% (1 run).",
            id="small-shares-left-out",
        ),
        pytest.param(
            (hot(1, 0.9, "import os"), hot(8, 0.1)),
            "Where the original spends its time: line 5 `if x not in seen:` 10% (12000 runs).",
            id="outside-the-function-left-out",
        ),
        pytest.param(
            (hot(8, 0.5, "x" * 60),),
            f"Where the original spends its time: line 5 `{'x' * 37}...` 50% (12000 runs).",
            id="long-line-shortened",
        ),
    ],
)
def test_hot_lines_text(lines: tuple[HotLine, ...], expected: str):
    assert hot_lines_text(lines, MODULE_FN) == expected


def test_hot_lines_text_shows_at_most_three_lines_briefly():
    many = tuple(
        hot(line, 0.2, "y = compute(x, y, z) + other(x, y, z) * 2") for line in range(5, 11)
    )
    text = hot_lines_text(many, MODULE_FN)
    assert text.count("`") == 4 and len(text) <= 200, "two lines fit in 200 characters"
    short = tuple(hot(line, 0.15, "y += x") for line in range(5, 11))
    assert hot_lines_text(short, MODULE_FN).count("`") == 6, "three lines at most"


@pytest.mark.parametrize(
    ("hot_lines", "idea"),
    [
        pytest.param(HOT + " 61% (12000 runs).", None, id="hot-lines"),
        pytest.param(HOT + " 61% (12000 runs).", "Use a set", id="hot-lines-and-idea"),
        pytest.param("", None, id="none"),
    ],
)
def test_revision_prompt_carries_the_hot_lines(hot_lines: str, idea: str | None):
    fn = find_function(DEDUPE, "dedupe")
    prompt = build_revision_prompt(
        fn, collect_context(DEDUPE, fn), DEDUPE, "correct but not faster", idea, hot_lines
    )
    lines = prompt.user.splitlines()
    result = lines.index("Result: correct but not faster")
    if hot_lines:
        assert lines[result + 1] == hot_lines, "right after the verifier's result"
    else:
        assert "spends its time" not in prompt.user
    if idea:
        assert f"Idea: {idea}." in lines


# -- the search passes them on ---------------------------------------------------------------

FN = find_function(DEDUPE, "dedupe")
FASTER = "def dedupe(items):\n    return list(dict.fromkeys(items))\n"
SLOWER = "def dedupe(items):\n    return sorted(set(items), key=items.index)\n"
WRONG = "def dedupe(items):\n    return list(set(items))\n"


def fake_verdict(source: str) -> Verdict:
    if "fromkeys" in source:
        return Verdict(True, "3.00x", (), 3.0, (2.5, 3.5), True, 10)
    if "sorted" in source:
        return Verdict(True, "0.50x", (), 0.5, (0.4, 0.6), False, 10)
    return Verdict(False, "expected [3, 1, 2], got [1, 2, 3]", ("expected [3, 1, 2]",))


@dataclass
class RecordingBackend:
    """Cycles through ``replies`` at 40 tokens each; keeps every prompt."""

    replies: tuple[str, ...]
    name: str = "recording"
    prompts: list[Prompt] = field(default_factory=list)

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
        self.prompts.append(prompt)
        if prompt.prefill == HYPOTHESES_PREFILL:  # maxmode's hypotheses
            text = " Use a set.\n2. Use dict.fromkeys."
        else:
            text = self.replies[(len(self.prompts) - 1) % len(self.replies)]
        return Generation(text, 10, min(40, max_tokens), 0.0)


@pytest.mark.parametrize("strategy", [pytest.param(s, id=s) for s in STRATEGIES])
def test_every_revision_prompt_carries_the_hot_lines(strategy: str):
    hot_lines = HOT + " 61% (12000 runs)."
    backend = RecordingBackend((FASTER, SLOWER, WRONG, FASTER.replace("items", "items ")))
    run_search(
        FN,
        collect_context(DEDUPE, FN),
        backend,
        fake_verdict,
        config=StrategyConfig(name=strategy, beam_width=2, maxmode_width=2),
        budget=BudgetSpec(600, float("inf"), None, candidate_tokens(FN.source)),
        temperature=0.7,
        seed=3,
        progress=lambda phase, message: None,
        hot_lines=hot_lines,
    )
    revisions = [p.user for p in backend.prompts if "An earlier attempt" in p.user]
    assert bool(revisions) == (strategy in REVISING)
    assert all(hot_lines in user for user in revisions)
    others = [p.user for p in backend.prompts if "An earlier attempt" not in p.user]
    assert others and not any("spends its time" in user for user in others)


# -- the engine profiles for every strategy; the hot lines reach revision prompts ------------


@pytest.mark.parametrize(
    ("strategy", "revises"),
    [
        pytest.param("revision", True, id="revision"),
        pytest.param("best-of-n", False, id="best-of-n"),
    ],
)
def test_engine_gives_the_search_the_hot_lines(make_project: Any, strategy: str, revises: bool):
    project = make_project({"dedupe.py": DEDUPE, "test_dedupe.py": DEDUPE_TESTS})
    backend = RecordingBackend((WRONG,))
    settings = Settings(strategy=strategy, budget=3, seed=1, candidate_timeout_seconds=20.0)
    phases: list[str] = []
    report = optimize(
        project.path("dedupe.py"),
        "dedupe",
        settings,
        backend=backend,
        progress=lambda phase, message: phases.append(message),
    )
    assert report.verdict == "no-improvement", report.reason
    users = [p.user for p in backend.prompts]
    assert len(users) >= 2
    # every strategy profiles (region proposals); the report keeps the hot lines (the hover)
    assert any(m.startswith("Profiling dedupe") for m in phases)
    assert report.hot_lines[0].line == MEMBERSHIP and report.hot_lines[0].offset == MEMBERSHIP - 1
    if revises:
        # revision starts from the zero-token candidate (an equivalent local alias) or from
        # a first plain sample; every revision prompt names the hot lines
        revisions = [user for user in users if "earlier attempt" in user]
        assert revisions and all(HOT in user for user in revisions), revisions[0]
    else:
        assert not any("spends its time" in user for user in users)
    assert report.seconds["verification"] > 0
