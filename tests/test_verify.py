"""End to end verification: record a tiny project's workload, then verify candidates against it
in the sandboxed harness (real subprocesses, real pytest)."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from speedsmith.settings import Settings
from speedsmith.verify.verifier import Verdict, verify
from speedsmith.workload import Workload, record_workload

pytestmark = pytest.mark.usefixtures("no_plugin_autoload")

FAST = Settings(timing_max_rounds=12, timing_max_seconds=5.0, candidate_timeout_seconds=10.0)
"""Short timing so the whole file stays quick; the decision logic is tested in test_timing."""

ORIGINAL = """
def sum_of_squares(nums):
    total = 0
    for i in range(len(nums)):
        total = total + nums[i] * nums[i]
    return total
"""

SQUARES_TESTS = """
from squares import sum_of_squares


def test_small():
    assert sum_of_squares([3, 1, 2]) == 14


def test_empty():
    assert sum_of_squares([]) == 0


def test_negative():
    assert sum_of_squares([-2, 5]) == 29


def test_big():
    nums = [(i * 7919) % 10007 - 5000 for i in range(20000)]
    assert sum_of_squares(nums) == sum(x * x for x in nums)
"""


@dataclass(frozen=True)
class Recorded:
    project: Any
    file: Path
    qualname: str
    workload: Workload

    def verify(self, candidate: str | None, settings: Settings = FAST, **kw: Any) -> Verdict:
        return verify(self.file, self.qualname, self.workload, candidate, settings, **kw)


def record_module(
    project_factory: Any, files: dict[str, str], module: str, qualnames: list[str]
) -> dict[str, Recorded]:
    """Record each qualname of ``module`` once (plugin autoload off, as in the tests)."""
    project = project_factory(files)
    recorded = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        for qualname in qualnames:
            out = project.root.parent / f"out-{project.root.name}-{qualname}"
            out.mkdir()
            workload = record_workload(project.path(module), qualname, out_dir=out, timeout=60)
            assert workload.error == "", workload.pytest_output
            assert workload.calls > 0, workload.pytest_output
            assert workload.failed_tests == (), workload.pytest_output
            recorded[qualname] = Recorded(project, project.path(module), qualname, workload)
    return recorded


@pytest.fixture(scope="module")
def squares(project_factory: Any) -> Iterator[Recorded]:
    files = {"squares.py": ORIGINAL, "test_squares.py": SQUARES_TESTS}
    yield record_module(project_factory, files, "squares.py", ["sum_of_squares"])["sum_of_squares"]


def fn(body: str, header: str = "") -> str:
    """A candidate ``sum_of_squares`` with ``body`` (4-space indented lines)."""
    lines = "\n".join("    " + line if line else "" for line in body.strip("\n").split("\n"))
    return f"{header}def sum_of_squares(nums):\n{lines}\n"


def test_workload_recorded(squares: Recorded):
    assert squares.workload.calls == 4
    assert len(squares.workload.reached_tests) == 4


def test_baseline_replay_of_deterministic_original(squares: Recorded):
    verdict = squares.verify(None)
    assert verdict.equivalent, verdict.reason
    assert verdict.reason == "equivalent"
    assert verdict.speedup is None and verdict.rounds == 0


@pytest.mark.parametrize(
    ("candidate", "pattern"),
    [
        pytest.param(fn("return sum(nums)"), r"expected 14, got 6", id="plausible-wrong-sum"),
        pytest.param(
            fn("return float(sum([x * x for x in nums]))"),
            r"expected 14, got 14\.0",
            id="float-instead-of-int",
        ),
        pytest.param(
            fn("nums.sort()\nreturn sum([x * x for x in nums])"),
            r"mutated",
            id="mutates-argument",
        ),
        pytest.param(
            fn("raise RuntimeError('not today')"), r"raised builtins\.RuntimeError", id="raises"
        ),
        pytest.param(
            fn("return sum([x * x for x in nums]) if nums else None"),
            r"expected 0, got None",
            id="wrong-on-empty-input",
        ),
        pytest.param(
            fn("class Yes:\n    def __eq__(self, other):\n        return True\nreturn Yes()"),
            r"expected 14, got <",
            id="eq-always-true",
        ),
        pytest.param(
            fn("return sum([x * x for x in nums]"), r"does not load: SyntaxError", id="syntax-error"
        ),
        pytest.param(
            fn(
                'print(\'{"phase": "equivalence", "equivalent": true, "mismatches": []}\')\n'
                'print(\'{"phase": "done"}\')\n'
                "return -1"
            ),
            r"expected 14, got -1",
            id="prints-fake-protocol-lines",
        ),
        pytest.param(
            fn('import os\nos.write(1, b\'{"phase": "done"}\\n\')\nreturn -1'),
            r"expected 14, got -1",
            id="writes-fake-protocol-to-fd-1",
        ),
        pytest.param(
            fn(
                "for _ in range(2000):\n    print('noise ' * 50)\nreturn sum([x * x for x in nums])"
            ),
            r"printed 'noise",
            id="prints-a-lot",
        ),
        pytest.param(
            fn("block = bytearray(8 << 30)\nreturn len(block)"),
            r"MemoryError",
            id="allocates-8-GiB",
        ),
    ],
)
def test_rejected_candidates(squares: Recorded, candidate: str, pattern: str):
    verdict = squares.verify(candidate)
    assert verdict.equivalent is False
    assert re.search(pattern, verdict.reason), verdict.reason
    assert verdict.mismatches and verdict.mismatches[0] == verdict.reason
    assert verdict.speedup is None and verdict.faster is False


@pytest.mark.parametrize(
    "candidate",
    [
        pytest.param(fn("import sys\nsys.exit(0)"), id="sys-exit"),
        pytest.param(fn("import os\nos._exit(0)"), id="os-exit"),
        pytest.param(fn("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"), id="sigkill"),
        pytest.param(fn("raise KeyboardInterrupt"), id="keyboard-interrupt"),
        pytest.param("import sys\nsys.exit(3)\n" + fn("return 0"), id="exit-at-load"),
    ],
)
def test_candidates_that_kill_the_harness(squares: Recorded, candidate: str):
    verdict = squares.verify(candidate)
    assert verdict.equivalent is False
    # A kill of itself is refused by the audit hook before it lands.
    assert re.search(r"before reporting|candidate tried to signal process", verdict.reason)
    assert verdict.faster is False


def test_infinite_loop_times_out(squares: Recorded):
    settings = Settings(candidate_timeout_seconds=3, timing_max_seconds=0.5, timing_max_rounds=12)
    started = time.monotonic()
    verdict = squares.verify(fn("while True:\n    pass"), settings)
    elapsed = time.monotonic() - started
    assert verdict.equivalent is False
    assert re.search(r"timed out|time limit|limit", verdict.reason), verdict.reason
    assert elapsed < 10


def test_infinite_loop_reason_names_the_cpu_limit(squares: Recorded):
    # CPU limit int(0.5) + 5 = 5 s, wall budget 0.5 + 10 s: the CPU limit (SIGXCPU) kills it.
    settings = Settings(candidate_timeout_seconds=0.5, timing_max_rounds=12)
    verdict = squares.verify(fn("while True:\n    pass"), settings)
    assert verdict.equivalent is False
    assert "CPU time limit" in verdict.reason, verdict.reason


@pytest.mark.parametrize(
    "candidate",
    [
        pytest.param(fn("return sum([x * x for x in nums])"), id="list-comprehension"),
        pytest.param(fn("return sum(x * x for x in nums)"), id="generator"),
        pytest.param(
            fn(
                "import sys\n"
                "sys.stderr.write('e' * 100000)\n"
                "sys.__stdout__.write('o' * 100000)\n"
                "return sum([x * x for x in nums])"
            ),
            id="writes-to-stderr-and-real-stdout",
        ),
    ],
)
def test_equivalent_candidates(squares: Recorded, candidate: str):
    verdict = squares.verify(candidate)
    assert verdict.equivalent is True, verdict.reason
    assert verdict.speedup is not None and verdict.speedup > 0
    assert verdict.ci95 is not None and verdict.ci95[0] <= verdict.speedup <= verdict.ci95[1]
    assert verdict.rounds >= 2
    assert re.match(r"\d+\.\d\dx \(95% CI \d+\.\d\d-\d+\.\d\d\) over \d+ rounds", verdict.reason)


def test_timing_off(squares: Recorded):
    verdict = squares.verify(fn("return sum([x * x for x in nums])"), timing=False)
    assert verdict.equivalent is True
    assert verdict.reason == "equivalent"
    assert verdict.speedup is None and verdict.rounds == 0


def test_identical_candidate_is_not_faster(squares: Recorded):
    verdict = squares.verify(ORIGINAL.lstrip("\n"))
    assert verdict.equivalent is True, verdict.reason
    assert verdict.faster is False, verdict.reason
    assert verdict.speedup is not None


@pytest.mark.parametrize(
    "candidate",
    [
        pytest.param(
            fn(
                "import time\n"
                "time.perf_counter = lambda: 0.0\n"
                "total = 0\n"
                "for i in range(len(nums)):\n"
                "    total = total + nums[i] * nums[i]\n"
                "return total"
            ),
            id="perf-counter-frozen",
        ),
        pytest.param(
            fn(
                "import time\n"
                "ticks = iter(range(10**9, 0, -1))\n"
                "time.perf_counter = lambda: float(next(ticks))\n"
                "time.perf_counter_ns = lambda: next(ticks)\n"
                "time.monotonic = time.process_time = time.perf_counter\n"
                "total = 0\n"
                "for i in range(len(nums)):\n"
                "    total = total + nums[i] * nums[i]\n"
                "return total"
            ),
            id="clocks-run-backwards",
        ),
    ],
)
def test_clock_tampering_does_not_fake_a_speedup(squares: Recorded, candidate: str):
    verdict = squares.verify(candidate)
    assert verdict.equivalent is False or verdict.faster is False, verdict.reason


def test_slowing_the_original_through_builtins_does_not_fake_a_speedup(squares: Recorded):
    candidate = fn(
        "import builtins\n"
        "if not hasattr(builtins, '_fast_range'):\n"
        "    builtins._fast_range = builtins.range\n"
        "    def slow_range(*args, _fast=builtins.range):\n"
        "        for _ in _fast(20000):\n"
        "            pass\n"
        "        return _fast(*args)\n"
        "    builtins.range = slow_range\n"
        "total = 0\n"
        "for i in builtins._fast_range(len(nums)):\n"
        "    total = total + nums[i] * nums[i]\n"
        "return total"
    )
    verdict = squares.verify(candidate)
    assert verdict.equivalent is False or verdict.faster is False, verdict.reason
    assert "builtins.range" in verdict.reason


def test_slower_candidate_is_not_faster(squares: Recorded):
    verdict = squares.verify(
        fn("import time\ntime.sleep(0.002)\nreturn sum([x * x for x in nums])")
    )
    assert verdict.equivalent is True, verdict.reason
    assert verdict.faster is False


def test_candidate_that_defines_another_name(squares: Recorded):
    verdict = squares.verify("def sum_of_squares_fast(nums):\n    return 0\n")
    assert verdict.equivalent is False
    assert "sum_of_squares" in verdict.reason


def test_verify_leaves_the_project_untouched(project_factory: Any):
    recorded = record_module(
        project_factory,
        {"squares.py": ORIGINAL, "test_squares.py": SQUARES_TESTS},
        "squares.py",
        ["sum_of_squares"],
    )["sum_of_squares"]
    before = recorded.project.snapshot()
    verdict = recorded.verify(fn("return sum([x * x for x in nums])"), timing=False)
    assert verdict.equivalent
    assert recorded.project.snapshot() == before


NONDETERMINISTIC = {
    "moody.py": """
        import random
        import time

        _SALT = time.time_ns()
        _count = 0
        _own = 0


        def stamp(x):
            # time_ns() alone (~1.7e18) would pass: relative float tolerance 1e-9 hides ~1 s.
            return random.random() * 0 + time.time_ns() % 1_000_000


        def noisy(x):
            return x + random.random()


        def salted(x):
            return x + _SALT


        def bump():
            global _count
            _count += 1


        def shared_counter(prefix):
            global _count
            _count += 1
            return f"{prefix}{_count}"


        def own_counter(prefix):
            global _own
            _own += 1
            return f"{prefix}{_own}"


        def steady(x):
            return x * 2


        _TABLE = None


        def lookup(x):
            global _TABLE
            if _TABLE is None:
                _TABLE = {i: i * i for i in range(100)}
            return _TABLE[x]
        """,
    "test_moody.py": """
        import moody


        def test_stamp():
            assert moody.stamp(1) >= 0


        def test_noisy():
            assert 1 <= moody.noisy(1) < 2


        def test_salted():
            assert moody.salted(1) > 1


        def test_shared_counter():
            moody.bump()
            assert moody.shared_counter("id-").startswith("id-")


        def test_steady():
            assert moody.steady(2) == 4


        def test_lookup():
            assert moody.lookup(3) == 9
        """,
    "test_moody_counter.py": """
        import moody


        def test_own_counter():
            first = moody.own_counter("n")
            second = moody.own_counter("n")
            assert first != second
        """,
}


@pytest.fixture(scope="module")
def moody(project_factory: Any) -> dict[str, Recorded]:
    qualnames = ["stamp", "noisy", "salted", "shared_counter", "own_counter", "steady", "lookup"]
    return record_module(project_factory, NONDETERMINISTIC, "moody.py", qualnames)


@pytest.mark.parametrize(
    ("qualname", "equivalent"),
    [
        pytest.param("stamp", False, id="time-ns"),
        pytest.param("noisy", False, id="random"),
        pytest.param("salted", False, id="import-time-constant"),
        pytest.param("shared_counter", False, id="counter-also-bumped-elsewhere"),
        pytest.param("own_counter", False, id="counter-reset-per-process"),
        pytest.param("steady", True, id="deterministic"),
        pytest.param("lookup", True, id="lazily-initialised-global-table"),
    ],
)
def test_baseline_replay_detects_nondeterminism(
    moody: dict[str, Recorded], qualname: str, equivalent: bool
):
    verdict = moody[qualname].verify(None)
    assert verdict.equivalent is equivalent, verdict.reason
    if not equivalent:
        assert verdict.reason


def test_identical_candidate_with_lazy_global(moody: dict[str, Recorded]):
    source = (
        "def lookup(x):\n"
        "    global _TABLE\n"
        "    if _TABLE is None:\n"
        "        _TABLE = {i: i * i for i in range(100)}\n"
        "    return _TABLE[x]\n"
    )
    verdict = moody["lookup"].verify(source, timing=False)
    assert verdict.equivalent is True, verdict.reason


SHAPES = {
    "shapes.py": """
        class Box:
            def __init__(self, width, height):
                self.__width = width
                self.__height = height

            def area(self):
                return self.__width * self.__height


        class Shape:
            def describe(self):
                return "shape"


        class Square(Shape):
            def describe(self):
                return "square " + super().describe()


        class Grid:
            def __init__(self, cells):
                self.cells = cells

            def total(self):
                result = 0
                for row in self.cells:
                    for cell in row:
                        result += cell
                return result

            @staticmethod
            def clamp(value, low, high):
                return max(low, min(value, high))
        """,
    "test_shapes.py": """
        from shapes import Box, Grid, Square


        def test_area():
            assert Box(2, 3).area() == 6


        def test_describe():
            assert Square().describe() == "square shape"


        def test_grid():
            assert Grid([[1, 2], [3, 4]]).total() == 10


        def test_clamp():
            assert Grid.clamp(5, 0, 3) == 3
            assert Grid.clamp(-1, 0, 3) == 0
        """,
}


@pytest.fixture(scope="module")
def shapes(project_factory: Any) -> dict[str, Recorded]:
    qualnames = ["Box.area", "Square.describe", "Grid.total", "Grid.clamp"]
    return record_module(project_factory, SHAPES, "shapes.py", qualnames)


@pytest.mark.parametrize(
    ("qualname", "candidate", "equivalent"),
    [
        pytest.param(
            "Grid.total",
            "def total(self):\n    return sum(sum(row) for row in self.cells)\n",
            True,
            id="method",
        ),
        pytest.param(
            "Grid.total", "def total(self):\n    return len(self.cells)\n", False, id="method-wrong"
        ),
        pytest.param(
            "Grid.clamp",
            "@staticmethod\ndef clamp(value, low, high):\n"
            "    return low if value < low else high if value > high else value\n",
            True,
            id="staticmethod",
        ),
        pytest.param(
            "Grid.clamp",
            "@staticmethod\ndef clamp(value, low, high):\n    return min(value, high)\n",
            False,
            id="staticmethod-wrong",
        ),
        pytest.param(
            "Box.area",
            "def area(self):\n    return self.__width * self.__height\n",
            True,
            id="name-mangled-attributes",
        ),
        pytest.param(
            "Square.describe",
            "def describe(self):\n    return 'square ' + super().describe()\n",
            True,
            id="zero-argument-super",
        ),
    ],
)
def test_method_candidates(
    shapes: dict[str, Recorded], qualname: str, candidate: str, equivalent: bool
):
    verdict = shapes[qualname].verify(candidate, timing=False)
    assert verdict.equivalent is equivalent, verdict.reason


@pytest.mark.parametrize(
    "qualname",
    [pytest.param(q, id=q) for q in ["Box.area", "Square.describe", "Grid.total", "Grid.clamp"]],
)
def test_method_baseline_replay(shapes: dict[str, Recorded], qualname: str):
    verdict = shapes[qualname].verify(None)
    assert verdict.equivalent, verdict.reason


@pytest.mark.parametrize(
    ("timing", "gated"),
    [pytest.param(True, 1, id="timed-takes-the-lock"), pytest.param(False, 0, id="no-timing")],
)
def test_only_timing_rounds_take_the_compute_lock(
    squares: Recorded, monkeypatch: pytest.MonkeyPatch, timing: bool, gated: int
):
    import contextlib

    from speedsmith import compute

    entered: list[bool] = []
    real = compute.exclusive

    @contextlib.contextmanager
    def spy(*, priority: bool = False):
        entered.append(priority)
        with real(priority=priority):
            yield

    monkeypatch.setattr(compute, "exclusive", spy)
    verdict = squares.verify(fn("return sum([x * x for x in nums])"), timing=timing)
    assert verdict.equivalent is True
    assert entered == [True] * gated
    assert (verdict.rounds > 0) is timing


# A stand-in for cirron where perf counters are not readable (as on CI): it counts the Python
# line events of the measured code, so fewer loop iterations mean fewer "instructions".
FAKE_CIRRON = """
import sys


class _Counters:
    instruction_count = 0


class Collector:
    def __enter__(self):
        self.counters = _Counters()

        def tracer(frame, event, arg):
            if frame.f_code.co_name == "sum_of_squares":
                self.counters.instruction_count += 1
            return tracer

        sys.settrace(tracer)
        return self

    def __exit__(self, *exc):
        sys.settrace(None)
"""


@pytest.fixture(scope="module")
def counted(project_factory: Any) -> Iterator[Recorded]:
    files = {"squares.py": ORIGINAL, "test_squares.py": SQUARES_TESTS, "cirron.py": FAKE_CIRRON}
    yield record_module(project_factory, files, "squares.py", ["sum_of_squares"])["sum_of_squares"]


@pytest.mark.parametrize(
    ("readable", "expect_ratio"),
    [
        pytest.param(True, True, id="counters-readable-ratio-reported"),
        pytest.param(False, False, id="not-readable-silent-fallback"),
    ],
)
def test_instruction_ratio_is_a_second_signal(
    counted: Recorded, monkeypatch: pytest.MonkeyPatch, readable: bool, expect_ratio: bool
):
    from speedsmith.verify import verifier

    monkeypatch.setattr(verifier, "counters_readable", lambda python: readable)
    verdict = counted.verify(fn("return sum([x * x for x in nums])"))
    assert verdict.equivalent is True, verdict.reason
    if expect_ratio:
        assert verdict.instructions_ratio is not None and verdict.instructions_ratio > 1.5
        assert "fewer instructions" in verdict.reason
    else:
        assert verdict.instructions_ratio is None
        assert "instructions" not in verdict.reason


def test_counters_are_probed_in_a_child_and_fall_back_quietly(tmp_path: Path):
    from speedsmith.verify.verifier import counters_readable

    missing = tmp_path / "no-python"
    assert counters_readable(str(missing)) is False
    assert isinstance(counters_readable(sys.executable), bool)


TEXT = """
def shout(s: str, times: int = 1) -> str:
    return (s.upper() + "!") * times
"""

TEXT_TESTS = """
from text import shout


def test_shout():
    assert shout("a") == "A!"
    assert shout("ab", 2) == "AB!AB!"
"""


@pytest.mark.parametrize(
    ("candidate", "equivalent"),
    [
        pytest.param(TEXT.lstrip("\n"), True, id="identical"),
        pytest.param(
            "def shout(s: str, times: int = 1) -> str:\n    return (s.upper() + '!') * times\n",
            True,
            id="same-behaviour",
        ),
        pytest.param(
            "def shout(s: str, times: int = 1) -> str:\n"
            "    return (s.upper() + '!') * abs(times)\n",
            False,
            id="differs-on-generated-negative-times",
        ),
    ],
)
def test_text_parameters_get_generated_inputs(
    project_factory: Any, candidate: str, equivalent: bool
):
    """Hypothesis draws ``str`` inputs from the hints: resolving its text strategies builds its
    Unicode tables on disk (``.hypothesis/`` in the scratch folder), which is nobody's side
    effect. It was blamed on the candidate: every ``str``-annotated function was rejected,
    the original itself included."""
    files = {"text.py": TEXT, "test_text.py": TEXT_TESTS}
    recorded = record_module(project_factory, files, "text.py", ["shout"])["shout"]
    verdict = recorded.verify(candidate, timing=False)
    assert verdict.equivalent is equivalent, verdict.reason
    if not equivalent:
        assert "generated input" in verdict.reason
