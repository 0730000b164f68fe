"""Recording a workload from a tiny project's pytest tests, and running them with a candidate.

Every case runs the real pytest in a subprocess inside a throw-away project (see conftest).
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from speedsmith.workload import (
    Workload,
    module_location,
    project_root,
    record_workload,
    run_tests_with_candidate,
)

TIMEOUT = 60.0

pytestmark = pytest.mark.usefixtures("no_plugin_autoload")


@dataclass(frozen=True)
class Call:
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    after_args: tuple[Any, ...]
    after_kwargs: dict[str, Any]
    result: Any
    exc_type: str | None
    exc_message: str | None
    seconds: float
    test: str


@contextmanager
def importable(folder: Path) -> Iterator[None]:
    """Let pickle import the project's modules, then forget them again."""
    before = set(sys.modules)
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        for name in set(sys.modules) - before:
            module_file = getattr(sys.modules[name], "__file__", None) or ""
            if module_file.startswith(str(folder)):
                del sys.modules[name]


def load_calls(workload: Workload, module_file: Path) -> list[Call]:
    folder, _module = module_location(module_file)
    with importable(folder), workload.path.open("rb") as handle:
        data = pickle.load(handle)
        calls = []
        for raw in data["calls"]:
            args, kwargs = pickle.loads(raw["args"])
            after_args, after_kwargs = pickle.loads(raw["after"])
            result = None if raw["result"] is None else pickle.loads(raw["result"])
            calls.append(
                Call(
                    args,
                    kwargs,
                    after_args,
                    after_kwargs,
                    result,
                    raw["exc_type"],
                    raw["exc_message"],
                    raw["seconds"],
                    raw["test"],
                )
            )
    return calls


def relative(ids: tuple[str, ...], root: Path) -> tuple[str, ...]:
    """Test ids as pytest prints them (the workload keeps them absolute)."""
    prefix = str(root.resolve()) + "/"
    assert all(i.startswith(prefix) for i in ids), ids
    return tuple(i[len(prefix) :] for i in ids)


def record(project: Any, module: str, qualname: str, out: Path, **kwargs: Any) -> Workload:
    out.mkdir(exist_ok=True)
    return record_workload(project.path(module), qualname, out_dir=out, timeout=TIMEOUT, **kwargs)


@dataclass(frozen=True)
class Case:
    files: dict[str, str]
    module: str
    qualname: str
    calls: int
    reached: tuple[str, ...]
    failed: tuple[str, ...] = ()
    check: Callable[[list[Call]], None] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    skipped: int = 0
    truncated: bool = False


def check_plain(calls: list[Call]) -> None:
    assert [(c.args, c.kwargs) for c in calls] == [((2,), {}), (("ab",), {}), ((), {"x": [1]})]
    assert [c.result for c in calls] == [4, "abab", [1, 1]]
    assert all(c.exc_type is None and c.exc_message is None for c in calls)
    assert all(c.after_args == c.args and c.after_kwargs == c.kwargs for c in calls)
    assert [c.test for c in calls] == [
        "test_plain.py::test_numbers_and_text",
        "test_plain.py::test_numbers_and_text",
        "test_plain.py::test_keyword",
    ]
    assert all(c.seconds >= 0 for c in calls)


def check_raises(calls: list[Call]) -> None:
    by_arg = {c.args[0]: c for c in calls}
    assert by_arg["12"].result == 12 and by_arg["12"].exc_type is None
    assert by_arg["x1"].exc_type == "builtins.ValueError"
    assert by_arg["x1"].exc_message == "not a number: 'x1'"
    assert by_arg["x1"].result is None


def check_mutation(calls: list[Call]) -> None:
    (call,) = calls
    assert call.args == ([1], 2)
    assert call.after_args == ([1, 2], 2)
    assert call.result == 2


def check_method(calls: list[Call]) -> None:
    (call,) = calls
    instance, amount = call.args
    assert type(instance).__name__ == "Account" and instance.balance == 10
    assert amount == 5
    assert call.result == 15


def check_static(calls: list[Call]) -> None:
    assert [c.args for c in calls] == [(3,), (4,)]
    assert [c.result for c in calls] == [9, 16]


def check_classmethod(calls: list[Call]) -> None:
    (call,) = calls
    owner, value = call.args
    assert isinstance(owner, type) and owner.__name__ == "Temperature"
    assert value == 212
    assert type(call.result).__name__ == "Temperature"


def check_fib(calls: list[Call]) -> None:
    assert [(c.args, c.result) for c in calls] == [((10,), 55)]


def check_package(calls: list[Call]) -> None:
    assert [c.result for c in calls] == ["HELLO"]


PLAIN = {
    "plain.py": """
        def double(x):
            return x * 2
        """,
    "test_plain.py": """
        from plain import double

        def test_numbers_and_text():
            assert double(2) == 4
            assert double("ab") == "abab"

        def test_keyword():
            assert double(x=[1]) == [1, 1]

        def test_unrelated():
            assert 1 + 1 == 2
        """,
}

CASES = [
    pytest.param(
        Case(
            PLAIN,
            "plain.py",
            "double",
            3,
            ("test_plain.py::test_keyword", "test_plain.py::test_numbers_and_text"),
            check=check_plain,
        ),
        id="plain-function",
    ),
    pytest.param(
        Case(
            {
                "parse.py": """
                    def parse(text):
                        if not text.isdigit():
                            raise ValueError(f"not a number: {text!r}")
                        return int(text)
                    """,
                "test_parse.py": """
                    import pytest
                    from parse import parse

                    def test_ok():
                        assert parse("12") == 12

                    def test_bad():
                        with pytest.raises(ValueError):
                            parse("x1")
                    """,
            },
            "parse.py",
            "parse",
            2,
            ("test_parse.py::test_bad", "test_parse.py::test_ok"),
            check=check_raises,
        ),
        id="raises",
    ),
    pytest.param(
        Case(
            {
                "push.py": """
                    def push(items, value):
                        items.append(value)
                        return len(items)
                    """,
                "test_push.py": """
                    from push import push

                    def test_push():
                        items = [1]
                        assert push(items, 2) == 2
                        assert items == [1, 2]
                    """,
            },
            "push.py",
            "push",
            1,
            ("test_push.py::test_push",),
            check=check_mutation,
        ),
        id="argument-mutation",
    ),
    pytest.param(
        Case(
            {
                "bank.py": """
                    class Account:
                        def __init__(self, balance):
                            self.balance = balance

                        def preview(self, amount):
                            return self.balance + amount
                    """,
                "test_bank.py": """
                    from bank import Account

                    def test_preview():
                        assert Account(10).preview(5) == 15
                    """,
            },
            "bank.py",
            "Account.preview",
            1,
            ("test_bank.py::test_preview",),
            check=check_method,
        ),
        id="method",
    ),
    pytest.param(
        Case(
            {
                "util.py": """
                    class MathUtil:
                        @staticmethod
                        def square(x):
                            return x * x
                    """,
                "test_util.py": """
                    from util import MathUtil

                    def test_square():
                        assert MathUtil.square(3) == 9
                        assert MathUtil().square(4) == 16
                    """,
            },
            "util.py",
            "MathUtil.square",
            2,
            ("test_util.py::test_square",),
            check=check_static,
        ),
        id="staticmethod",
    ),
    pytest.param(
        Case(
            {
                "temps.py": """
                    class Temperature:
                        def __init__(self, celsius):
                            self.celsius = celsius

                        @classmethod
                        def from_fahrenheit(cls, value):
                            return cls(round((value - 32) * 5 / 9, 2))
                    """,
                "test_temps.py": """
                    from temps import Temperature

                    def test_boiling():
                        assert Temperature.from_fahrenheit(212).celsius == 100
                    """,
            },
            "temps.py",
            "Temperature.from_fahrenheit",
            1,
            ("test_temps.py::test_boiling",),
            check=check_classmethod,
        ),
        id="classmethod",
    ),
    pytest.param(
        Case(
            {
                "fib.py": """
                    def fib(n):
                        return n if n < 2 else fib(n - 1) + fib(n - 2)
                    """,
                "test_fib.py": """
                    from fib import fib

                    def test_fib():
                        assert fib(10) == 55
                    """,
            },
            "fib.py",
            "fib",
            1,
            ("test_fib.py::test_fib",),
            check=check_fib,
        ),
        id="recursion-outermost-only",
    ),
    pytest.param(
        Case(
            {
                "lonely.py": """
                    def used(x):
                        return x

                    def unused(x):
                        return x
                    """,
                "test_lonely.py": """
                    from lonely import used

                    def test_used():
                        assert used(1) == 1
                    """,
            },
            "lonely.py",
            "unused",
            0,
            (),
        ),
        id="never-called",
    ),
    pytest.param(
        Case(
            {
                "pkg/__init__.py": "",
                "pkg/text.py": """
                    def shout(word):
                        return word.upper()
                    """,
                "tests/test_text.py": """
                    from pkg.text import shout

                    def test_shout():
                        assert shout("hello") == "HELLO"
                    """,
            },
            "pkg/text.py",
            "shout",
            1,
            ("tests/test_text.py::test_shout",),
            check=check_package,
        ),
        id="package-module",
    ),
    pytest.param(
        Case(
            {
                "src/pkg/__init__.py": "",
                "src/pkg/text.py": """
                    def shout(word):
                        return word.upper()
                    """,
                "tests/test_text.py": """
                    from pkg.text import shout

                    def test_shout():
                        assert shout("hello") == "HELLO"
                    """,
            },
            "src/pkg/text.py",
            "shout",
            1,
            ("tests/test_text.py::test_shout",),
            check=check_package,
        ),
        id="src-layout",
    ),
    pytest.param(
        Case(
            {
                "calc.py": """
                    def add(a, b):
                        return a + b
                    """,
                "test_calc.py": """
                    from calc import add

                    def test_right():
                        assert add(1, 2) == 3

                    def test_wrong():
                        assert add(2, 2) == 5

                    def test_error_after_call():
                        add(0, 0)
                        raise RuntimeError("boom")
                    """,
            },
            "calc.py",
            "add",
            3,
            (
                "test_calc.py::test_error_after_call",
                "test_calc.py::test_right",
                "test_calc.py::test_wrong",
            ),
            failed=("test_calc.py::test_error_after_call", "test_calc.py::test_wrong"),
        ),
        id="failing-tests",
    ),
    pytest.param(
        Case(
            {
                "helper.py": """
                    def inc(x):
                        return x + 1
                    """,
                "conftest.py": """
                    import pytest
                    import helper

                    @pytest.fixture
                    def two():
                        return helper.inc(1)
                    """,
                "test_helper.py": """
                    def test_fixture(two):
                        assert two == 2
                    """,
            },
            "helper.py",
            "inc",
            1,
            ("test_helper.py::test_fixture",),
        ),
        id="called-from-fixture-via-module-attribute",
    ),
    pytest.param(
        Case(
            {
                "loop.py": """
                    def inc(x):
                        return x + 1
                    """,
                "test_loop.py": """
                    from loop import inc

                    def test_many():
                        for i in range(5):
                            assert inc(i) == i + 1
                    """,
            },
            "loop.py",
            "inc",
            3,
            ("test_loop.py::test_many",),
            options={"max_calls": 3},
            truncated=True,
        ),
        id="max-calls-truncates",
    ),
    pytest.param(
        Case(
            {
                "apply.py": """
                    def apply(fn, x):
                        return fn(x)
                    """,
                "test_apply.py": """
                    import threading

                    from apply import apply

                    def test_lambda():
                        assert apply(lambda v: v * 3, 2) == 6

                    def test_builtin():
                        assert apply(abs, -2) == 2

                    def test_lock():
                        assert apply(lambda lock: lock.locked(), threading.Lock()) is False
                    """,
            },
            "apply.py",
            "apply",
            2,
            (
                "test_apply.py::test_builtin",
                "test_apply.py::test_lambda",
                "test_apply.py::test_lock",
            ),
            skipped=1,
        ),
        id="lambdas-recorded-unpicklable-arguments-skipped",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_record_workload(make_project: Any, tmp_path: Path, case: Case):
    project = make_project(case.files)
    before = project.snapshot()
    workload = record(project, case.module, case.qualname, tmp_path / "out", **case.options)
    assert workload.error == "", workload.pytest_output
    assert workload.calls == case.calls, workload.pytest_output
    assert relative(workload.reached_tests, project.root) == case.reached
    assert relative(workload.failed_tests, project.root) == case.failed
    assert workload.skipped == case.skipped
    assert workload.truncated is case.truncated
    assert workload.path.exists()
    assert (workload.original_seconds > 0) is (case.calls > 0)
    calls = load_calls(workload, project.path(case.module))
    assert len(calls) == case.calls
    assert {c.test for c in calls} <= set(case.reached)
    if case.check is not None:
        case.check(calls)
    # Recording leaves the project untouched: no cache, no bytecode, same files and mtimes.
    assert project.snapshot() == before


def test_record_unknown_qualname_reports_an_error(make_project: Any, tmp_path: Path):
    project = make_project(PLAIN)
    workload = record(project, "plain.py", "triple", tmp_path / "out")
    assert workload.calls == 0
    assert "triple" in workload.error


def test_record_module_that_fails_to_import(make_project: Any, tmp_path: Path):
    project = make_project(
        {
            "broken.py": "import not_a_module_anywhere\n\ndef f(x):\n    return x\n",
            "test_broken.py": "def test_nothing():\n    assert True\n",
        }
    )
    workload = record(project, "broken.py", "f", tmp_path / "out")
    assert workload.calls == 0
    assert "not_a_module_anywhere" in workload.error


def test_record_timeout(make_project: Any, tmp_path: Path):
    project = make_project(
        {
            "slow.py": "def f(x):\n    return x\n",
            "test_slow.py": "import time\n\ndef test_slow():\n    time.sleep(30)\n",
        }
    )
    (tmp_path / "out").mkdir()
    workload = record_workload(project.path("slow.py"), "f", out_dir=tmp_path / "out", timeout=1)
    assert workload.calls == 0
    assert "longer than" in workload.run_error


def test_record_call_through_name_imported_by_conftest(make_project: Any, tmp_path: Path):
    project = make_project(
        {
            "helper.py": "def inc(x):\n    return x + 1\n",
            "conftest.py": """
                import pytest
                from helper import inc

                @pytest.fixture
                def two():
                    return inc(1)
                """,
            "test_helper.py": "def test_fixture(two):\n    assert two == 2\n",
        }
    )
    workload = record(project, "helper.py", "inc", tmp_path / "out")
    assert workload.calls == 1


@pytest.mark.parametrize(
    "files",
    [
        pytest.param(PLAIN, id="flat"),
        pytest.param(
            {
                "pkg/__init__.py": "",
                "pkg/plain.py": PLAIN["plain.py"],
                "tests/test_plain.py": PLAIN["test_plain.py"].replace(
                    "from plain import", "from pkg.plain import"
                ),
            },
            id="package",
        ),
    ],
)
def test_project_root_and_module_location(make_project: Any, files: dict[str, str]):
    project = make_project(files)
    module = project.path("plain.py" if "plain.py" in files else "pkg/plain.py")
    assert project_root(module) == project.root.resolve()
    folder, name = module_location(module)
    assert folder == project.root.resolve()
    assert name == ("plain" if "plain.py" in files else "pkg.plain")


DOUBLE_TESTS = ("test_plain.py::test_numbers_and_text", "test_plain.py::test_keyword")


@pytest.mark.parametrize(
    ("candidate", "tests", "passes"),
    [
        pytest.param("def double(x):\n    return x + x\n", DOUBLE_TESTS, True, id="correct"),
        pytest.param("def double(x):\n    return x * 3\n", DOUBLE_TESTS, False, id="wrong"),
        pytest.param(
            "def double(x):\n    return x + x if not isinstance(x, list) else x\n",
            DOUBLE_TESTS[:1],
            True,
            id="wrong-only-where-not-run",
        ),
        pytest.param(
            "def double(x):\n    return x + x if not isinstance(x, list) else x\n",
            DOUBLE_TESTS,
            False,
            id="wrong-for-one-test",
        ),
        pytest.param("def double(x):\n    raise SystemExit(0)\n", DOUBLE_TESTS, False, id="exits"),
    ],
)
def test_run_tests_with_candidate(
    make_project: Any, candidate: str, tests: tuple[str, ...], passes: bool
):
    project = make_project(PLAIN)
    before = project.snapshot()
    passed, output = run_tests_with_candidate(
        project.path("plain.py"), "double", candidate, tests, timeout=TIMEOUT
    )
    assert passed is passes, output
    assert project.snapshot() == before


@pytest.mark.parametrize(
    "candidate",
    [
        pytest.param("def double(x):\n    return (\n", id="syntax-error"),
        pytest.param("def other(x):\n    return x\n", id="defines-another-name"),
        pytest.param(
            "import not_a_module_anywhere\n\ndef double(x):\n    return x * 2\n", id="bad-import"
        ),
    ],
)
def test_run_tests_with_candidate_that_does_not_load(make_project: Any, candidate: str):
    project = make_project(PLAIN)
    passed, output = run_tests_with_candidate(
        project.path("plain.py"), "double", candidate, DOUBLE_TESTS, timeout=TIMEOUT
    )
    assert passed is False, output


@pytest.mark.parametrize(
    ("files", "module"),
    [
        pytest.param(PLAIN, "plain.py", id="flat"),
        pytest.param(
            {
                "pkg/__init__.py": "",
                "pkg/plain.py": PLAIN["plain.py"],
                "tests/test_plain.py": PLAIN["test_plain.py"].replace(
                    "from plain import", "from pkg.plain import"
                ),
            },
            "pkg/plain.py",
            id="package-tests-folder",
        ),
    ],
)
def test_final_gate_with_recorded_test_ids(
    make_project: Any, tmp_path: Path, files: dict[str, str], module: str
):
    project = make_project(files)
    workload = record(project, module, "double", tmp_path / "out")
    assert len(workload.reached_tests) == 2
    right = "def double(x):\n    return x + x\n"
    wrong = "def double(x):\n    return x\n"
    file = project.path(module)
    assert run_tests_with_candidate(file, "double", right, workload.reached_tests)[0] is True
    assert run_tests_with_candidate(file, "double", wrong, workload.reached_tests)[0] is False


def test_final_gate_with_slashes_in_parametrize_ids(make_project: Any, tmp_path: Path):
    project = make_project(
        {
            "web.py": """
                def host(url):
                    return url.split("/")[2]
                """,
            "test_web.py": """
                import pytest
                from web import host

                @pytest.mark.parametrize("url", ["http://example.com/a", "ftp://x.org"])
                def test_host(url):
                    assert "." in host(url)
                """,
        }
    )
    workload = record(project, "web.py", "host", tmp_path / "out")
    assert workload.calls == 2
    assert any("http://example.com/a" in t for t in workload.reached_tests)
    passed, output = run_tests_with_candidate(
        project.path("web.py"),
        "host",
        "def host(url):\n    return url.split('/', 3)[2]\n",
        workload.reached_tests,
        timeout=TIMEOUT,
    )
    assert passed is True, output


@pytest.mark.parametrize(
    ("candidate", "passes"),
    [
        pytest.param(
            "def preview(self, amount):\n    return amount + self.balance\n", True, id="ok"
        ),
        pytest.param("def preview(self, amount):\n    return self.balance\n", False, id="wrong"),
    ],
)
def test_run_tests_with_method_candidate(make_project: Any, candidate: str, passes: bool):
    project = make_project(
        {
            "bank.py": """
                class Account:
                    def __init__(self, balance):
                        self.balance = balance

                    def preview(self, amount):
                        return self.balance + amount
                """,
            "test_bank.py": """
                from bank import Account

                def test_preview():
                    assert Account(10).preview(5) == 15
                """,
        }
    )
    passed, output = run_tests_with_candidate(
        project.path("bank.py"),
        "Account.preview",
        candidate,
        ("test_bank.py::test_preview",),
        timeout=TIMEOUT,
    )
    assert passed is passes, output


def test_run_tests_with_candidate_reaches_names_imported_by_conftest(make_project: Any):
    project = make_project(
        {
            "helper.py": "def inc(x):\n    return x + 1\n",
            "conftest.py": """
                import pytest
                from helper import inc

                @pytest.fixture
                def two():
                    return inc(1)
                """,
            "test_helper.py": "def test_fixture(two):\n    assert two == 2\n",
        }
    )
    passed, output = run_tests_with_candidate(
        project.path("helper.py"),
        "inc",
        "def inc(x):\n    return x + 2\n",
        ("test_helper.py::test_fixture",),
        timeout=TIMEOUT,
    )
    assert passed is False, output


@pytest.mark.parametrize(
    ("qualname", "source"),
    [
        pytest.param(
            "Box.area",
            "def area(self):\n    return self.__width * self.__height\n",
            id="name-mangled-attribute",
        ),
        pytest.param(
            "Square.describe",
            "def describe(self):\n    return 'square ' + super().describe()\n",
            id="zero-argument-super",
        ),
    ],
)
def test_run_tests_with_method_candidate_identical_to_original(
    make_project: Any, qualname: str, source: str
):
    project = make_project(
        {
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
                """,
            "test_shapes.py": """
                from shapes import Box, Square

                def test_area():
                    assert Box(2, 3).area() == 6

                def test_describe():
                    assert Square().describe() == "square shape"
                """,
        }
    )
    passed, output = run_tests_with_candidate(
        project.path("shapes.py"), qualname, source, (), timeout=TIMEOUT
    )
    assert passed is True, output
