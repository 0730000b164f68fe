"""What a cached result depends on: the function, the module code it uses, the project's tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from speedsmith import cache
from speedsmith.isolate import find_function

MODULE = """import math

LIMIT = 10


def helper(x):
    return x * x


def other(y):
    return y


def f(xs):
    return [helper(x) for x in xs if x < LIMIT]
"""


def hash_of(text: str) -> str:
    return cache.function_hash(text, find_function(text, "f"))


@pytest.mark.parametrize(
    ("change", "same"),
    [
        pytest.param(lambda t: t.replace("return y", "return -y"), True, id="unused-function"),
        pytest.param(lambda t: "# comment\n\n" + t, True, id="lines-above"),
        pytest.param(lambda t: t + "   \n\n", True, id="trailing-whitespace"),
        pytest.param(lambda t: t.replace("x * x", "x ** 3"), False, id="helper"),
        pytest.param(lambda t: t.replace("LIMIT = 10", "LIMIT = 11"), False, id="global"),
        pytest.param(lambda t: t.replace("import math", "import cmath"), False, id="import"),
        pytest.param(lambda t: t.replace("x < LIMIT", "x <= LIMIT"), False, id="function"),
    ],
)
def test_function_hash(change, same: bool) -> None:  # type: ignore[no-untyped-def]
    assert (hash_of(change(MODULE)) == hash_of(MODULE)) is same


def project(root: Path) -> Path:
    (root / "pyproject.toml").write_text("[project]\nname = 'p'\n", encoding="utf-8")
    (root / "pkg").mkdir()
    (root / "pkg" / "mod.py").write_text(MODULE, encoding="utf-8")
    (root / "tests").mkdir()
    (root / "tests" / "test_mod.py").write_text("def test_f():\n    pass\n", encoding="utf-8")
    (root / ".venv" / "lib").mkdir(parents=True)
    (root / ".venv" / "lib" / "test_x.py").write_text("", encoding="utf-8")
    (root / "env").mkdir()
    (root / "env" / "pyvenv.cfg").write_text("", encoding="utf-8")
    return root / "pkg" / "mod.py"


def touch_later(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 10**9, before + 10**9))


@pytest.mark.parametrize(
    ("change", "same"),
    [
        pytest.param(
            lambda r: touch_later(r / "pkg" / "mod.py", MODULE + "\n# x\n"), True, id="the-module"
        ),
        pytest.param(lambda r: touch_later(r / ".venv" / "lib" / "test_x.py", "x = 1"), True,
                     id="hidden-folder"),
        pytest.param(lambda r: touch_later(r / "env" / "test_y.py", "x = 1"), True,
                     id="virtual-environment"),
        pytest.param(lambda r: touch_later(r / "README.md", "hi"), True, id="not-a-test"),
        pytest.param(lambda r: touch_later(r / ".git", "gitdir: elsewhere"), True,
                     id="git-folder-or-file"),
        pytest.param(lambda r: touch_later(r / "tests" / "test_mod.py", "def test_g():\n    1\n"),
                     False, id="test-edited"),
        pytest.param(lambda r: touch_later(r / "tests" / "test_new.py", ""), False,
                     id="test-added"),
        pytest.param(lambda r: (r / "tests" / "test_mod.py").unlink(), False, id="test-removed"),
        pytest.param(lambda r: touch_later(r / "conftest.py", "x = 1"), False, id="conftest"),
        pytest.param(lambda r: touch_later(r / "pyproject.toml", "[tool.pytest]\n"), False,
                     id="pytest-configuration"),
    ],
)  # fmt: skip
def test_tests_fingerprint(tmp_path: Path, change, same: bool) -> None:  # type: ignore[no-untyped-def]
    module = project(tmp_path)
    before = cache.tests_fingerprint(module)
    change(tmp_path)
    assert (cache.tests_fingerprint(module) == before) is same
