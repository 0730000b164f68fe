"""Real-file shapes, end to end through the children: the capture plugin records a copied
fixture project's calls, the harness replays them on the original and on candidates, and the
plugin's substitute mode runs the project's tests against a candidate.

Each case records a known number of calls, the original replays as equivalent to its own
recording, a correct candidate is equivalent and a wrong one is not, and with the candidate
substituted the project's tests pass (and called it) or fail (wrong candidate).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from realproj_support import copy_project, record, replay, substitute


@dataclass(frozen=True)
class Case:
    project: str
    module: str
    qualname: str
    calls: int
    good: str
    wrong: str
    args: tuple[str, ...] = ()
    doctests: bool = False
    reached: tuple[str, ...] = ()
    """Test node ids that must be among those that called the target."""
    gate_calls: int | None = None
    """How many times the substituted candidate must be called (None: at least once)."""


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


AREA_GOOD = "def area(width, height):\n    return width * height\n"
AREA_WRONG = "def area(width, height):\n    return width + height\n"


def area_case(test_file: str, calls: int) -> Case:
    return Case("reexports", "geometry.core", "area", calls, AREA_GOOD, AREA_WRONG, (test_file,))


CASES = [
    pytest.param(
        Case(
            "initpkg",
            "ordinals",
            "ordinal",
            7,
            src("""
                def ordinal(number):
                    if not isinstance(number, int):
                        raise TypeError(f"not an integer: {number!r}")
                    n = abs(number)
                    if 11 <= n % 100 <= 13:
                        return "th"
                    return ("th", "st", "nd", "rd")[n % 10] if n % 10 < 4 else "th"
            """),
            "def ordinal(number):\n    return 'th'\n",
            reached=("tests/test_ordinals.py::test_through_the_module_global",),
        ),
        id="function-in-package-init",
    ),
    pytest.param(area_case("tests/test_star.py", 2), id="star-reexport"),
    pytest.param(area_case("tests/test_api.py", 1), id="from-import-as-reexport"),
    pytest.param(area_case("tests/test_aliases.py", 1), id="alias"),
    pytest.param(area_case("tests/test_shapes.py", 2), id="staticmethod-copy-in-class"),
    pytest.param(area_case("tests/test_logged.py", 1), id="functools-wraps-closure"),
    pytest.param(area_case("tests/test_measure.py", 2), id="default-argument-value"),
    pytest.param(
        Case(
            "doctests",
            "units.human",
            "human_size",
            6,
            src("""
                def human_size(count, ndigits=1):
                    size, unit = float(count), 0
                    last = len(_UNITS) - 1
                    while size >= 1024 and unit < last:
                        size, unit = size / 1024, unit + 1
                    return f"{round(size, ndigits)}{_UNITS[unit]}"
            """),
            src("""
                def human_size(count, ndigits=1):
                    size, unit = float(count), 0
                    while size >= 1000 and unit < 4:
                        size, unit = size / 1000, unit + 1
                    return f"{round(size, ndigits)}{_UNITS[unit]}"
            """),
            ("--doctest-modules", "units/human.py", "tests"),
            doctests=True,
            reached=(
                "units/human.py::units.human",
                "units/human.py::units.human.human_size",
                "units/human.py::units.human.describe",
            ),
            gate_calls=6,  # the original's docstring still runs: the candidate has none
        ),
        id="doctest-only",
    ),
    pytest.param(
        Case(
            "chunked",
            "chunks.chunklist",
            "ChunkList.insert",
            4,
            src("""
                def insert(self, index, item):
                    where = self._locate(index)
                    self.chunks[where[0]].insert(where[1], item)
                    self._split(where[0])
            """),
            src("""
                def insert(self, index, item):
                    position, offset = self._locate(index)
                    self.chunks[position].insert(offset, item)
            """),
        ),
        id="method-of-list-subclass-with-state",
    ),
    pytest.param(
        Case(
            "callables",
            "grouping.core",
            "bucketize",
            3,
            src("""
                def bucketize(items, key):
                    buckets = {}
                    for item in items:
                        buckets.setdefault(key(item), []).append(item)
                    return buckets
            """),
            src("""
                def bucketize(items, key):
                    buckets = {}
                    for item in items:
                        buckets.setdefault(key(item), []).insert(0, item)
                    return buckets
            """),
        ),
        id="lambda-closure-and-test-module-function-arguments",
    ),
    pytest.param(
        Case(
            "generators",
            "streams.windows",
            "pairs",
            4,
            src("""
                def pairs(items):
                    iterator = iter(items)
                    for previous in iterator:
                        for item in iterator:
                            yield (previous, item)
                            previous = item
            """),
            src("""
                def pairs(items):
                    items = list(items)
                    for index in range(len(items)):
                        yield (items[index], items[index + 1] if index + 1 < len(items) else None)
            """),
        ),
        id="generator",
    ),
    pytest.param(
        Case(
            "generators",
            "streams.windows",
            "numbers",
            1,
            "def numbers(text):\n    return (int(word) for word in text.split())\n",
            src("""
                def numbers(text):
                    for word in text.split():
                        if word.isdigit():
                            yield int(word)
            """),
        ),
        id="generator-raising-midway",
    ),
    pytest.param(
        Case(
            "generators",
            "streams.windows",
            "countdown",
            1,
            src("""
                def countdown(start):
                    for value in range(start, 0, -1):
                        print("at", value)
                        yield value
            """),
            src("""
                def countdown(start):
                    for value in range(start, 0, -1):
                        print("at", value, end=";")
                        yield value
            """),
        ),
        id="generator-printing",
    ),
    pytest.param(
        Case(
            "decorated",
            "tools.text",
            "slugify",
            3,
            src("""
                @traced
                def slugify(text, *, sep="-"):
                    if not text:
                        raise ValueError("empty text")
                    words = ("".join(filter(str.isalnum, w)) for w in text.lower().split())
                    return sep.join(w for w in words if w)
            """),
            src("""
                @traced
                def slugify(text, *, sep="-"):
                    words = ("".join(filter(str.isalnum, w)) for w in text.split())
                    return sep.join(w for w in words if w)
            """),
        ),
        id="decorated-keyword-only-raises",
    ),
    pytest.param(
        Case(
            "decorated",
            "tools.text",
            "join_all",
            2,
            src("""
                def join_all(*parts, sep=" ", **options):
                    text = sep.join(map(str, parts))
                    return text.upper() if options.get("upper") else text
            """),
            src("""
                def join_all(*parts, sep=" ", **options):
                    return sep.join(map(str, parts))
            """),
        ),
        id="star-args-and-kwargs",
    ),
    pytest.param(
        Case(
            "decorated",
            "tools.text",
            "fib",
            1,
            src("""
                @functools.lru_cache(maxsize=None)
                def fib(n):
                    return n if n <= 1 else fib(n - 2) + fib(n - 1)
            """),
            src("""
                @functools.lru_cache(maxsize=None)
                def fib(n):
                    return n if n < 2 else fib(n - 1) + fib(n - 1)
            """),
        ),
        id="lru-cache-wrapper",
    ),
    pytest.param(
        Case(
            "methods",
            "storage.box",
            "Box.volume",
            4,
            src("""
                @staticmethod
                def volume(width, height, depth):
                    return depth * height * width
            """),
            src("""
                @staticmethod
                def volume(width, height, depth):
                    return width * height
            """),
        ),
        id="staticmethod",
    ),
    pytest.param(
        Case(
            "methods",
            "storage.box",
            "Box.cube",
            2,
            src("""
                @classmethod
                def cube(cls, side):
                    return cls(*(side,) * 3)
            """),
            src("""
                @classmethod
                def cube(cls, side):
                    return Box(side, side, side)
            """),
        ),
        id="classmethod-inherited",
    ),
    pytest.param(
        Case(
            "methods",
            "storage.box",
            "Box.size",
            2,
            src("""
                @property
                def size(self):
                    return self.width * self.height * self.depth
            """),
            src("""
                @property
                def size(self):
                    return self.width * self.height
            """),
        ),
        id="property",
    ),
    pytest.param(
        Case(
            "methods",
            "storage.box",
            "Box.surface",
            2,
            src("""
                @functools.cached_property
                def surface(self):
                    return 2 * (self.width * (self.height + self.depth) + self.height * self.depth)
            """),
            src("""
                @functools.cached_property
                def surface(self):
                    return self.width * self.height + self.height * self.depth
            """),
        ),
        id="cached-property",
    ),
    pytest.param(
        Case(
            "methods",
            "storage.box",
            "Shelf.Slot.fits",
            2,
            "def fits(self, box):\n    return not box.width > self.width\n",
            "def fits(self, box):\n    return box.width < self.width - 1\n",
        ),
        id="nested-class-method",
    ),
    pytest.param(
        Case(
            "typing_only",
            "inventory.stock",
            "total_value",
            2,
            src("""
                def total_value(items: Iterable[Item]) -> int:
                    return sum(item.price * item.quantity for item in items)
            """),
            src("""
                def total_value(items: Iterable[Item]) -> int:
                    return sum(item.price for item in items)
            """),
        ),
        id="type-checking-only-annotations",
    ),
    pytest.param(
        Case(
            "sentinels",
            "opts.core",
            "lookup",
            4,
            src("""
                def lookup(mapping, key, default=_MISSING):
                    try:
                        return mapping[key]
                    except KeyError:
                        if default is _MISSING:
                            raise
                        return default
            """),
            "def lookup(mapping, key, default=_MISSING):\n    return mapping.get(key, default)\n",
        ),
        id="sentinel-object-argument",
    ),
    pytest.param(
        Case(
            "sentinels",
            "opts.core",
            "pad",
            2,
            src("""
                def pad(items, size, fill=_UNSET):
                    items = list(items)
                    return items if fill is _UNSET else items + [fill] * (size - len(items))
            """),
            src("""
                def pad(items, size, fill=_UNSET):
                    return list(items) + [fill] * (size - len(items))
            """),
        ),
        id="unpicklable-sentinel-argument",
    ),
    pytest.param(
        Case(
            "defaults",
            "memo.bucket",
            "collect",
            3,
            src("""
                def collect(item, bucket=[]):
                    bucket.append(item)
                    return bucket[:]
            """),
            src("""
                def collect(item, bucket=None):
                    bucket = [] if bucket is None else bucket
                    bucket.append(item)
                    return list(bucket)
            """),
        ),
        id="mutable-default",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_record_replay_and_substitute(case: Case, tmp_path: Path):
    root = copy_project(case.project, tmp_path)
    args = list(case.args)
    recording = record(root, case.module, case.qualname, args, doctests=case.doctests)
    assert recording.data["error"] == "", recording.output
    assert recording.data["skip_reasons"] == [], recording.output
    assert len(recording.calls) == case.calls, recording.output
    assert all(outcome == "passed" for outcome in recording.data["tests"].values())
    assert set(case.reached) <= set(recording.data["reached"])

    def verdict(candidate: str | None) -> dict[str, object]:
        return replay(root, case.module, case.qualname, recording.path, candidate)

    baseline = verdict(None)
    assert baseline.get("equivalent") is True, baseline
    good = verdict(case.good)
    assert good.get("equivalent") is True, good
    wrong = verdict(case.wrong)
    assert wrong.get("equivalent") is False, wrong

    passing = substitute(root, case.module, case.qualname, case.good, args, doctests=case.doctests)
    assert passing.passed, passing.output
    assert passing.calls > 0
    assert case.gate_calls in (None, passing.calls)
    failing = substitute(root, case.module, case.qualname, case.wrong, args, doctests=case.doctests)
    assert not failing.passed, failing.output
    assert failing.calls > 0


def test_generator_items_and_end_are_recorded(tmp_path: Path):
    """How many items each test took, and whether it ran the generator to its end."""
    root = copy_project("generators", tmp_path)
    recording = record(root, "streams.windows", "pairs", [])
    shapes = {
        call["test"].rpartition("::")[2]: (call["iterator"], call["exhausted"])
        for call in recording.calls
    }
    assert shapes == {
        "test_all_pairs": (True, True),
        "test_empty": (True, True),
        "test_first_pair_only": (True, False),
        "test_some_pairs": (True, False),
    }
    numbers = record(root, "streams.windows", "numbers", []).calls
    assert [(c["iter_exc_type"], c["iter_exc_message"]) for c in numbers] == [
        ("builtins.ValueError", "invalid literal for int() with base 10: 'x'")
    ]


def test_list_instead_of_generator_is_not_equivalent(tmp_path: Path):
    root = copy_project("generators", tmp_path)
    recording = record(root, "streams.windows", "pairs", [])
    eager = "def pairs(items):\n    items = list(items)\n    return list(zip(items, items[1:]))\n"
    verdict = replay(root, "streams.windows", "pairs", recording.path, eager)
    assert verdict["equivalent"] is False
    assert any("expected an iterator" in m for m in verdict["mismatches"]), verdict


def test_receiver_that_cannot_be_snapshotted_is_skipped_with_its_reason(tmp_path: Path):
    root = copy_project("locked", tmp_path)
    recording = record(root, "counters.counter", "Counter.add", [])
    reason = "cannot snapshot `self` (Counter): TypeError: cannot pickle '_thread.lock' object"
    assert recording.calls == []
    assert recording.data["skipped"] == 2
    assert recording.data["skip_reasons"] == [reason]
    assert (
        recording.data["skipped_calls"]
        == [{"test": "tests/test_counter.py::test_add", "reason": reason}] * 2
    )
    assert recording.data["error"] == ""
    assert recording.data["reached"] == ["tests/test_counter.py::test_add"]


def test_async_target_is_refused_without_crashing(tmp_path: Path):
    root = copy_project("awaiting", tmp_path)
    recording = record(root, "net.fetch", "fetch", [])
    assert recording.calls == []
    assert "async def" in recording.data["error"]
    assert all(outcome == "passed" for outcome in recording.data["tests"].values())
    verdict = replay(root, "net.fetch", "fetch", recording.path, None)
    assert verdict["phase"] == "error"
    assert "async def" in str(verdict["error"])


def test_module_name_of_package_init_is_accepted_either_way(tmp_path: Path):
    root = copy_project("initpkg", tmp_path)
    recording = record(root, "ordinals.__init__", "ordinal", [])
    assert len(recording.calls) == 7
    assert recording.data["error"] == ""


def test_the_imported_module_must_be_the_edited_file(tmp_path: Path):
    """An installed copy of the package first on the path is not the file being optimised."""
    root = copy_project("initpkg", tmp_path)
    here = {"module_file": str(root / "ordinals" / "__init__.py")}
    assert len(record(root, "ordinals", "ordinal", [], extra=here).calls) == 7
    other = tmp_path / "site-packages" / "ordinals" / "__init__.py"
    elsewhere = {"module_file": str(other)}
    recording = record(root, "ordinals", "ordinal", [], extra=elsewhere)
    assert recording.calls == []
    assert recording.data["error"] == (
        f"the tests import ordinals from {root / 'ordinals' / '__init__.py'}, not from {other}"
    )
    good = "def ordinal(number):\n    return 'th'\n"
    gate = substitute(root, "ordinals", "ordinal", good, [], extra=elsewhere)
    assert gate.calls == 0
