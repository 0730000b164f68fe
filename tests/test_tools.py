"""Zero-token candidates: each transform's exact output on small functions, what it must leave
alone, and that tool candidates enter the search first, cost nothing and are verified like the
model's (``core.Search.add_tool_candidates``)."""

from __future__ import annotations

import textwrap

import pytest

from speedsmith.isolate import collect_context, find_function
from speedsmith.search import patterns, tools
from speedsmith.search.tools import (
    bisect_scan,
    cache_recursion,
    dict_comprehension,
    format_fstring,
    list_argument,
    local_aliases,
    manual_count,
    minmax_inline,
    regex_once,
    set_membership,
    string_join,
    tool_candidates,
)


def _fn(module: str, name: str = "f"):
    module = textwrap.dedent(module)
    fn = find_function(module, name)
    return fn, collect_context(module, fn)


@pytest.mark.parametrize(
    ("transform", "module", "expected"),
    [
        pytest.param(
            regex_once,
            '''
            import re
            def f(words):
                """Doc."""
                return [re.sub(r"\\s+", " ", w, flags=re.I) for w in words]
            ''',
            'def f(words):\n    """Doc."""\n    _re_sub = re.compile(r"\\s+", re.I).sub\n'
            '    return [_re_sub(" ", w) for w in words]',
            id="regex-sub-flags",
        ),
        pytest.param(
            regex_once,
            """
            import re
            def f(lines):
                n = 0
                for s in lines:  # count
                    if re.match("a+", s):
                        n += 1
                return n
            """,
            'def f(lines):\n    _re_match = re.compile("a+").match\n    n = 0\n'
            "    for s in lines:  # count\n        if _re_match(s):\n            n += 1\n"
            "    return n",
            id="regex-match-keeps-comments",
        ),
        pytest.param(
            set_membership,
            """
            def f(xs):
                return [x for x in xs if x not in ["a", "b", "c"]]
            """,
            'def f(xs):\n    return [x for x in xs if x not in {"a", "b", "c"}]',
            id="list-literal",
        ),
        pytest.param(
            set_membership,
            """
            def f(xs, banned):
                out = 0
                for x in xs:
                    if x in banned:
                        out += 1
                return out
            """,
            "def f(xs, banned):\n    out = 0\n    _banned_set = set(banned)\n    for x in xs:\n"
            "        if x in _banned_set:\n            out += 1\n    return out",
            id="name-in-loop",
        ),
        pytest.param(
            local_aliases,
            """
            import math
            def f(xs):
                out = []
                for x in xs:
                    out.append(math.sqrt(x))
                return out
            """,
            "def f(xs):\n    out = []\n    _out_append = out.append\n    _math_sqrt = math.sqrt\n"
            "    for x in xs:\n        _out_append(_math_sqrt(x))\n    return out",
            id="aliases",
        ),
    ],
)
def test_transform_output(transform, module: str, expected: str):
    fn, context = _fn(module)
    assert transform(fn.source, context) == expected


def _run(module: str, source: str | None, calls: list[tuple]) -> list:
    """``f`` of the module (with ``source`` put in its place) on each call: results or the
    type of the exception raised."""
    namespace: dict = {}
    exec(textwrap.dedent(module), namespace)
    if source is not None:
        exec(source, namespace)
    results = []
    for args in calls:
        try:
            results.append(namespace["f"](*args))
        except Exception as error:  # the exception is the result
            results.append(type(error))
    return results


@pytest.mark.parametrize(
    ("transform", "module", "expected", "calls"),
    [
        pytest.param(
            minmax_inline,
            """
            def f(x, lower=0, upper=10):
                return min(max(x, lower), upper)
            """,
            "def f(x, lower=0, upper=10):\n"
            "    return upper if upper < (_first := (lower if lower > x else x)) else _first",
            [(-3,), (4,), (10,), (12.5,), (float("nan"),), (3, 5, 1), ("a", "b", "c"), (1, "a")],
            id="minmax-clamp",
        ),
        pytest.param(
            minmax_inline,
            """
            def f(xs, b):
                y = max(b, 1) + min(b, len(xs))
                return [min(x, 2) for x in xs], y
            """,
            "def f(xs, b):\n"
            "    y = (1 if 1 > b else b) + (_second if (_second := len(xs)) < b else b)\n"
            "    return [(2 if 2 < x else x) for x in xs], y",
            [([1, 5, 2.0], 0), ([], 3), ([2, 2], 2.0)],
            id="minmax-walrus-and-comprehension",
        ),
        pytest.param(
            list_argument,
            """
            def f(s):
                return ''.join(w.capitalize() or '_' for w in s.split('_'))
            """,
            "def f(s):\n    return ''.join([w.capitalize() or '_' for w in s.split('_')])",
            [("complex_tokenizer",), ("__a__",), ("",), (3,)],
            id="list-argument-join",
        ),
        pytest.param(
            list_argument,
            """
            def f(fs, x):
                return tuple(g(x) for g in fs), sorted((k for k in x), key=abs)
            """,
            "def f(fs, x):\n    return tuple([g(x) for g in fs]), sorted([k for k in x], key=abs)",
            [([len, sorted], [3, -1, 2]), ([], []), ([abs], [1])],
            id="list-argument-tuple-sorted",
        ),
        pytest.param(
            manual_count,
            """
            import collections
            def f(seq):
                d = collections.defaultdict(int)
                for item in seq:
                    d[item] += 1
                return dict(d)
            """,
            "def f(seq):\n    d = collections.defaultdict(int)\n"
            "    d.update(collections.Counter(seq))\n    return dict(d)",
            [(["cat", "ox", "cat"],), ("onomatopoeia",), ([],), ([[1]],)],
            id="count-defaultdict",
        ),
        pytest.param(
            manual_count,
            """
            def f(words):
                counts = {}
                for w in words:
                    if w.lower() not in counts:
                        counts[w.lower()] = 1
                    else:
                        counts[w.lower()] += 1
                return counts
            """,
            "def f(words):\n    counts = {}\n"
            "    from collections import Counter as _Counter\n"
            "    counts.update(_Counter(w.lower() for w in words))\n    return counts",
            [(["A", "b", "a"],), ([],), ([1],)],
            id="count-if-in",
        ),
        pytest.param(
            manual_count,
            """
            from collections import Counter
            def f(pairs):
                c = {}
                for a, _b in pairs:
                    c[a] = c.get(a, 0) + 1
                return c
            """,
            "def f(pairs):\n    c = {}\n    c.update(Counter(a for a, _b in pairs))\n    return c",
            [([(1, 2), (1, 3), (2, 2)],), ([],)],
            id="count-get",
        ),
        pytest.param(
            dict_comprehension,
            """
            def f(xs):
                out = {}
                for i, x in enumerate(xs):
                    if x:
                        out[x] = i * 2
                return out
            """,
            "def f(xs):\n    out = {x: i * 2 for i, x in enumerate(xs) if x}\n    return out",
            [([0, "a", "b", "a"],), ([],), ([[1]],)],
            id="dict-comprehension-if",
        ),
        pytest.param(
            string_join,
            """
            def f(words, sep):
                s = ''
                for w in words:
                    if w:
                        s += w + sep  # piece
                return s
            """,
            "def f(words, sep):\n    _s_parts = []\n    for w in words:\n        if w:\n"
            "            _s_parts.append(w + sep)  # piece\n    s = ''.join(_s_parts)\n"
            "    return s",
            [(["a", "", "b"], ","), ([], "-"), (["a", 1], ",")],
            id="string-join",
        ),
        pytest.param(
            cache_recursion,
            "def f(n, k=1):\n"
            '    """Doc\n    lines."""\n'
            "    if n < 2:  # base\n"
            "        return n * k\n"
            "    return f(n - 1, k) + f(n - 2, k)\n",
            'def f(n, k=1):\n    """Doc\n    lines."""\n'
            "    from functools import lru_cache as _lru_cache\n"
            "    @_lru_cache(maxsize=None)\n    def _f(n, k=1):\n        if n < 2:  # base\n"
            "            return n * k\n        return _f(n - 1, k) + _f(n - 2, k)\n"
            "    return _f(n, k)",
            [(0,), (10,), (25, 2), ([1],)],
            id="cache-recursion",
        ),
        pytest.param(
            format_fstring,
            """
            def f(nbytes, ndigits=0):
                hnbytes = nbytes / 1024
                symbol = "K"
                return '{hnbytes:.{ndigits}f}{symbol}'.format(hnbytes=hnbytes,
                                                              ndigits=ndigits,
                                                              symbol=symbol)
            """,
            'def f(nbytes, ndigits=0):\n    hnbytes = nbytes / 1024\n    symbol = "K"\n'
            "    return f'{hnbytes:.{ndigits}f}{symbol}'",
            [(128991,), (0, 2), (1, "x")],
            id="format-nested-spec",
        ),
        pytest.param(
            format_fstring,
            """
            def f(a, b):
                return '{} {{x}} {!r:>{}}'.format(a, b, 5) + '{0}{1}{0}'.format(a, b)
            """,
            "def f(a, b):\n    return f'{a} {{x}} {b!r:>{5}}' + f'{a}{b}{a}'",
            [(1, "y"), ("", None)],
            id="format-positional",
        ),
        pytest.param(
            bisect_scan,
            """
            import bisect
            def f(xs, x):
                for i, v in enumerate(xs):
                    if v >= x:
                        return i
                return len(xs)
            """,
            "def f(xs, x):\n    return bisect.bisect_left(xs, x)",
            [([1, 3, 3, 7], 3), ([1, 3], 9), ([], 0), ([1, 2], 0)],
            id="bisect-left",
        ),
        pytest.param(
            bisect_scan,
            """
            def f(xs, x):
                for i, v in enumerate(xs):
                    if x < v:
                        return i
                return len(xs)
            """,
            "def f(xs, x):\n    from bisect import bisect_right as _bisect_right\n"
            "    return _bisect_right(xs, x)",
            [([1, 3, 3, 7], 3), ([1, 3], 9), ([], 0)],
            id="bisect-right",
        ),
    ],
)
def test_transform_output_is_equivalent(transform, module: str, expected: str, calls: list):
    fn, context = _fn(module)
    rewritten = transform(fn.source, context)
    assert rewritten == expected
    assert _run(module, rewritten, calls) == _run(module, None, calls)


@pytest.mark.parametrize(
    ("transform", "module"),
    [
        pytest.param(
            regex_once,
            "import re\ndef f(s):\n    return re.sub('a', 'b', s)\n",
            id="regex-outside-loop",
        ),
        pytest.param(
            regex_once,
            "import re\ndef f(ps, s):\n    return [re.sub(p, '', s) for p in ps]\n",
            id="regex-variable-pattern",
        ),
        pytest.param(
            regex_once,
            "import regex as re\ndef f(xs):\n    return [re.sub('a', '', s) for s in xs]\n",
            id="not-the-re-module",
        ),
        pytest.param(
            regex_once,
            "import re\ndef f(xs):\n    return [re.sub('a', '', s, 0, re.I) for s in xs]\n",
            id="positional-flags",
        ),
        pytest.param(
            set_membership,
            "def f(xs, seen):\n    for x in xs:\n        if x in seen:\n"
            "            seen.append(x)\n",
            id="mutated-name",
        ),
        pytest.param(
            set_membership,
            "def f(xs):\n    return [x for x in xs if x in []]\n",
            id="empty-list",
        ),
        pytest.param(
            set_membership,
            "def f(xs, y):\n    return [x for x in xs if x in [y, 2]]\n",
            id="non-constant-element",
        ),
        pytest.param(
            local_aliases,
            "def f(xs):\n    for x in xs:\n        out = []\n        out.append(x)\n",
            id="rebound-in-loop",
        ),
        pytest.param(
            local_aliases,
            "def f(xs):\n    for x in xs:\n        x.strip()\n",
            id="loop-variable",
        ),
        pytest.param(
            local_aliases,
            "def f(o, xs):\n    for x in xs:\n        o.g = x\n        o.g(x)\n",
            id="attribute-assigned-in-loop",
        ),
        pytest.param(
            minmax_inline,
            "def f(a, b):\n    return min(a + 1, b * 2)\n",
            id="minmax-two-expressions",
        ),
        pytest.param(
            minmax_inline,
            "def f(xs):\n    return min(xs), max(1, 2, 3), min(1, 2, key=abs)\n",
            id="minmax-not-two-positional",
        ),
        pytest.param(
            minmax_inline,
            "def f(a, b):\n    def min(x, y):\n        return x\n    return min(a, b)\n",
            id="minmax-shadowed",
        ),
        pytest.param(
            minmax_inline,
            "def f(xs, b):\n    return [min(x + 1, b) for x in xs]\n",
            id="minmax-walrus-in-comprehension",
        ),
        pytest.param(
            list_argument,
            "def f(xs):\n    return any(x for x in xs), sum(x for x in xs), list(xs)\n",
            id="list-argument-lazy-consumers",
        ),
        pytest.param(
            list_argument,
            "def f(xs):\n    tuple = list\n    return tuple(x for x in xs)\n",
            id="list-argument-shadowed",
        ),
        pytest.param(
            manual_count,
            "def f(xs):\n    c = {}\n    for a in xs:\n        c[a] += 1\n    return c\n",
            id="count-plain-dict-increment",
        ),
        pytest.param(
            manual_count,
            "def f(xs):\n    c = {}\n    for a in xs:\n        c[a] = c.get(a, 0) + 1\n"
            "    return c, a\n",
            id="count-loop-variable-used-after",
        ),
        pytest.param(
            manual_count,
            "def f(xs, c):\n    for a in xs:\n        c[a] = c.get(a, 0) + 1\n    return c\n",
            id="count-mapping-not-created-empty",
        ),
        pytest.param(
            dict_comprehension,
            "def f(xs):\n    d = {}\n    for x in xs:\n        d[x] = len(d)\n    return d\n",
            id="dict-read-in-loop",
        ),
        pytest.param(
            dict_comprehension,
            "def f(xs):\n    d = {}\n    for x in xs:\n        d[g(x)] = h(x)\n    return d\n",
            id="dict-key-and-value-both-calls",
        ),
        pytest.param(
            dict_comprehension,
            "def f(xs):\n    d = {}\n    n = 0\n    for x in xs:\n        d[x] = 1\n    return d\n",
            id="dict-not-right-before",
        ),
        pytest.param(
            string_join,
            "def f(ws):\n    s = ''\n    for w in ws:\n        s += w\n        if len(s) > 3:\n"
            "            break\n    return s\n",
            id="join-read-in-loop",
        ),
        pytest.param(
            string_join,
            "def f(ws):\n    s = ''\n    try:\n        for w in ws:\n            s += w\n"
            "    except TypeError:\n        return s\n    return s\n",
            id="join-inside-try",
        ),
        pytest.param(
            cache_recursion,
            "def f(n):\n    return n if n < 2 else f(n - 1) * 2\n",
            id="cache-single-recursion",
        ),
        pytest.param(
            cache_recursion,
            "def f(n, *rest):\n    return n if n < 2 else f(n - 1) + f(n - 2)\n",
            id="cache-varargs",
        ),
        pytest.param(
            cache_recursion,
            "def f(n, seen=[]):\n    return n if n < 2 else f(n - 1) + f(n - 2)\n",
            id="cache-mutable-default",
        ),
        pytest.param(
            format_fstring,
            "def f(a, b):\n    return '{a.x}'.format(a=a), '{}'.format(a, b), '{}'.format(a + 1)\n",
            id="format-attribute-unused-or-expression",
        ),
        pytest.param(
            format_fstring,
            "def f(a):\n    return '{}' '{}'.format(a, a), b'{}'.format(a), '\\\\t{}'.format(a)\n",
            id="format-concatenated-bytes-escapes",
        ),
        pytest.param(
            bisect_scan,
            "def f(xs, x):\n    for i, v in enumerate(xs):\n        if v >= i:\n"
            "            return i\n    return len(xs)\n",
            id="bisect-bound-uses-index",
        ),
        pytest.param(
            bisect_scan,
            "def f(xs, x):\n    for i, v in enumerate(xs):\n        if v >= x:\n"
            "            return i\n    return -1\n",
            id="bisect-not-len-after",
        ),
    ],
)
def test_transform_leaves_alone(transform, module: str):
    fn, context = _fn(module)
    assert transform(fn.source, context) is None


def test_tool_candidates_are_distinct_and_capped():
    fn, context = _fn(
        """
        import re
        def f(xs, vocab):
            out = []
            for x in xs:
                if x in vocab and re.match("a", x):
                    out.append(x)
            return out
        """
    )
    made = tool_candidates(fn, context)
    names = [tool for tool, _source in made]
    assert len(set(source for _tool, source in made)) == len(made) <= tools.MAX_TOOL_CANDIDATES
    assert {"regex-once", "set-membership", "local-aliases"} <= set(names)
    assert fn.source not in {source for _tool, source in made}
    if patterns.ruff_binary() is not None:
        assert names[0] == "ruff"


def test_without_ruff_the_own_transforms_still_run(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(patterns, "ruff_binary", lambda: None)
    fn, context = _fn("def f(xs):\n    return [x for x in xs if x in [1, 2]]\n")
    assert [tool for tool, _ in tool_candidates(fn, context)] == ["set-membership"]


def test_the_last_place_is_kept_for_the_chain():
    fn, context = _fn(
        """
        import re
        def f(xs, vocab):
            counts = {}
            for y in xs:
                counts[y] = counts.get(y, 0) + 1
            out = []
            for x in xs:
                if x in vocab and re.match("a", x):
                    out.append(min(x, "b"))
            return counts, "".join(w for w in out), "{:>{}}".format(vocab, 3)
        """
    )
    made = tool_candidates(fn, context)
    assert len(made) == tools.MAX_TOOL_CANDIDATES
    assert made[-1][0] == "combined"
    combined = made[-1][1]
    assert "_Counter(xs)" in combined and '"".join([' in combined
    assert "_re_match" in combined and 'f"{vocab:>{3}}"' in combined
