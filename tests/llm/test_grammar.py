"""The code-reply grammar (``llm/grammar.py``) and constrained sampling in the batch engine
(``llm/batch.py``), with the embedded model's vocabulary."""

from __future__ import annotations

import ctypes
import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from speedsmith.isolate import collect_context, find_function
from speedsmith.llm.base import Prompt
from speedsmith.llm.grammar import MAX_LINE_RETRIES, code_grammar, syntax_state
from speedsmith.search.prompt import FENCE, build_prompt

SOURCE = "def total(xs):\n    s = 0\n    for x in xs:\n        s += x * x\n    return s\n"
FN = find_function(SOURCE, "total")


@pytest.fixture(scope="module")
def vocab_model(embedded_model: Path) -> Iterator[Any]:
    import llama_cpp

    model = llama_cpp.Llama(model_path=str(embedded_model), vocab_only=True, verbose=False)
    yield model
    model.close()


def _accepts(model: Any, text: str, *, indented: bool, statements: bool = False) -> bool:
    """Whether the grammar lets the model write ``text`` (token by token, as sampling would)."""
    import llama_cpp as lc

    vocab = model._model.vocab
    grammar = lc.llama_sampler_init_grammar(
        vocab, code_grammar(indented=indented, statements=statements).encode(), b"root"
    )
    assert grammar, "the grammar does not parse"
    try:
        for token in model.tokenize(text.encode(), add_bos=False, special=False):
            one = (lc.llama_token_data * 1)(lc.llama_token_data(token, 1.0, 0.0))
            check = lc.llama_token_data_array(data=one, size=1, selected=-1, sorted=False)
            lc.llama_sampler_apply(grammar, ctypes.byref(check))
            if math.isinf(one[0].logit):
                return False
            lc.llama_sampler_accept(grammar, token)
        return True
    finally:
        lc.llama_sampler_free(grammar)


@pytest.mark.parametrize(
    ("text", "indented", "valid"),
    [
        pytest.param(" return [x * x for x in xs]\n```", True, True, id="one-line"),
        pytest.param(
            " s = 0\n    for x in xs:\n        s += x\n\n    return s\n```", True, True, id="body"
        ),
        pytest.param(
            " return s.replace('(', \"[\").split('#{')\n```", True, True, id="brackets-as-text"
        ),
        pytest.param(' x = """a\n(b"\'"""\n    return x\n```', True, True, id="triple-quoted"),
        pytest.param(" return f(\n1,\n  [2])\n```", True, True, id="bracket-over-lines"),
        pytest.param(' return f"{x!r}" + r"\\d"\n```', True, True, id="prefixed-strings"),
        pytest.param(" x = 1 + \\\n        2\n    return x\n```", True, True, id="continuation"),
        pytest.param("\n    return x\n```", True, True, id="blank-first-line"),
        pytest.param("def f(x):\n    return x\n```", False, True, id="free-column-0"),
        pytest.param("\nfor x in xs:\n    s += x\n```", False, True, id="free-blank-first"),
        pytest.param("    s = 0\n```", False, False, id="free-starts-indented"),
        pytest.param(" return f(x))\n```", True, False, id="closed-twice"),
        pytest.param(" return [x)\n```", True, False, id="mismatched"),
        pytest.param(" return f(x\n```", True, False, id="fence-inside-bracket"),
        pytest.param(" return 'abc\n```", True, False, id="open-string"),
        pytest.param("\n```", True, False, id="empty-body"),
        pytest.param(" return x\ndef other():\n```", True, False, id="left-the-function"),
        pytest.param(" return `x`\n```", True, False, id="backticks"),
        pytest.param(" return x  # the sum\n```", True, False, id="comment"),
        pytest.param("\ndef other():\n```", True, False, id="blank-then-column-0"),
        pytest.param(' """Sum the squares."""\n    return 1\n```', True, False, id="docstring"),
        pytest.param('\n    """Sum."""\n```', True, False, id="docstring-after-a-blank"),
        pytest.param(' return "abc" + x\n```', True, True, id="string-later-in-the-line"),
        pytest.param(' x = 1\n    """not first"""\n```', True, True, id="string-statement-later"),
    ],
)
def test_grammar_accepts_code_and_rejects_what_cannot_parse(
    vocab_model: Any, text: str, indented: bool, valid: bool
):
    assert _accepts(vocab_model, text, indented=indented) is valid


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        pytest.param("total = 0\nfor x in xs:\n    total += x\n```", True, id="statements"),
        pytest.param("default = {}\n```", True, id="def-prefix-of-a-name"),
        pytest.param("classes = [c for c in cs]\n```", True, id="class-prefix-of-a-name"),
        pytest.param("d = 1\nc = 2\n```", True, id="one-letter-names"),
        pytest.param("(a, b) = b, a\n```", True, id="bracket-first"),
        pytest.param("x = 1\ndef helper():\n    pass\n```", True, id="def-after-the-first-line"),
        pytest.param("def total(xs):\n    return sum(xs)\n```", False, id="whole-function"),
        pytest.param("class Cache:\n    pass\n```", False, id="class"),
        pytest.param("@cache\ndef f():\n```", False, id="decorator"),
        pytest.param("    total = 0\n```", False, id="indented"),
        pytest.param('"""Docstring."""\n```', False, id="string-first"),
    ],
)
def test_a_regions_replacement_starts_with_a_statement(vocab_model: Any, text: str, valid: bool):
    assert _accepts(vocab_model, text, indented=False, statements=True) is valid


@pytest.fixture(scope="module")
def backend(embedded_model: Path) -> Iterator[Any]:
    from speedsmith.llm.llama import LlamaBackend

    made = LlamaBackend(embedded_model, n_gpu_layers=0, n_ctx=1024, n_threads=None)
    yield made
    made.close()


@pytest.mark.real_model
def test_a_valid_reply_is_the_unconstrained_one(backend: Any, vocab_model: Any):
    """Sample, check, resample only on rejection: where the model wrote valid code anyway,
    the constrained reply is token for token the unconstrained one (``create_completion``)."""
    constrained = build_prompt(FN, collect_context(SOURCE, FN))
    assert constrained.grammar
    free = dataclasses.replace(constrained, grammar="")
    kwargs: dict[str, Any] = {"max_tokens": 48, "temperature": 0.3, "seed": 3, "stop": (FENCE,)}
    without = backend.generate(free, **kwargs)
    assert _accepts(vocab_model, without.text, indented=True)  # the premise
    assert backend.generate(constrained, **kwargs).text == without.text


@pytest.mark.real_model
def test_rejected_tokens_are_resampled_from_what_the_grammar_allows(backend: Any, vocab_model: Any):
    """The grammar sees only the reply: after a prefill that leaves a bracket open, the
    model's closing bracket is a token the grammar rejects, and another one is sampled."""
    prompt = Prompt(
        system="You copy text exactly.",
        user="Copy this line exactly:\n\nx = f(a)) + g(b]]\n",
        prefill="```python\nx = f(a",
        grammar=code_grammar(indented=False),
    )
    free = dataclasses.replace(prompt, grammar="")
    kwargs: dict[str, Any] = {"max_tokens": 30, "temperature": 0.2, "seed": 1, "stop": (FENCE,)}
    assert backend.generate(free, **kwargs).text.startswith(")")
    rejections = backend.batcher().stats.grammar_rejections
    made = backend.generate(prompt, **kwargs)
    assert backend.batcher().stats.grammar_rejections > rejections
    assert not made.text.startswith(")")
    assert _accepts(vocab_model, made.text, indented=False)


@pytest.mark.parametrize(
    ("code", "state"),
    [
        pytest.param("def f(xs):\n    return sum(xs)\n", "complete", id="complete"),
        pytest.param("def f(xs):\n    for x in xs:\n", "incomplete", id="open-block"),
        pytest.param("def f(xs):\n    x = g(\n", "incomplete", id="open-bracket"),
        pytest.param("def f(xs):\n    x = '''abc\n", "incomplete", id="open-string"),
        pytest.param("def f(xs):\n    x = 1 + \\\n", "incomplete", id="continuation"),
        pytest.param("def f(xs):\n    try:\n        return 1\n", "incomplete", id="try-body"),
        pytest.param("def f(xs):\n    nonlocal y\n    y = 1\n", "complete", id="tree-not-scope"),
        pytest.param("def f(xs):\n    break\n", "complete", id="break-is-the-trees"),
        pytest.param(
            "def f(xs):\n    return [x for x in xs if x, c for c in d]\n",
            "invalid",
            id="two-targets",
        ),
        pytest.param("def f(xs):\n    return (m.lower() with 'a')\n", "invalid", id="with-in-expr"),
        pytest.param("def f(xs):\n    return {**x for x in xs}\n", "invalid", id="dict-unpacking"),
        pytest.param(
            "def f(xs):\n     if xs:\n        return 1\n    else:\n", "invalid", id="bad-dedent"
        ),
    ],
)
def test_syntax_state_tells_what_can_still_become_python(code: str, state: str):
    assert syntax_state(code) == state


def _checked(user: str, header: str) -> Prompt:
    """A syntax-checked prompt whose reply continues ``header`` ('' for statements)."""
    return Prompt(
        system="You write Python.",
        user=user,
        prefill=f"```python\n{header}",
        prefill_code=header,
        grammar=code_grammar(indented=bool(header)),
        check_lines=True,
    )


@pytest.mark.real_model
def test_a_line_that_cannot_be_python_is_taken_back_then_the_reply_stops(backend: Any):
    """After a prefilled header whose code already cannot parse, every finished line is
    invalid: it is taken back ``MAX_LINE_RETRIES`` times (its tokens still counted), then the
    reply stops after its first line instead of running on to the cap."""
    prompt = _checked("Continue the function.", "def f(xs):\n    return (xs with 1)\n    ")
    taken = backend.batcher().stats.lines_taken_back
    made = backend.generate(prompt, max_tokens=120, temperature=0.7, seed=2, stop=(FENCE,))
    assert backend.batcher().stats.lines_taken_back - taken == MAX_LINE_RETRIES
    assert made.text.count("\n") == 1  # the first line, written a third time, then stopped
    assert made.completion_tokens > len(made.text.split())  # the lines taken back count
    assert made.completion_tokens < 120


@pytest.mark.real_model
def test_a_runaway_line_is_taken_back(backend: Any, monkeypatch: pytest.MonkeyPatch):
    """A checked reply's line longer than ``MAX_LINE_BYTES`` is taken back like an invalid
    one (here the limit is lowered so that ordinary lines run away)."""
    from speedsmith.llm import batch

    monkeypatch.setattr(batch, "MAX_LINE_BYTES", 12)
    prompt = _checked(f"Make this faster:\n```python\n{SOURCE}```", "def total(xs):\n    ")
    taken = backend.batcher().stats.lines_taken_back
    made = backend.generate(prompt, max_tokens=80, temperature=0.7, seed=3, stop=(FENCE,))
    assert backend.batcher().stats.lines_taken_back > taken
    lines = made.text.split("\n")
    assert all(len(line.encode()) <= 12 + 1 for line in lines[:-1]), made.text
    assert made.completion_tokens < 80


@pytest.mark.real_model
def test_statements_at_column_0_are_checked_on_their_own(backend: Any):
    """A region's replacement (``check_lines`` with no prefilled code): statements at
    column 0, each finished line checked as the start of a module; a line that cannot
    continue it is taken back."""
    prompt = _checked("Write three statements that compute the sum of squares of xs into s.", "")
    for seed in range(3):
        made = backend.generate(prompt, max_tokens=80, temperature=0.9, seed=seed, stop=(FENCE,))
        lines = made.text[: made.text.rfind("\n") + 1]
        assert syntax_state(lines) != "invalid", made.text
