"""Every token counts: the model sees the function without docstring and comments, the
docstring is spliced back verbatim, caps and presets scale with the code, replies cut off by
the cap are counted as truncated (not as syntax errors), tool candidates cost no tokens."""

from __future__ import annotations

import textwrap
import threading

import pytest

from speedsmith.isolate import collect_context, find_function
from speedsmith.llm.base import Generation, Prompt
from speedsmith.search.budget import MIN_CANDIDATES, TOKEN_PRESETS, candidate_tokens, resolve
from speedsmith.search.prompt import build_prompt, extract, hot_lines_text, used_context
from speedsmith.search.strategies import StrategyConfig, run_search
from speedsmith.search.strip import splice_docstring, strip
from speedsmith.verify.verifier import HotLine, Verdict

MODULE = textwrap.dedent(
    '''
    import os
    import re
    from collections import OrderedDict

    LIMIT = 10


    def helper(x):
        """Helper doc."""
        return x  # same


    def f(items):
        """Sum the items.

            >>> f([1, 2])
            3
        """
        # a comment
        total = 0  # running
        for x in items:
            total += helper(x)

        return total
    '''
)
FN = find_function(MODULE, "f")
CONTEXT = collect_context(MODULE, FN)
DOC = '    """Sum the items.\n\n        >>> f([1, 2])\n        3\n    """'


@pytest.mark.parametrize(
    ("source", "code", "docstring"),
    [
        pytest.param(
            FN.source,
            "def f(items):\n    total = 0\n    for x in items:\n        total += helper(x)\n\n"
            "    return total",
            DOC,
            id="docstring-comments-blank",
        ),
        pytest.param(
            "def g(s):\n    return s + '# not a comment'  # one\n",
            "def g(s):\n    return s + '# not a comment'",
            "",
            id="hash-in-string",
        ),
        pytest.param(
            'def g():\n    """Only a docstring."""\n',
            'def g():\n    """Only a docstring."""',
            "",
            id="docstring-only-kept",
        ),
        pytest.param(
            '@dec\ndef g(x):  # head\n    "doc"; y = x\n    return y\n',
            '@dec\ndef g(x):\n    "doc"; y = x\n    return y',
            "",
            id="docstring-sharing-a-line-kept",
        ),
        pytest.param("def g(:\n", "def g(:\n", "", id="does-not-parse"),
    ],
)
def test_strip(source: str, code: str, docstring: str):
    stripped = strip(source)
    assert stripped.code == code
    assert "\n".join(stripped.docstring) == docstring


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        pytest.param(
            "def f(items):\n    return sum(helper(x) for x in items)\n",
            f"def f(items):\n{DOC}\n    return sum(helper(x) for x in items)\n",
            id="spliced",
        ),
        pytest.param(
            "def f(items):\n  '''Model's doc.'''\n  return sum(items)",
            "def f(items):\n" + "  " + DOC.lstrip() + "\n  return sum(items)",
            id="replaces-own-docstring-two-space-indent",
        ),
        pytest.param(
            "def f(items): return sum(items)\n",
            "def f(items): return sum(items)\n",
            id="one-line-left-alone",
        ),
    ],
)
def test_splice_docstring(candidate: str, expected: str):
    assert splice_docstring(candidate, FN.source) == expected


def test_splice_removes_a_docstring_the_original_does_not_have():
    original = "def g(x):\n    return x\n"
    assert splice_docstring('def g(x):\n    """New."""\n    return x\n', original) == original


def test_prompt_shows_code_only_and_the_context_it_uses():
    prompt = build_prompt(FN, CONTEXT)
    assert "Sum the items" not in prompt.user and "comment" not in prompt.user
    assert "running" not in prompt.user and "Helper doc" not in prompt.user
    assert "def helper(x):\n    return x" in prompt.user
    assert "import os" not in prompt.user and "import re" not in prompt.user
    assert "OrderedDict" not in prompt.user
    assert "Hints:" in prompt.user  # the += in a loop
    assert prompt.examples and "def" in prompt.examples[0][0]


@pytest.mark.parametrize(
    ("imports", "code", "kept"),
    [
        pytest.param(("import os", "import re"), "def f(p):\n    return os.sep", 1, id="os"),
        pytest.param(("import os.path",), "def f(p):\n    return os.path.join(p)", 1, id="dot"),
        pytest.param(("from a import (b,\n    c)",), "def f():\n    return c", 1, id="multi"),
        pytest.param(("from __future__ import annotations",), "def f(): pass", 1, id="future"),
        pytest.param(("from m import *",), "def f(): pass", 1, id="star"),
        pytest.param(("import numpy as np",), "def f(): return 1", 0, id="unused-alias"),
    ],
)
def test_used_context_imports(imports: tuple[str, ...], code: str, kept: int):
    context = CONTEXT.__class__(imports, (), (), None)
    assert len(used_context(context, code)) == kept


def test_hot_lines_are_numbered_as_the_model_sees_the_function():
    # file line of `total += helper(x)`: the stripped code shows it as line 4
    file_line = FN.start_line + 1 + FN.source.splitlines().index("        total += helper(x)")
    doc_line = FN.start_line + 2
    lines = [
        HotLine(file_line, 100, 0.6, 0.6, "total += helper(x)"),
        HotLine(doc_line, 1, 0.3, 0.3, '"""Sum the items.'),
    ]
    assert hot_lines_text(lines, FN) == (
        "Where the original spends its time: line 4 `total += helper(x)` 60% (100 runs)."
    )


@pytest.mark.parametrize(
    ("text", "hit_cap", "source", "truncated"),
    [
        pytest.param("def f(items):\n    return sum(items)\n", False, True, False, id="complete"),
        pytest.param(
            "def f(items):\n    total = 0\n    for x in items:\n        tot",
            True,
            None,
            True,
            id="cut-mid-line",
        ),
        pytest.param(
            "def f(items):\n    total = 0\n    for x in items:\n        total += x\n",
            True,
            None,
            True,
            id="cut-at-line-end-parses-but-unfinished",
        ),
        pytest.param(
            "def f(items):\n    return sum(items)\n\nprint(f([1]))\nprint(f(",
            True,
            True,
            False,
            id="function-ended-before-the-cut",
        ),
        pytest.param("def f(items)\n    return 1\n", False, None, False, id="syntax-error"),
    ],
)
def test_truncation(text: str, hit_cap: bool, source: bool | None, truncated: bool):
    extracted = extract(text, FN, hit_cap=hit_cap)
    assert (extracted.source is not None) == bool(source)
    assert extracted.truncated == truncated
    if extracted.source is not None:
        assert DOC in extracted.source, "the docstring is spliced back"


@pytest.mark.parametrize(
    ("chars", "cap"),
    [
        pytest.param(60, 128, id="tiny"),
        pytest.param(600, 400, id="medium"),
        pytest.param(1500, 1000, id="long"),
    ],
)
def test_caps_scale_with_the_code_not_the_docstring(chars: int, cap: int):
    body = "    x = 1\n" * (chars // 10)
    doc = '    """' + "words " * 400 + '"""\n'
    plain = "def g():\n" + body + "    return x\n"
    documented = "def g():\n" + doc + body + "    return x\n"
    assert candidate_tokens(documented) == candidate_tokens(plain)
    assert abs(candidate_tokens(plain) - cap) <= 20


@pytest.mark.parametrize("preset", [pytest.param(p, id=p) for p in TOKEN_PRESETS])
@pytest.mark.parametrize("cap", [pytest.param(128, id="small"), pytest.param(900, id="long")])
def test_presets_pay_for_a_minimum_of_candidates(preset: str, cap: int):
    spec = resolve(preset, None, cap)
    assert spec.tokens >= MIN_CANDIDATES[preset] * cap
    assert spec.tokens >= TOKEN_PRESETS[preset]
    if cap == 128:
        assert spec.tokens == TOKEN_PRESETS[preset], "small functions keep the old presets"


class CapBackend:
    """Replies from a list; a reply marked with a leading '!' used all its tokens."""

    name = "cap"

    def __init__(self, replies: list[str]):
        self.replies = replies
        self.calls = 0

    def generate(
        self,
        prompt: Prompt,
        *,
        max_tokens: int,
        temperature: float,
        seed: int,
        stop: tuple[str, ...],
        cancel: threading.Event | None = None,
    ) -> Generation:
        text = self.replies[self.calls % len(self.replies)]
        self.calls += 1
        tokens = max_tokens if text.startswith("!") else 20
        return Generation(text.lstrip("!"), 10, tokens, 0.0)


def test_search_counts_truncated_and_tool_candidates():
    module = "def g(xs):\n    return [x for x in xs if x in [1, 2, 3]]\n"
    fn = find_function(module, "g")
    replies = [
        "def g(xs):\n    return [x for x in xs if x in (1, 2, 3)]\n",
        "!def g(xs):\n    return [x for x in xs\n",
        "def g(xs)\n",
    ]
    seen: list[str] = []

    def verifier(source: str) -> Verdict:
        seen.append(source)
        return Verdict(True, "1.50x", (), 1.5, (1.2, 1.8), True, 10)

    result = run_search(
        fn,
        collect_context(module, fn),
        CapBackend(replies),
        verifier,
        config=StrategyConfig(name="best-of-n"),
        budget=resolve(3, None, candidate_tokens(fn.source)),
        temperature=0.7,
        seed=1,
        progress=lambda phase, message: None,
    )
    assert result.tool >= 1 and result.attempts[0].tool, "tool candidates come first"
    assert result.attempts[0].completion_tokens == 0
    assert "{1, 2, 3}" in seen[0], "verified like any candidate"
    assert result.generated == result.tool + 3
    assert result.truncated == 1
    assert result.parsed == result.tool + 1
    truncated = next(a for a in result.attempts if a.truncated)
    assert truncated.source is None and "truncated" in truncated.error
    assert result.unparsed == {"truncated": 1, "does not parse": 1}


LONG_DOC = textwrap.dedent(
    '''
    def squares(nums):
        """Return the squares of ``nums``, in order.

        This docstring is long on purpose: the model must not re-type it. It explains
        the arguments, the result, the history of the function and gives examples
        that a real library would have, one line after another, costing tokens.

        Args:
            nums: a list of numbers.

        Returns:
            A new list with every number squared.
        """
        # build the result one item at a time
        out = []
        for i in range(len(nums)):
            out.append(nums[i] * nums[i])  # square
        return out
    '''
)


@pytest.mark.real_model
def test_real_model_writes_code_only_and_keeps_the_docstring():
    from speedsmith.engine import load_backend
    from speedsmith.llm.model import embedded_model_path
    from speedsmith.settings import Settings

    if not embedded_model_path().is_file():
        pytest.fail("the embedded model is not installed: run `speedsmith model fetch`")
    fn = find_function(LONG_DOC, "squares")
    docstring = "\n".join(strip(fn.source).docstring)
    prompts: list[str] = []
    backend = load_backend(Settings())

    class Recording:
        name = backend.name

        def generate(self, prompt: Prompt, **kwargs: object) -> Generation:
            prompts.append(prompt.user)
            return backend.generate(prompt, **kwargs)  # type: ignore[arg-type]

    result = run_search(
        fn,
        collect_context(LONG_DOC, fn),
        Recording(),
        lambda source: Verdict(False, "not equivalent"),
        config=StrategyConfig(name="best-of-n"),
        budget=resolve(3, None, candidate_tokens(fn.source)),
        temperature=0.7,
        seed=3,
        progress=lambda phase, message: None,
        tools=False,
    )
    assert result.generated == 3 and len(prompts) == 3
    assert not any("long on purpose" in p or "square" + "\n" in p for p in prompts)
    assert result.parsed >= 2, [a.error for a in result.attempts]
    assert not any(a.truncated for a in result.attempts)
    for attempt in result.attempts:
        if attempt.source is not None:
            assert docstring in attempt.source
            assert attempt.completion_tokens < candidate_tokens(fn.source)
        else:
            assert attempt.truncated == ("truncated" in attempt.error)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        pytest.param("return sum(items)\n", "return sum(items)", id="body-after-the-header"),
        pytest.param(
            "def f(items):\n    return sum(items)\n", "return sum(items)", id="restarted-def"
        ),
        pytest.param("def f(stuff):\n    return sum(stuff)\n", "return sum(items)", id="renamed"),
        pytest.param("\n", None, id="empty-body"),
    ],
)
def test_the_reply_continues_the_prefilled_header(reply: str, expected: str | None):
    prompt = build_prompt(FN, CONTEXT)
    assert prompt.prefill_code == "def f(items):\n    "
    assert prompt.prefill.endswith(prompt.prefill_code)
    from speedsmith.search.budget import Meter
    from speedsmith.search.core import Search, Slot

    search = Search(
        FN,
        CONTEXT,
        CapBackend([reply]),
        lambda source: Verdict(False, "no"),
        Meter(resolve(2, None, 128)),
        strategy="best-of-n",
        temperature=0.7,
        seed=1,
        progress=lambda phase, message: None,
    )
    draft = search.to_draft(prompt, Generation(reply, 10, 5, 0.0), Slot(), 128)
    if expected is None:
        assert draft.source is None
    else:
        assert draft.source is not None and expected in draft.source
        assert draft.source.startswith("def f(items):\n" + DOC)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            "def f(nums):\n     return sum(nums)",
            "def f(nums):\n    return sum(nums)",
            id="five-space-body",
        ),
        pytest.param(
            "def f(a):\n  for x in a:\n    y = (1,\n         2)\n  return a",
            "def f(a):\n    for x in a:\n        y = (1,\n             2)\n    return a",
            id="two-space-levels-and-brackets-move-with-their-statement",
        ),
        pytest.param(
            'def f(a):\n  s = """x\n   y"""\n  return s',
            'def f(a):\n    s = """x\n   y"""\n    return s',
            id="string-continuation-kept",
        ),
        pytest.param("def f(a):\n    return a", "def f(a):\n    return a", id="already-regular"),
        pytest.param(
            "def f(a):\n      if a:\n        return 1\n      return 2",
            "def f(a):\n    if a:\n        return 1\n    return 2",
            id="irregular-steps-mapped-by-level",
        ),
    ],
)
def test_regular_indentation(source: str, expected: str) -> None:
    from speedsmith.search.strip import regular_indentation

    assert regular_indentation(source) == expected
