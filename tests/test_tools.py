"""Zero-token candidates: each transform's exact output on small functions, what it must leave
alone, and that tool candidates enter the search first, cost nothing and are verified like the
model's (``core.Search.add_tool_candidates``)."""

from __future__ import annotations

import textwrap

import pytest

from speedsmith.isolate import collect_context, find_function
from speedsmith.search import patterns, tools
from speedsmith.search.tools import local_aliases, regex_once, set_membership, tool_candidates


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
