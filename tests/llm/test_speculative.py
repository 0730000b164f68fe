"""Prompt-lookup speculation on the single-stream path (``llm/speculative.py``): the draft
itself, and with the embedded model the same greedy text with and without it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from speedsmith.isolate import collect_context, find_function
from speedsmith.llm.base import Prompt
from speedsmith.llm.speculative import PromptLookup
from speedsmith.search.prompt import FENCE, build_prompt, build_revision_prompt
from speedsmith.settings import DEFAULTS, merge

SOURCE = "def total(xs):\n    s = 0\n    for x in xs:\n        s += x * x\n    return s\n"
LONG_SOURCE = (
    "def pick(x):\n"
    + "".join(f"    if x == {i}:\n        return {i * i} + x\n" for i in range(45))
    + "    return -1\n"
)


@pytest.mark.parametrize(
    ("ids", "tokens", "draft"),
    [
        pytest.param([1, 2, 3, 9, 1, 2, 3, 7, 5, 1, 2, 3], 2, [7, 5], id="latest-trigram"),
        pytest.param([4, 5, 6, 8, 5, 6], 2, [8, 5], id="bigram-when-no-trigram"),
        pytest.param([1, 2, 3, 1], 4, [], id="no-single-token-lookup"),
        pytest.param([1, 2, 1, 2], 4, [1, 2], id="cut-at-the-end"),
        pytest.param([7], 4, [], id="too-short"),
        pytest.param([3, 4, 5, 6, 3, 4], 3, [5, 6, 3], id="at-most-tokens"),
    ],
)
def test_prompt_lookup_drafts(ids: list[int], tokens: int, draft: list[int]) -> None:
    got = PromptLookup(tokens)(np.array(ids, dtype=np.intc))

    assert got.dtype == np.intc
    assert got.tolist() == draft


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        pytest.param(0, True, id="off"),
        pytest.param(4, True, id="four"),
        pytest.param(-1, False, id="negative"),
        pytest.param(2.5, False, id="not-an-integer"),
    ],
)
def test_the_setting(value: Any, accepted: bool) -> None:
    settings, warnings = merge(DEFAULTS, {"speculativeTokens": value}, origin="test")

    assert DEFAULTS.speculative_tokens == 0
    assert (not warnings) == accepted
    assert settings.speculative_tokens == (value if accepted else 0)


def _unconstrained(prompt: Prompt) -> Prompt:
    """The create_completion path (a prompt with a grammar goes to the batch engine)."""
    return dataclasses.replace(prompt, grammar="") if getattr(prompt, "grammar", "") else prompt


def _prompt(kind: str) -> Prompt:
    source = LONG_SOURCE if kind == "long" else SOURCE
    fn = find_function(source, "pick" if kind == "long" else "total")
    context = collect_context(source, fn)
    if kind == "revision":
        return _unconstrained(build_revision_prompt(fn, context, SOURCE, "not faster (1.01x)"))
    return _unconstrained(build_prompt(fn, context))


@pytest.fixture(scope="module")
def backends(embedded_model: Path) -> Any:
    from speedsmith.llm.llama import LlamaBackend

    made = {
        tokens: LlamaBackend(
            embedded_model, n_gpu_layers=0, n_ctx=2048, n_threads=None, speculative_tokens=tokens
        )
        for tokens in (0, 4)
    }
    yield made
    for backend in made.values():
        backend.close()


@pytest.mark.real_model
@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("first", id="first-round-prompt"),
        pytest.param("revision", id="revision-prompt"),
        pytest.param("long", id="prompt-longer-than-one-llama-batch"),
    ],
)
def test_greedy_text_is_the_same_with_and_without_speculation(backends: Any, kind: str) -> None:
    prompt = _prompt(kind)
    speculative = backends[4]._llama
    steps = speculative.steps
    texts = [
        backends[tokens].generate(prompt, max_tokens=40, temperature=0.0, seed=1, stop=(FENCE,))
        for tokens in (0, 4)
    ]

    if kind == "long":  # the whole prompt is more than llama-cpp-python's n_batch (512)
        assert backends[0].count_tokens(backends[0].render(prompt)) > 512
    assert texts[0].text == texts[1].text
    assert texts[0].completion_tokens == texts[1].completion_tokens
    assert speculative.steps > steps  # it did decode with drafts


@pytest.mark.real_model
def test_sampling_with_speculation_is_repeatable(backends: Any) -> None:
    prompt = _prompt("revision")
    runs = [
        [
            backends[4].generate(prompt, max_tokens=40, temperature=0.8, seed=seed, stop=(FENCE,))
            for seed in (3, 4)
        ]
        for _ in range(2)
    ]

    assert [g.text for g in runs[0]] == [g.text for g in runs[1]]


@pytest.mark.real_model
def test_the_engine_loads_the_speculative_backend(embedded_model: Path) -> None:
    from speedsmith.engine import load_backend
    from speedsmith.llm.speculative import SpeculativeLlama

    settings = dataclasses.replace(DEFAULTS, speculative_tokens=3, n_ctx=512, n_gpu_layers=0)
    backend: Any = load_backend(settings)

    assert backend.speculative_tokens == 3
    assert isinstance(backend._llama, SpeculativeLlama)
