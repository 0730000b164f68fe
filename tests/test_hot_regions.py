"""Hot regions: the profile's lines summed per block of statements (``measure.hot_blocks``), on
both profilers (``sys.monitoring`` on 3.12+, ``sys.settrace`` before), the hot region the
search proposes rewrites of (``region.hot_region``), region proposals as a kind of their own in
the search (spliced, the rest of the function byte for byte), through the engine to a
region-only edit, and the hot lines in the hover."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from speedsmith.cache import CachedResult, report_from_json
from speedsmith.engine import optimize
from speedsmith.isolate import Context, Region, RegionInfo, find_function, snap_region
from speedsmith.llm.base import Generation, Prompt
from speedsmith.lsp.hints import hover_markdown
from speedsmith.report import CandidateCounts, HotRegion, HotSpot, OptimizeReport
from speedsmith.search.budget import BudgetSpec, candidate_tokens
from speedsmith.search.core import Search
from speedsmith.search.prompt import HYPOTHESES_PREFILL, prompt_code
from speedsmith.search.region import HOT_FOCUS, HOT_MARKERS, START_MARKER, hot_region, splice
from speedsmith.search.strategies import StrategyConfig, run_search
from speedsmith.settings import Settings
from speedsmith.verify.harness import _measure
from speedsmith.verify.verifier import Verdict

MEASURE = Path(__file__).resolve().parents[1] / "server" / "speedsmith" / "verify" / "measure.py"

# -- lines to blocks (in process: made-up seconds per line, nothing timed) --------------------

MODULE = '''import os


@decorated
def work(items, mode):
    """Doc."""
    n = len(items)
    out = []
    for x in items:
        if x % 2:
            for y in range(200):
                out.append(x * y)
        else:
            out.append(x)
    if mode == "a":
        total = sum(out)
    elif mode == "b":
        total = max(out)
        total += 1
    else:
        total = 0
    try:
        ratio = total / n
    except ZeroDivisionError:
        ratio = 0.0

    def helper(z):
        return z * 2

    return helper(ratio)


class K:
    def method(self, xs):
        acc = 0
        while xs:
            acc += xs.pop()
        return acc
'''
# 1-based lines: 4 @decorated, 5 def work, 6 docstring, 7 n =, 8 out =, 9 for x, 10 if x % 2,
# 11 for y, 12 out.append(x * y), 13 else, 14 out.append(x), 15 if mode, 16 total = sum,
# 17 elif, 18 total = max, 19 total += 1, 20 else, 21 total = 0, 22 try, 23 ratio =,
# 24 except, 25 ratio = 0.0, 27 def helper, 28 return z * 2, 30 return helper(ratio);
# 34 def method, 35 acc = 0, 36 while, 37 acc +=, 38 return acc


def spread(**lines: float) -> dict[int, float]:
    """Seconds per line: ``spread(l12=90.0, l7=1.0)``."""
    return {int(name[1:]): seconds for name, seconds in lines.items()}


@pytest.mark.parametrize(
    ("first_line", "name", "spent", "regions"),
    [
        pytest.param(
            4, "work", spread(l7=1, l9=2, l10=2, l11=10, l12=80, l30=5),
            [(9, 14), (10, 14), (11, 12), (12, 12)],
            id="dominant-inner-loop-then-inside-it",
        ),
        pytest.param(
            5, "work", spread(l7=1, l9=2, l10=2, l11=10, l12=80, l30=5),
            [(9, 14), (10, 14), (11, 12), (12, 12)],
            id="found-by-its-def-line-too",
        ),
        pytest.param(
            4, "work", spread(l7=5, l15=1, l17=1, l18=40, l19=40, l30=13),
            [(15, 21), (18, 19)],
            id="elif-body-is-a-block-of-the-if",
        ),
        pytest.param(
            4, "work", spread(l7=5, l22=1, l23=2, l24=1, l25=80, l30=3),
            [(22, 25), (25, 25)],
            id="except-body",
        ),
        pytest.param(
            4, "work", spread(l7=30, l8=30, l30=40),
            [(7, 8)],
            id="two-statements-hold-half",
        ),
        pytest.param(
            4, "work", spread(l7=20, l8=20, l16=20, l23=20, l30=20),
            [(7, 21)],
            id="spread-over-the-body",
        ),
        pytest.param(
            4, "work", spread(l28=100, l30=1),
            [(27, 28)],
            id="nested-function-is-one-statement",
        ),
        pytest.param(
            34, "method", spread(l35=1, l36=10, l37=80, l38=1),
            [(36, 37), (37, 37)],
            id="method-while-loop",
        ),
        pytest.param(4, "missing", spread(l7=1), [], id="unknown-function"),
        pytest.param(4, "work", {}, [], id="no-time"),
    ],
)  # fmt: skip
def test_hot_blocks_regions(
    first_line: int, name: str, spent: dict[int, float], regions: list[tuple[int, int]]
):
    found = _measure.hot_blocks(MODULE, first_line, name, spent, 0.5)
    assert [(first, last) for first, last, _ in found["regions"]] == regions
    total = sum(spent.values())
    assert all(seconds >= 0.5 * total for _, _, seconds in found["regions"])
    seconds = [taken for _, _, taken in found["blocks"]]
    assert seconds == sorted(seconds, reverse=True)


def test_hot_blocks_sums_each_block():
    found = _measure.hot_blocks(
        MODULE, 4, "work", spread(l7=1, l9=2, l10=2, l11=10, l12=80, l14=3, l30=5), 0.5
    )
    blocks = {(first, last): seconds for first, last, seconds in found["blocks"]}
    assert blocks == {
        (7, 30): 103,  # the body without its docstring
        (10, 14): 95,  # the for-x loop's body
        (11, 12): 90,  # the if's body
        (12, 12): 80,  # the for-y loop's body
        (14, 14): 3,  # the else
    }


# -- both profilers, on the interpreters that have them ---------------------------------------

PROFILED = '''def work(items):
    """A loop doing a thousand times more than the rest."""
    n = len(items)
    out = []
    for x in items:
        for y in range(1000):
            out.append(x * y)
    total = sum(items)
    return total / n, len(out)


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)  # hottest


def squares(n):
    for i in range(n):
        yield sum(range(i * 50))  # hottest
'''
CHILD = """
import contextlib, importlib.util, json, pickle, sys, time
spec = importlib.util.spec_from_file_location("measure", sys.argv[1])
measure = importlib.util.module_from_spec(spec)
spec.loader.exec_module(measure)

@contextlib.contextmanager
def as_role(fn):
    yield

def invoke(fn, args, kwargs, take, ended):
    value = fn(*args, **kwargs)
    if take is not None:
        for _ in zip(range(take), value):
            pass

measure.setup(as_role, time.perf_counter, invoke)
sys.path.insert(0, sys.argv[2])
import profiled

def call(*args, iterator=None):
    found = {"args": pickle.dumps((args, {})), "result": pickle.dumps(None)}
    if iterator is not None:
        found.update(iterator=True, result=pickle.dumps(list(range(iterator))))
    return found

taken = None
if sys.argv[3] == "taken":  # every tool id the profiler would use is someone else's
    taken = [2, 3, 4]
    for tool in taken:
        sys.monitoring.use_tool_id(tool, "other")
out = {
    "work": measure.line_profile(profiled.work, [call(list(range(20)))] * 2, 2.0),
    "fib": measure.line_profile(profiled.fib, [call(12)], 2.0),
    "squares": measure.line_profile(profiled.squares, [call(100, iterator=60)], 2.0),
}
monitoring = getattr(sys, "monitoring", None)
out["tools"] = [monitoring.get_tool(t) for t in range(6)] if monitoring else []
print(json.dumps(out))
"""


def _interpreter(version: str) -> str | None:
    """A working Python ``version`` (pyenv's, else on PATH), or None."""
    if sys.version_info[:2] == tuple(int(part) for part in version.split(".")):
        return sys.executable
    home = os.path.expanduser("~/.pyenv/versions")
    candidates = sorted(glob.glob(os.path.join(home, f"{version}*", "bin", "python3")))
    candidates.append(f"/usr/bin/python{version}")
    for candidate in candidates:
        try:
            done = subprocess.run(
                [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if done.stdout.strip() == version:
            return candidate
    return None


def _line(marker: str) -> int:
    return next(i for i, line in enumerate(PROFILED.splitlines(), 1) if marker in line)


@pytest.mark.parametrize(
    ("version", "tools", "method"),
    [
        pytest.param("3.9", "free", "sys.settrace", id="3.9-settrace"),
        pytest.param("3.11", "free", "sys.settrace", id="3.11-settrace"),
        pytest.param("3.12", "free", "sys.monitoring", id="3.12-monitoring"),
        pytest.param("3.13", "free", "sys.monitoring", id="3.13-monitoring"),
        pytest.param("3.13", "taken", "sys.settrace", id="3.13-tool-ids-taken-settrace"),
    ],
)
def test_profilers_find_the_dominant_loop(tmp_path: Path, version: str, tools: str, method: str):
    python = _interpreter(version)
    if python is None:
        pytest.skip(f"no Python {version} here")
    (tmp_path / "profiled.py").write_text(PROFILED, encoding="utf-8")
    done = subprocess.run(
        [python, "-c", CHILD, str(MEASURE), str(tmp_path), tools],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    work = found["work"]
    assert work["method"] == method and work["calls"] == 2
    assert work["lines"][0][0] in (6, 7), "inside the inner loop"
    # the hottest region is the outer loop (lines 5-7), then the inner loop inside it
    assert [tuple(r[:2]) for r in work["regions"][:2]] == [(5, 7), (6, 7)]
    assert work["regions"][0][2] >= 0.5 * work["seconds"]
    assert (3, 9) in [tuple(b[:2]) for b in work["blocks"]], "the body, docstring left out"
    assert found["fib"]["lines"][0][0] == _line("return fib(n - 1)")
    assert found["fib"]["calls"] == 1
    squares = found["squares"]
    assert squares["lines"][0][0] == _line("yield sum") and squares["calls"] == 1
    assert squares["lines"][0][1] == 60, "one run per item taken"
    if found["tools"]:  # the tool id is given back
        expected = ["other"] * 3 if tools == "taken" else [None] * 3
        assert found["tools"][2:5] == expected


# -- which hot region the search proposes -------------------------------------------------------

LONG = '''def summarize(items):
    """Count, duplicates, mean and spread."""
    count = len(items)
    if count == 0:
        return {"count": 0}
    lo = min(items)
    hi = max(items)
    mean = sum(items) / count
    dupes = 0
    for i, x in enumerate(items):
        if x in items[:i]:
            dupes += 1
    spread = hi - lo
    label = "wide" if spread > 10 else "narrow"
    return {"count": count, "dupes": dupes, "mean": mean, "spread": spread, "label": label}
'''
# 1-based: 10 for, 11 if, 12 dupes += 1 (3 of 13 body code lines)
LOOPY = """def scan(rows):
    out = []
    for row in rows:
        key = row[0]
        name = str(row[1])
        size = len(name)
        if size > 3:
            name = name.upper()
        total = 0
        for x in row:
            total += x if isinstance(x, int) else 0
        out.append((key, name, size, total))
    return out
"""
# 0-based: 2-11 the rows loop (10 of 12 body code lines), 9-10 the inner loop
SHORT = """def sum_of_squares(nums):
    total = 0
    for i in range(len(nums)):
        total = total + nums[i] * nums[i]
    return total
"""


@pytest.mark.parametrize(
    ("source", "regions", "expected"),
    [
        pytest.param(LONG, [(9, 11), (10, 11)], (0, 9, 11), id="loop-under-half-of-the-body"),
        pytest.param(LOOPY, [(2, 11), (9, 10)], (1, 9, 10), id="loop-too-big-take-inner-loop"),
        pytest.param(SHORT, [(2, 3), (3, 3)], None, id="short-function-rewritten-whole"),
        pytest.param(LONG, [(2, 14)], None, id="the-whole-body"),
        pytest.param(LONG, [(0, 3)], None, id="reaches-the-def-line"),
        pytest.param(LONG, [(40, 41)], None, id="outside-the-function"),
        pytest.param(LONG, [], None, id="no-profile"),
    ],
)
def test_hot_region_choice(
    source: str, regions: list[tuple[int, int]], expected: tuple[int, int, int] | None
):
    fn = find_function(source, source.split("(")[0].removeprefix("def "))
    chosen = hot_region(source, fn, regions)
    if expected is None:
        assert chosen is None
    else:
        assert chosen is not None
        index, info = chosen
        assert (index, info.start_line, info.end_line) == expected


# -- region proposals in the search ------------------------------------------------------------

FN = find_function(LONG, "summarize")


def _loop() -> RegionInfo:
    found = snap_region(LONG, FN, Region(9, 11))
    assert found is not None
    return found


HOT = _loop()
REGION_REPLY = "dupes += count - len(set(items))"
WHOLE_REPLY = "def summarize(items):\n    return {'count': len(items)}\n"
HOT_REPLY = prompt_code(splice(FN.source, HOT, REGION_REPLY))
"""The whole function with only the hot loop rewritten, as the model sees it (no docstring)."""


def fake_verdict(source: str) -> Verdict:
    if "len(set(items))" in source:
        return Verdict(True, "5.00x", (), 5.0, (4.0, 6.0), True, 10)
    return Verdict(False, "expected a dict with dupes", ("expected dupes",))


@dataclass
class KindBackend:
    """Answers a selection's region prompt with ``REGION_REPLY``, a hot-region proposal with
    ``HOT_REPLY``, any other with ``WHOLE_REPLY``."""

    name: str = "kinds"
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
        if prompt.prefill == HYPOTHESES_PREFILL:
            text = " Use a set.\n2. Count once."
        elif START_MARKER in prompt.user:
            text = REGION_REPLY
        elif HOT_MARKERS[0] in prompt.user:
            text = HOT_REPLY.removeprefix(prompt.prefill_code)
        else:
            text = WHOLE_REPLY.removeprefix(prompt.prefill_code)
        return Generation(text, 10, min(12, max_tokens), 0.0)


def _search(strategy: str, hot: RegionInfo | None, budget: int = 8) -> tuple[Any, KindBackend]:
    backend = KindBackend()
    result = run_search(
        FN,
        Context((), (), (), None),
        backend,
        fake_verdict,
        config=StrategyConfig(name=strategy, beam_width=2, beam_expand=2, maxmode_width=2),
        budget=BudgetSpec(budget * 128, float("inf"), budget, candidate_tokens(FN.source)),
        temperature=0.7,
        seed=1,
        progress=lambda phase, message: None,
        tools=False,
        hot_region=hot,
    )
    return result, backend


@pytest.mark.parametrize(
    ("strategy", "kinds"),
    [
        pytest.param("best-of-n", "WRWRWRWR", id="best-of-n-alternates"),
        pytest.param("beam", "WRWR", id="beam-seeds-alternate"),
        pytest.param("maxmode", "WR", id="maxmode-branches-alternate"),
        pytest.param("adaptive", "WRWR", id="adaptive-probe-alternates"),
        pytest.param("revision", "W", id="revision-starts-whole"),
    ],
)
def test_region_proposals_are_a_kind_of_their_own(strategy: str, kinds: str):
    result, backend = _search(strategy, HOT)
    made = "".join("R" if a.region is not None else "W" for a in result.attempts)
    assert made.startswith(kinds), made
    assert result.region == made.count("R")
    for attempt in result.attempts:
        if attempt.region is None:
            continue
        assert attempt.region == HOT
        assert attempt.source == splice(FN.source, HOT, REGION_REPLY)
        before, after = FN.source.split("\n"), (attempt.source or "").split("\n")
        assert after[:9] == before[:9] and after[10:] == before[12:], "the rest byte for byte"
        assert after[9] == "    " + REGION_REPLY
    hot_prompts = [p for p in backend.prompts if HOT_MARKERS[0] in p.user]
    assert len(hot_prompts) >= made.count("R")
    assert all(HOT_FOCUS in p.user and p.prefill_code.startswith("def ") for p in hot_prompts)
    assert not any(START_MARKER in p.user for p in backend.prompts), "no region-only prompt"
    # a hot-region proposal's revisions aim at the region again
    for index, attempt in enumerate(result.attempts):
        if attempt.parent is not None:
            assert attempt.region == result.attempts[attempt.parent].region, index


def test_no_hot_region_no_region_proposals():
    result, backend = _search("best-of-n", None)
    assert result.region == 0 and result.generated == 8
    assert not any(m in p.user for p in backend.prompts for m in (START_MARKER, *HOT_MARKERS))


def test_a_selection_turns_hot_regions_off():
    search = Search(
        FN,
        Context((), (), (), None),
        KindBackend(),
        fake_verdict,
        BudgetSpec(1000, float("inf")),  # type: ignore[arg-type]
        strategy="best-of-n",
        temperature=0.7,
        seed=1,
        progress=lambda phase, message: None,
        region=HOT,
        hot_region=HOT,
    )
    assert search.hot_region is None and search.proposal_region(1) is None


# -- through the engine: profile, region proposal, region-only edit ------------------------------

LONG_TESTS = """
from summary import summarize


def test_small():
    assert summarize([3, 1, 3, 2, 1])["dupes"] == 2
    assert summarize([]) == {"count": 0}


def test_big():
    items = [(i * 7919) % 1500 for i in range(3000)]
    assert summarize(items)["dupes"] == 1500
"""


@pytest.mark.usefixtures("no_plugin_autoload")
def test_engine_proposes_the_hot_region_and_edits_only_it(make_project: Any):
    project = make_project({"summary.py": "import os\n\n\n" + LONG, "test_summary.py": LONG_TESTS})
    backend = KindBackend()
    settings = Settings(budget=2, seed=1, candidate_timeout_seconds=30.0)
    report = optimize(project.path("summary.py"), "summarize", settings, backend=backend)
    assert report.hot_region is not None, report.hot_lines
    assert (report.hot_region.start, report.hot_region.end) == (13, 15), "the dupes loop"
    assert report.hot_region.share >= 0.5
    assert report.hot_lines[0].line in (13, 14) and report.hot_lines[0].offset in (9, 10)
    assert report.candidates.region == 1 and report.candidates.generated == 2
    assert report.verdict == "improved", report.reason
    assert report.edit is not None
    text = project.path("summary.py").read_text(encoding="utf-8")
    data = text.encode()
    new = (data[: report.edit.start_byte] + report.edit.new_text.encode()).decode()
    new += data[report.edit.end_byte :].decode()
    before, after = text.split("\n"), new.split("\n")
    assert after[:12] == before[:12] and after[13:] == before[15:], "only the loop's lines"
    assert after[12] == "    " + REGION_REPLY
    data_json = report.to_json()
    assert data_json["candidates"]["region"] == 1
    assert data_json["hot_region"] == {"start": 13, "end": 15, "share": report.hot_region.share,
                                       "offset": 9}  # fmt: skip
    cached = report_from_json(json.loads(json.dumps(data_json)))  # what the cache reads back
    assert (cached.hot_lines, cached.hot_region, cached.candidates) == (
        report.hot_lines,
        report.hot_region,
        report.candidates,
    )


# -- the hover ---------------------------------------------------------------------------------


def _entry(hot_lines: tuple[HotSpot, ...], region: HotRegion | None = None) -> CachedResult:
    report = OptimizeReport(
        target="summary.py::summarize",
        verdict="no-improvement",
        reason="",
        model="m",
        original=LONG,
        candidates=CandidateCounts(generated=4, parsed=4, region=2),
        recorded_calls=3,
        hot_lines=hot_lines,
        hot_region=region,
    )
    return CachedResult("k", "summarize", "h", "quick", 0.0, report)


@pytest.mark.parametrize(
    ("hot_lines", "region", "shown", "absent"),
    [
        pytest.param((), None, [], ["spends its time"], id="no-profile"),
        pytest.param(
            (HotSpot(14, 10, 0.81, 4500, "if x in items[:i]:"),
             HotSpot(13, 9, 0.12, 3000, "for i, x in enumerate(items):"),
             HotSpot(4, 0, 0.01, 1, "def summarize(items):")),
            HotRegion(13, 15, 0.93, 9),
            ["Where it spends its time",
             "- line 21: `if x in items[:i]:` 81% (4500 runs)",
             "- line 20: `for i, x in enumerate(items):` 12% (3000 runs)",
             "Hot region lines 20-22 (93% of the time): 2 candidates aimed at it"],
            ["def summarize(items):` 1%"],
            id="numbered-where-the-function-is-now",
        ),
        pytest.param(
            (HotSpot(5, 1, 1.0, 1, "s = `x`"),), None, ["- line 12: `` s = `x` `` 100% (1 run)"],
            ["Hot region"], id="backticks-in-the-line",
        ),
    ],
)  # fmt: skip
def test_hover_shows_the_hot_lines(
    hot_lines: tuple[HotSpot, ...], region: HotRegion | None, shown: list[str], absent: list[str]
):
    moved = find_function("\n" * 10 + LONG, "summarize")  # the function now starts on line 11
    value = hover_markdown(_entry(hot_lines, region), moved)
    assert value.startswith("**speedsmith**: no verified speedup")
    for text in shown:
        assert text in value, value
    for text in absent:
        assert text not in value, value


class WholeBackend(KindBackend):
    """Answers every prompt, region prompts included, with the whole function."""

    def generate(self, prompt: Prompt, **kwargs: Any) -> Generation:
        self.prompts.append(prompt)
        text = (
            WHOLE_REPLY
            if START_MARKER in prompt.user
            else WHOLE_REPLY.removeprefix(prompt.prefill_code)
        )
        return Generation(text, 10, min(12, kwargs["max_tokens"]), 0.0)


@pytest.mark.parametrize(
    ("selection", "parsed"),
    [
        pytest.param(None, 4, id="hot-region-proposals-are-whole-function-prompts"),
        pytest.param(HOT, 0, id="selection-never-widened"),
    ],
)
def test_a_whole_function_reply_to_a_region_prompt(selection: RegionInfo | None, parsed: int):
    """The small model often answers a region prompt with the whole function: for the user's
    selection that is rejected (the rest of the function must stay verbatim). A hot-region
    proposal never asks for the region alone: its prompt is a whole-function one (header
    prefilled) with the region marked, so the same reply is a candidate like any other."""
    backend = WholeBackend()
    result = run_search(
        FN,
        Context((), (), (), None),
        backend,
        fake_verdict,
        config=StrategyConfig(name="best-of-n"),
        budget=BudgetSpec(4 * 128, float("inf"), 4, candidate_tokens(FN.source)),
        temperature=0.7,
        seed=1,
        progress=lambda phase, message: None,
        tools=False,
        region=selection,
        hot_region=HOT,
    )
    assert sum(START_MARKER in p.user for p in backend.prompts) == (4 if selection else 0)
    assert sum(HOT_MARKERS[0] in p.user for p in backend.prompts) == (0 if selection else 2)
    assert result.parsed == parsed
    if selection is None:
        assert result.region == 2  # the hot-region proposals, whole-function candidates
    else:
        assert all("whole function" in a.error for a in result.attempts)
