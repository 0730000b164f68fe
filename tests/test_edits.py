"""Putting a function back into its file, and the diff shown to the user."""

from __future__ import annotations

import pytest

from speedsmith.edits import apply_edit, function_edit, unified_diff
from speedsmith.isolate import FunctionInfo, find_function, parse_functions
from speedsmith.report import FunctionEdit

SOURCE = '''"""Non-ASCII first: é, 中文, 😀."""


class Stats:
    """Running statistics."""

    @staticmethod
    def total(values):
        result = 0
        for v in values:

            result += v
        return result

    def label(self):
        return """
Stats:
  done"""


def plain(x):
    return x + 1
'''

NEW_TOTAL = "@staticmethod\ndef total(values):\n    return sum(values)\n"

EXPECTED_TOTAL = SOURCE.replace(
    """    @staticmethod
    def total(values):
        result = 0
        for v in values:

            result += v
        return result
""",
    """    @staticmethod
    def total(values):
        return sum(values)
""",
)


@pytest.mark.parametrize(
    ("qualname", "new_function", "expected"),
    [
        pytest.param("Stats.total", NEW_TOTAL, EXPECTED_TOTAL, id="method-reindented"),
        pytest.param(
            "plain",
            "def plain(x):\n    y = x\n\n    return y + 1",
            SOURCE.replace("    return x + 1\n", "    y = x\n\n    return y + 1\n"),
            id="top-level-blank-line",
        ),
        pytest.param(
            "Stats.label",
            'def label(self):\n    return """\nStats:\n  done"""\n\n',
            SOURCE,
            id="multiline-string-not-reindented",
        ),
        pytest.param(
            "Stats.total",
            "\n\n" + NEW_TOTAL + "\n\n",
            EXPECTED_TOTAL,
            id="surrounding-blank-lines-dropped",
        ),
    ],
)
def test_function_edit_then_apply(qualname: str, new_function: str, expected: str) -> None:
    fn = find_function(SOURCE, qualname)
    edit = function_edit(SOURCE, fn, new_function)
    assert (edit.start_byte, edit.end_byte) == (fn.start_byte, fn.end_byte)
    assert not edit.new_text.startswith(" ")
    result = apply_edit(SOURCE, edit)
    assert result == expected
    # The edited file still parses and the function is where it was, with its new body.
    assert find_function(result, qualname).source == new_function.strip("\n")


@pytest.mark.parametrize("fn", [pytest.param(fn, id=fn.qualname) for fn in parse_functions(SOURCE)])
def test_unchanged_function_round_trips(fn: FunctionInfo) -> None:
    edit = function_edit(SOURCE, fn, fn.source)
    assert apply_edit(SOURCE, edit) == SOURCE


def test_crlf_file_keeps_crlf() -> None:
    source = SOURCE.replace("\n", "\r\n")
    fn = find_function(source, "Stats.total")
    edit = function_edit(source, fn, NEW_TOTAL)
    assert edit.new_text == "@staticmethod\r\n    def total(values):\r\n        return sum(values)"
    assert apply_edit(source, edit) == EXPECTED_TOTAL.replace("\n", "\r\n")
    assert apply_edit(source, function_edit(source, fn, fn.source)) == source


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(FunctionEdit(0, 0, "# é\n"), "# é\nx = '中文😀'\n", id="insert-at-start"),
        pytest.param(FunctionEdit(4, 16, "'a'"), "x = 'a'\n", id="replace-non-ascii-bytes"),
        pytest.param(FunctionEdit(17, 17, "y = 1\n"), "x = '中文😀'\ny = 1\n", id="append"),
    ],
)
def test_apply_edit_uses_utf8_bytes(edit: FunctionEdit, expected: str) -> None:
    assert apply_edit("x = '中文😀'\n", edit) == expected


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(FunctionEdit(0, 99, ""), id="past-end"),
        pytest.param(FunctionEdit(3, 2, ""), id="reversed"),
        pytest.param(FunctionEdit(-1, 2, ""), id="negative"),
    ],
)
def test_apply_edit_rejects_bad_ranges(edit: FunctionEdit) -> None:
    with pytest.raises(ValueError):
        apply_edit("abc", edit)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param("a\nb\n", "a\nb\n", "", id="equal"),
        pytest.param(
            "a\nb\nc\n",
            "a\nB\nc\n",
            "--- a/pkg/mod.py\n+++ b/pkg/mod.py\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n",
            id="changed-line",
        ),
        pytest.param(
            "x = 1",
            "x = 2",
            "--- a/pkg/mod.py\n+++ b/pkg/mod.py\n@@ -1 +1 @@\n"
            "-x = 1\n\\ No newline at end of file\n+x = 2\n\\ No newline at end of file\n",
            id="no-final-newline",
        ),
        pytest.param(
            "s = '\x0c'\n",
            "s = 'é'\n",
            "--- a/pkg/mod.py\n+++ b/pkg/mod.py\n@@ -1 +1 @@\n-s = '\x0c'\n+s = 'é'\n",
            id="form-feed-is-not-a-line-break",
        ),
    ],
)
def test_unified_diff(old: str, new: str, expected: str) -> None:
    assert unified_diff(old, new, "pkg/mod.py") == expected


def test_unified_diff_of_an_edit() -> None:
    fn = find_function(SOURCE, "Stats.total")
    new = apply_edit(SOURCE, function_edit(SOURCE, fn, NEW_TOTAL))
    diff = unified_diff(SOURCE, new, "stats.py")
    assert diff.startswith("--- a/stats.py\n+++ b/stats.py\n@@ ")
    assert "-        result = 0\n" in diff
    assert "+        return sum(values)\n" in diff
    assert "-    def total(values):" not in diff
