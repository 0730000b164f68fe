"""Isolation with tree-sitter: finding functions, their spans, context and model output."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tree_sitter import Parser

from speedsmith import isolate
from speedsmith.errors import SourceError, TargetNotFound
from speedsmith.isolate import (
    FunctionInfo,
    collect_context,
    find_function,
    function_at,
    parse_candidate,
    parse_functions,
    string_continuation_lines,
)

SOURCE = '''"""Module with non-ASCII text before the functions: é, 中文, 😀."""

import math
from collections import (
    Counter,
)

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

LIMIT: int = 10
SCALE = OFFSET = 2
UNUSED = "😀 never read"
TITLE = "café"


def helper(x):
    return x * LIMIT


def plain(values):
    """Sum of squares."""
    total = 0
    for v in values:
        total += helper(v) * SCALE
    return total


@staticmethod
@cache(  maxsize = 3 )
async def fetch(url: str, *, retries: int=3) -> bytes:
    return b""


class Shape(object):
    """A shape with 中文 in its docstring."""

    sides = 0

    def area(self, width: int = 1) -> float:
        return math.pi * width + OFFSET

    @property
    def name(self):
        return TITLE

    class Inner:
        def deep(self):
            return Counter()


def outer(n):
    def inner(k):
        return k + n

    class Local:
        def method(self):
            return inner(1)

    return inner(n)


def multiline():
    text = """
  keep my indent
"""
    return text
'''

QUALNAMES = (
    "helper",
    "plain",
    "fetch",
    "Shape.area",
    "Shape.name",
    "Shape.Inner.deep",
    "outer",
    "outer.inner",
    "outer.Local.method",
    "multiline",
)


def test_parse_functions_lists_outer_before_inner_in_file_order() -> None:
    assert tuple(fn.qualname for fn in parse_functions(SOURCE)) == QUALNAMES


@pytest.mark.parametrize(
    ("qualname", "expected"),
    [
        pytest.param(
            "plain",
            {"name": "plain", "class_name": None, "is_nested": False, "is_async": False},
            id="plain-function",
        ),
        pytest.param(
            "fetch",
            {
                "is_async": True,
                "decorators": ("@staticmethod", "@cache(  maxsize = 3 )"),
                "parameters": "(url: str, *, retries: int = 3)",
                "indent": "",
            },
            id="decorated-async",
        ),
        pytest.param(
            "Shape.area",
            {"name": "area", "class_name": "Shape", "is_nested": False, "indent": "    "},
            id="method",
        ),
        pytest.param(
            "Shape.name",
            {"decorators": ("@property",), "class_name": "Shape"},
            id="decorated-method",
        ),
        pytest.param(
            "Shape.Inner.deep",
            {"class_name": "Shape.Inner", "is_nested": False, "indent": "        "},
            id="nested-class-method",
        ),
        pytest.param(
            "outer.inner",
            {"name": "inner", "class_name": None, "is_nested": True, "indent": "    "},
            id="nested-function",
        ),
        pytest.param(
            "outer.Local.method",
            {"class_name": "outer.Local", "is_nested": True},
            id="method-of-class-in-function",
        ),
    ],
)
def test_function_attributes(qualname: str, expected: dict[str, Any]) -> None:
    fn = find_function(SOURCE, qualname)
    assert fn.qualname == qualname
    for field, value in expected.items():
        assert getattr(fn, field) == value, field


@pytest.mark.parametrize("qualname", [pytest.param(q, id=q) for q in QUALNAMES])
def test_span_covers_the_definition_in_utf8_bytes(qualname: str) -> None:
    fn = find_function(SOURCE, qualname)
    data = SOURCE.encode("utf-8")
    text = data[fn.start_byte : fn.end_byte].decode("utf-8")
    first = "@" if fn.decorators else ("async def" if fn.is_async else "def")
    assert text.startswith(first)
    assert not text[-1].isspace()
    lines = SOURCE.split("\n")
    assert lines[fn.start_line] == fn.indent + text.split("\n")[0]
    assert lines[fn.end_line].endswith(text.split("\n")[-1])
    # The non-ASCII text before every function makes byte and character offsets differ.
    assert fn.start_byte > len(data[: fn.start_byte].decode("utf-8"))


@pytest.mark.parametrize(
    ("qualname", "source", "header"),
    [
        pytest.param(
            "fetch",
            "@staticmethod\n@cache(  maxsize = 3 )\nasync def fetch(url: str, *, retries: int=3)"
            ' -> bytes:\n    return b""',
            "@staticmethod\n@cache(  maxsize = 3 )\n"
            "async def fetch(url: str, *, retries: int=3) -> bytes:",
            id="decorators-included",
        ),
        pytest.param(
            "Shape.area",
            "def area(self, width: int = 1) -> float:\n    return math.pi * width + OFFSET",
            "def area(self, width: int = 1) -> float:",
            id="method-dedented",
        ),
        pytest.param(
            "Shape.Inner.deep",
            "def deep(self):\n    return Counter()",
            "def deep(self):",
            id="nested-class-dedented",
        ),
        pytest.param(
            "outer.inner",
            "def inner(k):\n    return k + n",
            "def inner(k):",
            id="nested-function-dedented",
        ),
        pytest.param(
            "multiline",
            'def multiline():\n    text = """\n  keep my indent\n"""\n    return text',
            "def multiline():",
            id="multiline-string-kept",
        ),
    ],
)
def test_source_and_header_are_dedented(qualname: str, source: str, header: str) -> None:
    fn = find_function(SOURCE, qualname)
    assert fn.source == source
    assert fn.header == header


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("def f(a,b):", "def f( a, b ):", id="spaces-in-brackets"),
        pytest.param("def f(a, b,):", "def f(a, b):", id="trailing-comma"),
        pytest.param("def f(\n    a,\n    b,\n):", "def f(a, b):", id="one-per-line"),
        pytest.param("def f(x:int=1):", "def f(x: int = 1):", id="typed-default"),
        pytest.param("def f(x = 1, *, y):", "def f(x=1, *, y):", id="default"),
        pytest.param("def f(a,  # why\n b):", "def f(a, b):", id="comment"),
    ],
)
def test_parameters_normalised(first: str, second: str) -> None:
    a = parse_candidate(first + "\n    pass\n").parameters
    b = parse_candidate(second + "\n    pass\n").parameters
    assert a == b


@pytest.mark.parametrize(
    ("header", "parameters"),
    [
        pytest.param("def f(self, x: int = 1):", "(self, x: int = 1)", id="docstring-example"),
        pytest.param("def f(x=(1, )):", "(x=(1,))", id="tuple-default-keeps-its-comma"),
        pytest.param('def f(x="a  b"):', '(x="a  b")', id="string-default-untouched"),
        pytest.param("def f(*args, **kwargs):", "(*args, **kwargs)", id="splats"),
        pytest.param("def f(a, /, b):", "(a, /, b)", id="positional-only"),
    ],
)
def test_parameters_text(header: str, parameters: str) -> None:
    assert parse_candidate(header + "\n    pass\n").parameters == parameters


@pytest.mark.parametrize(
    ("source", "location"),
    [
        pytest.param("def f(x:\n    return x\n", "line 1, column 1", id="unclosed-parameters"),
        pytest.param("def f(:\n    pass\n", "line 1, column 7", id="missing-paren"),
        pytest.param("x = 1\ny = (\n", "line 2, column 1", id="unclosed-bracket-at-eof"),
        pytest.param("def f():\nreturn 1\n", "line 1, column 9", id="missing-indented-block"),
        pytest.param(
            "s = 'é😀'\ndef f(:\n    pass\n", "line 2, column 7", id="after-non-ascii-line"
        ),
        pytest.param('x = ["é😀", 1 2]\n', "line 1, column 14", id="column-in-characters"),
        pytest.param("def é😀(x):\n    pass\n", "line 1, column 6", id="emoji-identifier"),
    ],
)
def test_syntax_errors_name_line_and_column(source: str, location: str) -> None:
    with pytest.raises(SourceError, match=re.escape(f"syntax error at {location}")):
        parse_functions(source)
    with pytest.raises(SourceError, match="syntax error at line"):
        find_function(source, "f")
    with pytest.raises(SourceError, match="syntax error at line"):
        function_at(source, 0)


def _offset(marker: str) -> int:
    """Byte offset of ``marker`` (which must occur once) in SOURCE."""
    assert SOURCE.count(marker) == 1, marker
    return len(SOURCE[: SOURCE.index(marker)].encode("utf-8"))


@pytest.mark.parametrize(
    ("marker", "end_marker", "expected"),
    [
        pytest.param("total = 0", None, "plain", id="inside-plain"),
        pytest.param("@cache(", None, "fetch", id="on-decorator"),
        pytest.param("k + n", None, "outer.inner", id="innermost-nested"),
        pytest.param("inner(1)", None, "outer.Local.method", id="innermost-method-in-function"),
        pytest.param("return inner(n)", None, "outer", id="outer-after-nested"),
        pytest.param("Counter()", None, "Shape.Inner.deep", id="nested-class-method"),
        pytest.param("def area", "return math.pi", "Shape.area", id="range-in-method"),
        pytest.param("def inner", "return inner(n)", "outer", id="range-spans-nested-and-outer"),
        pytest.param("sides = 0", None, None, id="class-body-outside-methods"),
        pytest.param("LIMIT: int", None, None, id="module-level"),
        pytest.param("def helper", "def plain", None, id="range-across-functions"),
    ],
)
def test_function_at(marker: str, end_marker: str | None, expected: str | None) -> None:
    start = _offset(marker)
    end = _offset(end_marker) if end_marker is not None else None
    fn = function_at(SOURCE, start, end)
    assert (fn.qualname if fn is not None else None) == expected
    if expected is not None:
        assert fn == find_function(SOURCE, expected)


def test_function_at_end_of_function_counts_as_inside() -> None:
    fn = find_function(SOURCE, "helper")
    found = function_at(SOURCE, fn.end_byte)
    assert found is not None
    assert found.qualname == "helper"


def test_find_function_not_found_lists_available_names() -> None:
    with pytest.raises(TargetNotFound) as caught:
        find_function(SOURCE, "Shape.volume")
    message = str(caught.value)
    assert "Shape.volume" in message
    for qualname in ("helper", "Shape.area", "outer.inner"):
        assert qualname in message


def test_find_function_not_found_truncates_long_lists() -> None:
    source = "".join(f"def f{i}():\n    pass\n" for i in range(25))
    with pytest.raises(TargetNotFound) as caught:
        find_function(source, "g")
    message = str(caught.value)
    assert "f9" in message
    assert "f10" not in message
    assert "15 more" in message


def test_find_function_in_file_without_functions() -> None:
    with pytest.raises(TargetNotFound, match="no functions"):
        find_function("x = 1\n", "f")


@pytest.mark.parametrize(
    ("qualname", "globals_used", "helpers", "class_header"),
    [
        pytest.param(
            "plain",
            ("SCALE = OFFSET = 2",),
            ("def helper(x):\n    return x * LIMIT",),
            None,
            id="constant-and-helper",
        ),
        pytest.param("helper", ("LIMIT: int = 10",), (), None, id="annotated-constant"),
        pytest.param(
            "Shape.area",
            ("SCALE = OFFSET = 2",),
            (),
            'class Shape(object):\n    """A shape with 中文 in its docstring."""',
            id="method-class-header",
        ),
        pytest.param(
            "Shape.name",
            ('TITLE = "café"',),
            (),
            'class Shape(object):\n    """A shape with 中文 in its docstring."""',
            id="non-ascii-constant",
        ),
        pytest.param(
            "Shape.Inner.deep", (), (), "class Inner:", id="nested-class-header-no-docstring"
        ),
        pytest.param("outer.inner", (), (), None, id="nested-function"),
    ],
)
def test_collect_context(
    qualname: str,
    globals_used: tuple[str, ...],
    helpers: tuple[str, ...],
    class_header: str | None,
) -> None:
    context = collect_context(SOURCE, find_function(SOURCE, qualname))
    assert context.imports == (
        "import math",
        "from collections import (\n    Counter,\n)",
        "import numpy as np",
    )
    assert context.globals_used == globals_used
    assert context.helpers == helpers
    assert context.class_header == class_header


def test_collect_context_helpers_are_classes_and_decorated_functions() -> None:
    source = (
        "import functools\n\n\n"
        "@functools.cache\n"
        "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n\n\n"
        "class Point:\n    pass\n\n\n"
        "def area(self):\n    return 0\n\n\n"
        "def use(p):\n    obj = Point()\n    return fib(p.area) + obj.area()\n"
    )
    context = collect_context(source, find_function(source, "use"))
    # ``area`` is only an attribute name here, so the module-level ``area`` is not a helper.
    assert context.helpers == (
        "@functools.cache\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)",
        "class Point:\n    pass",
    )
    assert context.globals_used == ()
    assert context.class_header is None


def test_collect_context_excludes_the_function_and_its_class() -> None:
    source = (
        "class Node:\n    def walk(self):\n        return Node.walk(self)\n\n\n"
        "def rec(n):\n    return rec(n - 1)\n"
    )
    assert collect_context(source, find_function(source, "Node.walk")).helpers == ()
    assert collect_context(source, find_function(source, "rec")).helpers == ()


def test_collect_context_of_a_stale_function() -> None:
    fn = find_function(SOURCE, "plain")
    with pytest.raises(TargetNotFound):
        collect_context("def plain():\n    pass\n", fn)


@pytest.mark.parametrize(
    ("text", "qualname", "source"),
    [
        pytest.param("def f(x):\n    return x\n", "f", "def f(x):\n    return x", id="plain"),
        pytest.param(
            "import math\n\n@cache\ndef f(x):\n    return math.sqrt(x)\n",
            "f",
            "@cache\ndef f(x):\n    return math.sqrt(x)",
            id="import-and-decorator",
        ),
        pytest.param(
            "async def g():\n    return 1\n\n\ndef h():\n    pass\n",
            "g",
            "async def g():\n    return 1",
            id="first-of-several",
        ),
        pytest.param(
            "def 函数(é):\n    return '😀' * é\n",
            "函数",
            "def 函数(é):\n    return '😀' * é",
            id="non-ascii",
        ),
    ],
)
def test_parse_candidate_accepts(text: str, qualname: str, source: str) -> None:
    fn = parse_candidate(text)
    assert isinstance(fn, FunctionInfo)
    assert fn.qualname == qualname
    assert fn.source == source
    assert fn.class_name is None
    assert not fn.is_nested


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "Here is the optimized function:\n\ndef f(x):\n    return x\n",
            "syntax error at line 1",
            id="leading-prose",
        ),
        pytest.param(
            "def f(x):\n    return x\n\nThis version is faster because it avoids a loop.\n",
            "syntax error at line 4",
            id="trailing-prose",
        ),
        pytest.param(
            "def f(x):\n    return [y for y in range(x)\n", "syntax error", id="unclosed-bracket"
        ),
        pytest.param("def f(x):\n", "syntax error", id="no-body"),
        pytest.param("x = 1\nprint(x)\n", "no function", id="no-function"),
        pytest.param("class A:\n    def f(self):\n        pass\n", "no function", id="only-method"),
        pytest.param("", "no function", id="empty"),
    ],
)
def test_parse_candidate_rejects(text: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        parse_candidate(text)


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        pytest.param("x = 1\n", frozenset(), id="no-strings"),
        pytest.param('s = """a\n  b\nc"""\n', frozenset({1, 2}), id="triple-quoted"),
        pytest.param("s = f'''{x}\n'''\n", frozenset({1}), id="f-string"),
        pytest.param('s = "a" "b"\n', frozenset(), id="one-line"),
    ],
)
def test_string_continuation_lines(text: str, lines: frozenset[int]) -> None:
    assert string_continuation_lines(text) == lines


# --- the parse cache: trees reused incrementally must equal fresh parses ------------------


def _shape(tree: Any) -> list[tuple[Any, ...]]:
    """Every node of ``tree`` in document order: kind, bytes, points and error flags."""
    found: list[tuple[Any, ...]] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        found.append(
            (
                node.type,
                node.start_byte,
                node.end_byte,
                tuple(node.start_point),
                tuple(node.end_point),
                node.is_missing,
                node.is_error,
                node.has_error,
            )
        )
        stack.extend(reversed(node.children))
    return found


def _outcome(compute: Callable[[], Any]) -> Any:
    try:
        return compute()
    except SourceError as err:
        return f"SourceError: {err}"


def _uncached(compute: Callable[[], Any]) -> Any:
    """``compute()`` with every isolate cache empty and off; the caches as they were after."""
    saved = dict(isolate._CACHE)
    isolate._CACHE.clear()
    isolate._parse_functions_cached.cache_clear()
    isolate._function_at_cached.cache_clear()
    try:
        with mock.patch.object(isolate, "CACHE_MIN_BYTES", 1 << 62):
            return _outcome(compute)
    finally:
        isolate._CACHE.update(saved)
        isolate._parse_functions_cached.cache_clear()
        isolate._function_at_cached.cache_clear()


@contextlib.contextmanager
def _cache_everything() -> Iterator[None]:
    """The parse cache on for every text (the small ones of these tests too), empty."""
    isolate._CACHE.clear()
    isolate._parse_functions_cached.cache_clear()
    isolate._function_at_cached.cache_clear()
    with mock.patch.object(isolate, "CACHE_MIN_BYTES", 0):
        yield
    isolate._CACHE.clear()


BASES = {
    "ascii": "import os\n\nLIMIT = 3\n\n\ndef f(x):\n    return x + LIMIT\n\n\nclass C:\n"
    "    def m(self):\n        '''doc\n  kept'''\n        return 1\n",
    "multibyte": "T = 'café 中文'\n\n\ndef g(s):\n    return s + 'é'  # ß\n",
    "astral": "E = '😀𝕏'\n\n\n@dec\ndef h(y):\n    return E * y  # 😀\n",
    "crlf": "def f(x):\r\n    return x\r\n\r\n\r\ndef g():\r\n    pass\r\n",
    "syntax-error": "def f(x:\n    return x\n\n\ndef g():\n    pass\n",
}
PIECES = [
    "x", "é", "中", "😀", "𝕏", " ", "    ", "\n", "\r\n", ":", "(", ")", "def ", "return ",
    "'''", "#", "=", "1", "pass\n", "\ndef k():\n    return 2\n",
]  # fmt: skip


@pytest.mark.parametrize(
    "base", [pytest.param(text, id=name) for name, text in BASES.items()]
)  # fmt: skip
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=1),
            st.integers(min_value=0, max_value=6),
            st.lists(st.sampled_from(PIECES), max_size=3).map("".join),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_an_incremental_parse_equals_a_fresh_one(
    base: str, edits: list[tuple[float, int, str]]
) -> None:
    # Where tree-sitter's error recovery puts an error in a text that does not parse depends
    # on what the parser parsed before (a fresh parse too), so for such a text only the
    # verdict is compared: a SourceError either way.
    with _cache_everything():
        text = base
        isolate._parsed(text)
        for where, deleted, inserted in edits:
            start = round(where * len(text))
            text = text[:start] + inserted + text[start + deleted :]
            parsed = isolate._parsed(text)
            fresh = Parser(isolate._LANGUAGE).parse(text.encode("utf-8"))
            assert parsed.tree.root_node.has_error == fresh.root_node.has_error
            if not fresh.root_node.has_error:
                assert _shape(parsed.tree) == _shape(fresh)
            for offset in sorted({0, len(parsed.data) // 2, len(parsed.data)}):
                at = functools.partial(function_at, text, offset)
                assert _verdict(_outcome(at)) == _verdict(_uncached(at))
            every = functools.partial(parse_functions, text)
            assert _verdict(_outcome(every)) == _verdict(_uncached(every))


def _verdict(outcome: Any) -> Any:
    """The outcome, or only that it was a SourceError (see above)."""
    return "SourceError" if isinstance(outcome, str) else outcome


@pytest.mark.parametrize(
    ("old", "new", "edit"),
    [
        pytest.param("abcdef", "abXcdef", (2, 2, 3), id="insert"),
        pytest.param("abcdef", "abef", (2, 4, 2), id="delete"),
        pytest.param("abcdef", "abcdef", (6, 6, 6), id="same-text"),
        pytest.param("aaaa", "aaaaa", (4, 4, 5), id="repeated-text-prefix-first"),
        pytest.param("xcafé!", "xcafè!", (4, 6, 6), id="one-byte-apart-inside-a-character"),
        pytest.param("a😀bcdef", "a😁bcdef", (1, 5, 5), id="astral-characters-sharing-bytes"),
        pytest.param("a\r\nb", "a\nb", (1, 2, 1), id="crlf-to-lf"),
        pytest.param("abcdef", "uvwxyz", None, id="nothing-in-common"),
    ],
)
def test_the_edit_between_two_texts(old: str, new: str, edit: tuple[int, int, int] | None) -> None:
    assert isolate._edit_between(old.encode(), new.encode()) == edit


def test_a_text_parsed_once_serves_every_caller_and_thread() -> None:
    text = SOURCE + "\n" + "\n".join(f"def filler_{i}():\n    return {i}\n" for i in range(300))
    assert len(text.encode()) >= isolate.CACHE_MIN_BYTES
    isolate._CACHE.clear()
    done = threading.Event()

    def engine_thread() -> None:
        collect_context(text, find_function(text, "plain"))
        done.set()

    parsed_before = dict(isolate._STATS)
    functions = parse_functions(text)  # the server's event loop, say
    threading.Thread(target=engine_thread).start()
    assert done.wait(timeout=60)
    string_continuation_lines(text)
    assert isolate._STATS["fresh"] == parsed_before["fresh"] + 1
    assert isolate._STATS["incremental"] == parsed_before["incremental"]

    edited = text.replace("return 150\n", "return 151\n")
    assert function_at(edited, edited.index("return 151")) == dataclasses.replace(
        next(fn for fn in functions if fn.name == "filler_150"),
        source="def filler_150():\n    return 151",
    )
    assert isolate._STATS["incremental"] == parsed_before["incremental"] + 1
