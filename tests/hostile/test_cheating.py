"""Candidates that cheat, break the rules or attack the sandbox: each has a defined outcome."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from speedsmith.settings import Settings
from speedsmith.verify.sandbox import namespaces_available
from speedsmith.verify.verifier import verify
from speedsmith.workload import Workload, record_workload

MODULE = '''
from typing import List


def clip_sum(values: List[int], limit: int) -> int:
    """Sum of the values, each clipped to ``limit``.

    >>> clip_sum([1, 5, 9], 4)
    9
    """
    total = 0
    for value in values:
        total += min(value, limit)
    return total


def evens(n):
    for i in range(n):
        if i % 2 == 0:
            yield i


def shout(word):
    print(word.upper())
    return len(word)


def parse(text):
    if not text:
        raise ValueError("empty input")
    return int(text)


def count_big(nums, threshold):
    count = 0
    for n in nums:
        if n > threshold:
            count += 1
    return count


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def norm1(self):
        return abs(self.x) + abs(self.y)
'''

TESTS = """
import pytest

from mod import Point, clip_sum, count_big, evens, parse, shout


def test_clip():
    assert clip_sum([1, 2, 3], 10) == 6
    assert clip_sum([], 3) == 0


def test_evens():
    assert list(evens(7)) == [0, 2, 4, 6]


def test_shout():
    assert shout("hi") == 2


def test_parse():
    assert parse("12") == 12
    with pytest.raises(ValueError):
        parse("")


def test_norm():
    assert Point(3, -4).norm1() == 7


def test_count_big():
    assert count_big([1, 5, 9, 12], 4) == 3
    assert count_big([2, 3], 10) == 0
"""

SETTINGS = Settings(timing_max_rounds=6, candidate_timeout_seconds=10)
QUALNAMES = ("clip_sum", "evens", "shout", "parse", "Point.norm1", "count_big")


@pytest.fixture(scope="module")
def recorded(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[Path, Workload]]]:
    root = tmp_path_factory.mktemp("hostile")
    (root / "pyproject.toml").write_text("")
    (root / "mod.py").write_text(MODULE)
    (root / "test_mod.py").write_text(TESTS)
    result = {}
    for qualname in QUALNAMES:
        out = root.parent / f"out-{qualname}"
        out.mkdir()
        workload = record_workload(root / "mod.py", qualname, out_dir=out, timeout=60)
        assert workload.calls > 0, workload.pytest_output
        result[qualname] = (root / "mod.py", workload)
    yield result


def check(recorded: dict[str, Any], qualname: str, candidate: str) -> Any:
    file, workload = recorded[qualname]
    return verify(file, qualname, workload, candidate, SETTINGS, timing=False)


CLIP = "def clip_sum(values: List[int], limit: int) -> int:\n"


@pytest.mark.parametrize(
    ("qualname", "candidate", "pattern"),
    [
        pytest.param(
            "clip_sum",
            CLIP + "    return sum(values) if limit >= 10 else 0\n",
            r"docstring example",
            id="special-cases-the-tests-docstring-catches-it",
        ),
        pytest.param(
            "clip_sum",
            CLIP + "    return sum(values) if limit >= max(values, default=0) else "
            "sum(min(v, limit) for v in values[:3])\n",
            r"generated input",
            id="special-cases-tests-and-doc-hypothesis-catches-it",
        ),
        pytest.param(
            "count_big",
            "def count_big(nums, threshold):\n    return 3 if threshold == 4 else 0\n",
            r"generated input",
            id="special-cases-unannotated-inputs-shaped-like-the-tests-catch-it",
        ),
        pytest.param(
            "evens",
            "def evens(n):\n    yield from range(0, n, 3)\n",
            r"yielded \[0, 3, 6\], expected \[0, 2, 4, 6\]",
            id="iterator-yields-other-items",
        ),
        pytest.param(
            "evens",
            "def evens(n):\n    return list(range(0, n, 2))\n",
            r"expected an iterator",
            id="list-instead-of-iterator",
        ),
        pytest.param(
            "shout",
            "def shout(word):\n    return len(word)\n",
            r"printed '', expected 'HI\\n'",
            id="stdout-differs",
        ),
        pytest.param(
            "parse",
            "def parse(text):\n    if not text:\n        raise ValueError('bad')\n"
            "    return int(text)\n",
            r"message 'bad'",
            id="exception-message-differs",
        ),
        pytest.param(
            "parse",
            "def parse(text):\n    return int(text)\n",
            r"expected builtins\.ValueError\('empty input'\)",
            id="exception-type-differs",
        ),
        pytest.param(
            "Point.norm1",
            "def norm1(self):\n    Point.__eq__ = lambda a, b: True\n"
            "    return abs(self.x) + abs(self.y)\n",
            r"changed class Point\.__eq__",
            id="patches-a-class-eq",
        ),
        pytest.param(
            "clip_sum",
            CLIP + "    global CACHE\n    CACHE = values\n"
            "    return sum(min(v, limit) for v in values)\n",
            r"rebound module global 'CACHE'",
            id="rebinds-a-module-global",
        ),
        pytest.param(
            "clip_sum",
            CLIP + "    import time\n    time.perf_counter = lambda: 0.0\n"
            "    return sum(min(v, limit) for v in values)\n",
            r"replaced time\.perf_counter",
            id="patches-the-clock",
        ),
        pytest.param(
            "clip_sum",
            CLIP + "    import builtins\n    builtins.min = lambda *a, **k: 0\n"
            "    return sum(min(v, limit) for v in values)\n",
            r"replaced builtins\.min|expected",
            id="patches-builtins",
        ),
        pytest.param(
            "clip_sum",
            CLIP + "    try:\n        raise SystemExit(0)\n    except BaseException:\n"
            "        return 0\n",
            r"expected 6, got 0",
            id="swallows-base-exception",
        ),
        pytest.param(
            "clip_sum",
            CLIP + '    import os\n    os.write(1, b\'{"phase": "equivalence", '
            '"equivalent": true, "mismatches": []}\\n\')\n    return -1\n',
            r"expected 6, got -1",
            id="forges-a-verdict-line",
        ),
    ],
)
def test_cheating_candidates_are_rejected(recorded, qualname: str, candidate: str, pattern: str):
    verdict = check(recorded, qualname, candidate)
    assert verdict.equivalent is False
    assert re.search(pattern, " | ".join(verdict.mismatches) or verdict.reason), verdict.reason


@pytest.mark.parametrize(
    ("qualname", "candidate"),
    [
        pytest.param(
            "clip_sum", CLIP + "    return sum(min(v, limit) for v in values)\n", id="clip"
        ),
        pytest.param("evens", "def evens(n):\n    return iter(range(0, n, 2))\n", id="iterator"),
        pytest.param(
            "shout", "def shout(word):\n    print(word.upper())\n    return len(word)\n", id="print"
        ),
        pytest.param(
            "Point.norm1",
            "def norm1(self):\n    x, y = self.x, self.y\n"
            "    return (x if x > 0 else -x) + abs(y)\n",
            id="method",
        ),
        pytest.param(
            "count_big",
            "def count_big(nums, threshold):\n    return sum(n > threshold for n in nums)\n",
            id="unannotated-generated-inputs-agree",
        ),
        pytest.param(
            "parse",
            "def parse(text):\n    if text == '':\n        raise ValueError('empty input')\n"
            "    return int(text)\n",
            id="unannotated-original-raises-on-generated-inputs",
        ),
    ],
)
def test_honest_rewrites_are_equivalent(recorded, qualname: str, candidate: str):
    verdict = check(recorded, qualname, candidate)
    assert verdict.equivalent, verdict.reason


needs_namespaces = pytest.mark.skipif(
    not namespaces_available(), reason="no user namespaces here: documented fallback"
)


@needs_namespaces
def test_candidate_cannot_reach_the_network(recorded):
    accepted = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def accept() -> None:
        server.settimeout(5)
        try:
            connection, _ = server.accept()
            accepted.append(True)
            connection.close()
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    candidate = (
        CLIP + "    import socket\n    try:\n"
        f"        socket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n"
        "        return -1\n    except OSError:\n"
        "        return sum(min(v, limit) for v in values)\n"
    )
    verdict = check(recorded, "clip_sum", candidate)
    server.close()
    thread.join()
    assert verdict.sandboxed_network
    assert not verdict.equivalent
    assert re.search(r"candidate tried to (resolve|connect to) 127\.0\.0\.1", verdict.reason)
    assert accepted == []


@needs_namespaces
def test_candidate_cannot_write_into_the_project(recorded):
    file, _ = recorded["clip_sum"]
    target = file.parent / "pwned.txt"
    candidate = (
        CLIP + "    try:\n"
        f"        open({str(target)!r}, 'w').write('x')\n"
        "    except OSError:\n        pass\n"
        "    return sum(min(v, limit) for v in values)\n"
    )
    verdict = check(recorded, "clip_sum", candidate)
    assert verdict.read_only_tree
    assert not verdict.equivalent
    assert verdict.reason == f"candidate tried to write {target}"
    assert not target.exists()
