"""Extraction of a candidate from the model's reply, and the repair of renamed parameters."""

from __future__ import annotations

import pytest

from speedsmith.isolate import find_function
from speedsmith.search.prompt import extract
from speedsmith.search.rename import restore_parameter_names

JOIN = """def join_words(words, sep=" "):
    text = ""
    for word in words:
        if text:
            text = text + sep
        text = text + word
    return text
"""


@pytest.mark.parametrize(
    ("reply", "source", "error"),
    [
        pytest.param(
            "def join_words(words, sep=' '):\n    return sep.join(words)\n```\nprose",
            "def join_words(words, sep=' '):\n    return sep.join(words)",
            "",
            id="closing-fence-and-prose-cut",
        ),
        pytest.param(
            "    def join_words(words, sep=' '):\n        return sep.join(words)\n",
            "def join_words(words, sep=' '):\n    return sep.join(words)",
            "",
            id="indented-reply",
        ),
        pytest.param(
            "def join_words(text, sep=' '):\n    return sep.join(text)  # keep\n",
            "def join_words(words, sep=' '):\n    return sep.join(words)  # keep",
            "",
            id="renamed-parameter-restored",
        ),
        pytest.param(
            "def join_words(text, sep=' '):\n    return sep.join(words)\n",
            None,
            "changed the parameters to (text, sep=' ')",
            id="renamed-but-uses-the-old-name",
        ),
        pytest.param(
            "def join_words(words):\n    return ' '.join(words)\n",
            None,
            "changed the parameters to (words)",
            id="dropped-a-parameter",
        ),
        pytest.param(
            "def join(words, sep=' '):\n    return sep.join(words)\n",
            "def join_words(words, sep=' '):\n    return sep.join(words)",
            "",
            id="renamed-function-restored-attributes-untouched",
        ),
        pytest.param(
            "def join_words2(words, sep=' '):\n    return join_words(words, sep)\n",
            None,
            "renamed the function to 'join_words2'",
            id="renamed-but-calls-the-old-name",
        ),
        pytest.param("", None, "empty reply", id="empty"),
    ],
)
def test_extract(reply: str, source: str | None, error: str) -> None:
    original = find_function(JOIN, "join_words")
    extracted = extract(reply, original)
    assert extracted.source == source
    assert extracted.error.startswith(error)


@pytest.mark.parametrize(
    ("original", "candidate", "expected"),
    [
        pytest.param(
            "def f(words):\n    pass\n",
            "def f(text):\n    return ' '.join(w for w in text if w)  # text\n",
            "def f(words):\n    return ' '.join(w for w in words if w)  # text\n",
            id="uses-renamed-comment-untouched",
        ),
        pytest.param(
            "def f(a, b):\n    pass\n",
            "def f(b, a):\n    return a - b\n",
            None,
            id="swap-refused",
        ),
        pytest.param(
            "def f(xs):\n    pass\n",
            "def f(ys):\n    return [y.ys for y in ys] + [g(ys=1)]\n",
            "def f(xs):\n    return [y.ys for y in xs] + [g(ys=1)]\n",
            id="attributes-and-keywords-kept",
        ),
        pytest.param(
            "def f(xs):\n    pass\n",
            "def f(ys):\n    return f'{ys!r} {len(ys)}'\n",
            "def f(xs):\n    return f'{xs!r} {len(xs)}'\n",
            id="f-string",
        ),
        pytest.param(
            "def f(xs):\n    pass\n",
            "def f(ys):\n    return (lambda ys: ys)(ys)\n",
            "def f(xs):\n    return (lambda xs: xs)(xs)\n",
            id="shadowing-renamed-consistently",
        ),
        pytest.param(
            "def f(é):\n    pass\n",
            "def f(ü):\n    return 'ß' + ü + 'ß' + ü\n",
            "def f(é):\n    return 'ß' + é + 'ß' + é\n",
            id="non-ascii-byte-columns",
        ),
        pytest.param(
            "def f(xs, *, key=None):\n    pass\n",
            "def f(ys, *, key=None):\n    return sorted(ys, key=key)\n",
            "def f(xs, *, key=None):\n    return sorted(xs, key=key)\n",
            id="keyword-only-kept",
        ),
        pytest.param(
            "def f(xs, *, key=None):\n    pass\n",
            "def f(xs, key=None):\n    return sorted(xs, key=key)\n",
            None,
            id="kind-changed",
        ),
        pytest.param(
            "def f(xs, n=1):\n    pass\n",
            "def f(ys, n=2):\n    return ys * n\n",
            None,
            id="default-changed",
        ),
        pytest.param(
            "def f(xs: list[int]):\n    pass\n",
            "def f(ys: list):\n    return ys\n",
            None,
            id="annotation-changed",
        ),
        pytest.param(
            "def f(xs):\n    pass\n",
            "def f(ys):\n    def g():\n        nonlocal ys\n        ys = 1\n    return ys\n",
            None,
            id="nonlocal-refused",
        ),
        pytest.param(
            "def f(xs, s=' '):\n    pass\n",
            'def f(xs, s = " "):\n    return s.join(xs)\n',
            'def f(xs, s = " "):\n    return s.join(xs)\n',
            id="same-tree-unchanged",
        ),
    ],
)
def test_restore_parameter_names(original: str, candidate: str, expected: str | None) -> None:
    assert restore_parameter_names(candidate, original) == expected
