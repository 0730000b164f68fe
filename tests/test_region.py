"""Regions: snapping a selection to whole statements, splicing a rewrite into the function,
extracting the model's reply, the region prompt, and ``speedsmith optimize FILE:START-END``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from speedsmith import edits
from speedsmith.isolate import (
    Context,
    Region,
    RegionError,
    find_function,
    functions_in_lines,
    snap_region,
)
from speedsmith.search.region import (
    END_MARKER,
    START_MARKER,
    build_region_prompt,
    extract_region,
    replacement_of,
    splice,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "shapes"

SOURCE = '''import re


class C:
    def m(self, nums):
        """Doc."""
        total = 0
        # a comment

        for n in nums:
            if n:
                total += n
            else:
                total -= 1
        s = """a
  b"""
        return total, s


def g(x): return x
'''
# 0-based lines: 4 def m, 5 docstring, 6 total = 0, 7 comment, 8 blank, 9 for, 10 if,
# 11 total += n, 12 else, 13 total -= 1, 14-15 s = """...""", 16 return


@pytest.mark.parametrize(
    ("selected", "expected", "snapped"),
    [
        pytest.param((6, 6), (6, 6), False, id="one-statement"),
        pytest.param((9, 9), (9, 13), True, id="loop-header-takes-the-loop"),
        pytest.param((11, 11), (11, 11), False, id="inside-if-body"),
        pytest.param((11, 13), (10, 13), True, id="across-if-and-else-snaps-to-the-if"),
        pytest.param((10, 14), (9, 15), True, id="into-the-next-statement-snaps-out"),
        pytest.param((7, 10), (9, 13), True, id="comment-and-blank-left-out"),
        pytest.param((15, 15), (14, 15), True, id="string-continuation-line"),
        pytest.param((14, 6), (6, 15), True, id="backwards"),
    ],
)
def test_snap_region(selected: tuple[int, int], expected: tuple[int, int], snapped: bool) -> None:
    fn = find_function(SOURCE, "C.m")
    region = snap_region(SOURCE, fn, Region(*selected))
    assert region is not None
    assert (region.start_line, region.end_line, region.snapped) == (*expected, snapped)
    lines = SOURCE.split("\n")[expected[0] : expected[1] + 1]
    indent = lines[0][: len(lines[0]) - len(lines[0].lstrip())]
    assert fn.indent + region.indent == indent
    assert splice(fn.source, region, region.text) == fn.source  # put back unchanged


@pytest.mark.parametrize(
    ("qualname", "selected", "error"),
    [
        pytest.param("C.m", (4, 6), None, id="def-line-is-the-whole-function"),
        pytest.param("g", (19, 19), None, id="one-line-function"),
        pytest.param("C.m", (7, 8), "hold no statement", id="comment-and-blank"),
        pytest.param("C.m", (5, 5), "hold no statement", id="docstring"),
        pytest.param("C.m", (0, 1), "outside C.m", id="outside"),
    ],
)
def test_no_region(qualname: str, selected: tuple[int, int], error: str | None) -> None:
    fn = find_function(SOURCE, qualname)
    if error is None:
        assert snap_region(SOURCE, fn, Region(*selected)) is None
    else:
        with pytest.raises(RegionError, match=error):
            snap_region(SOURCE, fn, Region(*selected))


@pytest.mark.parametrize(
    ("lines", "names"),
    [
        pytest.param((6, 9), ["C.m"], id="inside-one"),
        pytest.param((2, 19), ["C.m", "g"], id="class-and-function"),
        pytest.param((0, 1), [], id="imports"),
    ],
)
def test_functions_in_lines(lines: tuple[int, int], names: list[str]) -> None:
    assert [fn.qualname for fn in functions_in_lines(SOURCE, *lines)] == names


def loop_region():
    fn = find_function(SOURCE, "C.m")
    region = snap_region(SOURCE, fn, Region(9, 13))
    assert region is not None
    return fn, region


@pytest.mark.parametrize(
    ("reply", "hit_cap", "new_lines", "error"),
    [
        pytest.param(
            "total += sum(n or -1 for n in nums)\n```\nThis is faster.",
            False,
            ["        total += sum(n or -1 for n in nums)"],
            "",
            id="statement-then-prose",
        ),
        pytest.param(
            "    for n in nums:\n    \ttotal += n or -1",
            False,
            ["        for n in nums:", "            total += n or -1"],
            "",
            id="indented-and-tabs",
        ),
        pytest.param(
            "for n in nums:\n    total += n",
            True,
            None,
            "truncated: cut off at the token cap",
            id="cut-off",
        ),
        pytest.param(
            "def m(self, nums):\n    return 0, ''",
            False,
            None,
            "rewrote the whole function, not the marked lines",
            id="whole-function",
        ),
        pytest.param("for )(", False, None, "does not parse", id="junk"),
    ],
)
def test_extract_region(reply: str, hit_cap: bool, new_lines: list[str] | None, error: str) -> None:
    fn, region = loop_region()
    extracted = extract_region(reply, fn, region, hit_cap=hit_cap)
    assert extracted.error.startswith(error)
    if new_lines is None:
        assert extracted.source is None
        return
    assert extracted.source is not None
    old = fn.source.split("\n")
    expected = [*old[: region.first], *[line[4:] for line in new_lines], *old[region.last + 1 :]]
    assert extracted.source.split("\n") == expected
    replacement = replacement_of(extracted.source, fn.source, region)
    assert replacement is not None
    edit = edits.region_edit(SOURCE, fn, region, replacement)
    new = edits.apply_edit(SOURCE, edit)
    assert new.split("\n") == [*SOURCE.split("\n")[:9], *new_lines, *SOURCE.split("\n")[14:]]


def test_region_prompt_marks_the_region_and_asks_only_for_it() -> None:
    fn, region = loop_region()
    prompt = build_region_prompt(fn, Context((), (), (), None), region)
    marked = prompt.user.split("```python\n")[1].split("```")[0]
    shown = marked.split("\n")
    start = shown.index(f"    {START_MARKER}")
    assert shown[:start] == ["def m(self, nums):", "    total = 0", ""]
    assert shown[start : start + 7] == [
        f"    {START_MARKER}",
        "    for n in nums:",
        "        if n:",
        "            total += n",
        "        else:",
        "            total -= 1",
        f"    {END_MARKER}",
    ]
    assert "Doc." not in prompt.user and "a comment" not in prompt.user
    assert prompt.user.endswith("Write only the new code for the marked lines:")
    assert prompt.prefill_code == ""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    target = tmp_path / "shapes"
    shutil.copytree(EXAMPLE, target)
    loops = ["total = sum(nums)", "for x in nums:\n    total += x * x"]
    (target / "pool.json").write_text(json.dumps({"candidates": loops}))
    return target


def test_cli_lines_optimize_the_region(project: Path) -> None:
    before = (project / "stats.py").read_text()
    args = ["optimize", "stats.py:6-7", "--backend", "replay", "--replay-file", "pool.json"]
    args += ["--budget", "2", "--seed", "1", "--json", "--apply"]
    done = subprocess.run(
        [sys.executable, "-m", "speedsmith", *args],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["target"], data["verdict"], data["region"]) == ("stats.py:6-7", "improved", [6, 7])
    assert "region: lines 6-7" in done.stderr
    after = (project / "stats.py").read_text()
    assert after == before.replace(
        "    for i in range(len(nums)):\n        total = total + nums[i] * nums[i]\n",
        "    for x in nums:\n        total += x * x\n",
    )
