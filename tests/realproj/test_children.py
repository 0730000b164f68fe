"""The child processes' code: standalone, Python 3.9+, and the plugin's snapshots.

The capture plugin runs inside the project's own interpreter and the harness under whatever
Python the project uses, so neither may import ``speedsmith`` nor use 3.10+ syntax or APIs.
"""

from __future__ import annotations

import ast
import glob
import importlib
import os
import pickle
import shutil
import subprocess
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest
from realproj_support import PLUGIN_DIR, REPO, copy_project, record, replay

VERIFY = REPO / "server" / "speedsmith" / "verify"
CHILDREN = [
    PLUGIN_DIR / "speedsmith_capture.py",
    PLUGIN_DIR / "speedsmith_candidate.py",
    VERIFY / "harness.py",
    VERIFY / "replay.py",
    VERIFY / "measure.py",
    VERIFY / "jail.py",
    VERIFY / "audit.py",
    VERIFY / "equivalence.py",
]


def _newer_than_39(tree: ast.AST) -> list[str]:
    problems = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        name = node.func.id
        union = len(node.args) == 2 and any(
            isinstance(part, ast.BinOp) and isinstance(part.op, ast.BitOr)
            for part in ast.walk(node.args[1])
        )
        if name in ("isinstance", "issubclass") and union:
            problems.append(f"line {node.lineno}: {name}(..., X | Y) needs 3.10")
        if name == "zip" and any(keyword.arg == "strict" for keyword in node.keywords):
            problems.append(f"line {node.lineno}: zip(strict=) needs 3.10")
    return problems


def _imports_speedsmith(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found += [
            f"line {node.lineno}: imports {n}" for n in names if n.split(".")[0] == "speedsmith"
        ]
    return found


@pytest.mark.parametrize("path", CHILDREN, ids=lambda p: p.name)
def test_child_module_is_python_39_and_standalone(path: Path):
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text, filename=str(path), feature_version=(3, 9))  # match, (a | b) types...
    assert _newer_than_39(tree) == []
    assert _imports_speedsmith(tree) == []
    # ``X | None`` annotations are fine only while annotations stay strings.
    assert "from __future__ import annotations" in text


def test_the_checker_finds_what_it_looks_for():
    tree = ast.parse("isinstance(x, int | str)\nzip(a, b, strict=True)\nimport speedsmith.cli\n")
    assert len(_newer_than_39(tree)) == 2
    assert _imports_speedsmith(tree) == ["line 3: imports speedsmith.cli"]


def _python_39() -> str | None:
    """A working Python 3.9 (a pyenv shim may exist without one behind it)."""
    home = os.path.expanduser("~/.pyenv/versions")
    candidates = sorted(glob.glob(os.path.join(home, "3.9*", "bin", "python3.9")), reverse=True)
    candidates.append(shutil.which("python3.9") or "")
    for candidate in filter(None, candidates):
        try:
            done = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 9))"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if done.stdout.strip() == "True":
            return candidate
    return None


PYTHON_39 = _python_39()
needs_39 = pytest.mark.skipif(PYTHON_39 is None, reason="no Python 3.9 interpreter here")


@needs_39
def test_children_import_and_snapshot_on_python_39(tmp_path: Path):
    assert PYTHON_39 is not None
    script = f"""
import importlib.util, pickle, sys
sys.path[:0] = [{str(PLUGIN_DIR)!r}]
import speedsmith_candidate, speedsmith_capture
for name in ("harness", "replay", "measure", "jail", "audit", "equivalence"):
    path = {str(VERIFY)!r} + "/" + name + ".py"
    spec = importlib.util.spec_from_file_location("_child_" + name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

class Chunks(list):
    def __init__(self, items):
        self.chunks = [list(items)]
    def extend(self, items):
        self.chunks[-1].extend(items)
    def __iter__(self):
        return iter([x for c in self.chunks for x in c])

import __main__
__main__.Chunks = Chunks
value = Chunks([1, 2])
copy = pickle.loads(speedsmith_capture.snapshot((value, 1)))[0]
assert copy.chunks == [[1, 2]] and type(copy) is Chunks, copy.__dict__
assert speedsmith_candidate.plain(staticmethod(len)) is len
print("ok", sys.version_info[:2])
"""
    done = subprocess.run(
        [PYTHON_39, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok (3, 9)"


@needs_39
def test_harness_replays_on_python_39(tmp_path: Path):
    """Recorded with this interpreter's pytest, replayed by a 3.9 harness."""
    assert PYTHON_39 is not None
    root = copy_project("chunked", tmp_path)
    recording = record(root, "chunks.chunklist", "ChunkList.insert", [])
    assert len(recording.calls) == 4
    target = ("chunks.chunklist", "ChunkList.insert")
    for candidate, equivalent in ((None, True), (WRONG_INSERT, False)):
        verdict = replay(root, *target, recording.path, candidate, python=PYTHON_39)
        assert verdict.get("equivalent") is equivalent, verdict


WRONG_INSERT = """
def insert(self, index, item):
    position, offset = self._locate(index)
    self.chunks[position].insert(offset, item)
""".lstrip()


# --- snapshots, in this process -------------------------------------------------------------


@pytest.fixture(scope="module")
def capture() -> Any:
    sys.path.insert(0, str(PLUGIN_DIR))
    try:
        yield importlib.import_module("speedsmith_capture")
    finally:
        sys.path.remove(str(PLUGIN_DIR))


class Chunked(list):
    """Keeps its items in ``chunks``: the default pickle calls ``extend`` before they exist."""

    def __init__(self, items: Any = None) -> None:
        self.chunks: list[list[Any]] = [[]]
        if items:
            self.extend(items)

    def extend(self, items: Any) -> None:
        self.chunks[-1].extend(items)

    def __iter__(self) -> Any:
        return (item for chunk in self.chunks for item in chunk)

    def __len__(self) -> int:
        return sum(map(len, self.chunks))


class Validated(dict):
    def __init__(self, allowed: Any) -> None:
        super().__init__()
        self.allowed = set(allowed)

    def __setitem__(self, key: Any, value: Any) -> None:
        if key not in self.allowed:
            raise KeyError(key)
        super().__setitem__(key, value)


class Slotted:
    __slots__ = ("__hidden", "x")

    def __init__(self, x: int) -> None:
        self.x = x
        self.__hidden = x * 2

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Slotted) and (self.x, self.__hidden) == (
            other.x,
            other.__hidden,
        )

    __hash__ = None  # type: ignore[assignment]


class Tagged(set):
    def __init__(self, items: Any, tag: str) -> None:
        super().__init__(items)
        self.tag = tag


def _roundtrip(capture: Any, value: Any) -> Any:
    return pickle.loads(capture.snapshot(value))


def test_default_pickle_cannot_restore_a_list_subclass_with_state():
    with pytest.raises(AttributeError):
        pickle.loads(pickle.dumps(Chunked([1, 2, 3])))


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(Chunked([1, 2, 3]), id="list-subclass-with-state"),
        pytest.param([Chunked("ab"), {"k": Chunked([])}], id="nested"),
        pytest.param(Validated("ab"), id="dict-subclass-validating-setitem"),
        pytest.param(Slotted(3), id="slots-with-mangled-name"),
        pytest.param(Tagged({1, 2}, "t"), id="set-subclass-with-state"),
        pytest.param(([1.5, float("nan")], {"a": (1, 2)}), id="plain"),
    ],
)
def test_snapshot_restores_an_equal_copy(capture: Any, value: Any):
    copy = _roundtrip(capture, value)
    same = capture._same_function()
    assert same is not None
    assert same(value, copy, 0.0, 0.0)


def test_snapshot_keeps_the_raw_storage_and_the_attributes(capture: Any):
    value = Validated("ab")
    value["a"] = 1
    copy = _roundtrip(capture, value)
    assert type(copy) is Validated
    assert dict(copy) == {"a": 1}
    assert copy.allowed == {"a", "b"}
    chunked = _roundtrip(capture, Chunked([4, 5]))
    assert chunked.chunks == [[4, 5]]
    assert list.__len__(chunked) == 0  # as in the original: its items live in ``chunks``


def test_snapshot_says_what_cannot_be_copied(capture: Any):
    with pytest.raises(capture.SnapshotError, match=r"cannot pickle '_thread\.lock' object"):
        capture.snapshot({"lock": threading.Lock()})


# --- every reference, in this process -------------------------------------------------------


def test_collected_doctests_get_the_stand_in(capture: Any):
    """``--doctest-modules`` runs each docstring in a copy of its module's globals."""

    def original() -> int:
        return 1

    def stand_in() -> int:
        return 2

    class Holder:
        def method(self) -> int:
            return 3

    holder = Holder()
    globs = {
        "f": original,
        "g": staticmethod(original),
        "p": property(original),
        "bound": types.MethodType(original, holder),
        "other": 3,
    }
    item = types.SimpleNamespace(dtest=types.SimpleNamespace(globs=globs))
    swap = (original, stand_in)
    capture._SWAPS.append(swap)
    try:
        capture.pytest_collection_modifyitems(None, None, [item, types.SimpleNamespace()])
    finally:
        capture._SWAPS.remove(swap)
    assert globs["f"] is stand_in
    assert globs["g"].__func__ is stand_in
    assert globs["p"].fget is stand_in
    assert globs["bound"].__func__ is stand_in
    assert globs["bound"].__self__ is holder
    assert globs["other"] == 3
