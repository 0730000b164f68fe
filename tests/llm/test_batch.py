"""Batched generation (``llm/batch.py``) with the embedded model, and the search's use of
``generate_batch`` (a fake backend: seeds, order, budget)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from speedsmith.errors import Cancelled
from speedsmith.isolate import collect_context, find_function
from speedsmith.llm.base import Generation, GenerationRequest, Prompt
from speedsmith.search.budget import BudgetSpec
from speedsmith.search.prompt import FENCE, build_prompt, build_revision_prompt
from speedsmith.search.strategies import StrategyConfig, run_search
from speedsmith.verify.verifier import Verdict

SOURCE = "def total(xs):\n    s = 0\n    for x in xs:\n        s += x * x\n    return s\n"
FN = find_function(SOURCE, "total")
CONTEXT = collect_context(SOURCE, FN)


def _requests() -> list[GenerationRequest]:
    first = build_prompt(FN, CONTEXT)
    revise = build_revision_prompt(FN, CONTEXT, "def total(xs):\n    return sum(xs)\n", "wrong")
    return [
        GenerationRequest(first if i % 2 else revise, 32, 0.6 + 0.1 * i, 10 + i, (FENCE,))
        for i in range(5)
    ]


def _run(backend: Any, requests: list[GenerationRequest], *, reuse: bool = True) -> list[str]:
    batcher = backend.batcher()
    prompts = [batcher.tokenize(backend.render(r.prompt)) for r in requests]
    made = batcher.generate(
        prompts,
        max_tokens=[r.max_tokens for r in requests],
        temperatures=[r.temperature for r in requests],
        seeds=[r.seed for r in requests],
        stops=[r.stop for r in requests],
        reuse=reuse,
    )
    return [g.text for g in made]


@pytest.fixture(scope="module")
def batched(embedded_model: Path) -> Any:
    from speedsmith.llm.llama import LlamaBackend

    backend = LlamaBackend(
        embedded_model, n_gpu_layers=0, n_ctx=1024, n_threads=None, batch_width=5
    )
    yield backend
    backend.close()


@pytest.mark.real_model
def test_batches_are_the_same_run_after_run_and_with_or_without_reuse(
    batched: Any, embedded_model: Path
):
    from speedsmith.llm.llama import LlamaBackend

    requests = _requests()
    first = _run(batched, requests)
    stats = batched.batcher().stats
    assert stats.prompt_tokens_evaluated < stats.prompt_tokens  # the shared prefix once
    cached = _run(batched, requests)  # the prefix is in the cache now: not evaluated again
    assert batched.batcher().stats.prompt_tokens_evaluated - stats.prompt_tokens_evaluated < 60
    fresh = LlamaBackend(embedded_model, n_gpu_layers=0, n_ctx=1024, n_threads=None, batch_width=5)
    try:
        again = _run(fresh, requests)
        recomputed = _run(fresh, requests, reuse=False)
    finally:
        fresh.close()
    assert first == cached == again == recomputed
    assert len(set(first)) > 1  # the seeds and temperatures differ


@pytest.mark.real_model
def test_generate_batch_goes_in_order_and_cancel_stops_within_one_step(batched: Any):
    requests = _requests()[:3]
    made = batched.generate_batch(requests)
    assert len(made) == 3 and all(isinstance(g, Generation) for g in made)
    assert all(0 < g.completion_tokens <= 32 for g in made)
    batcher = batched.batcher()
    cancel = threading.Event()
    steps_after = []
    decode = batcher._decode

    def counting(items: Any) -> None:
        if cancel.is_set():
            steps_after.append(len(items))
        decode(items)
        if all(item[3] for item in items) and not cancel.is_set():
            cancel.set()  # after the first token step of the three sequences

    batcher._decode = counting
    try:
        long = [GenerationRequest(r.prompt, 200, 1.2, r.seed, ()) for r in requests]
        with pytest.raises(Cancelled):
            batched.generate_batch(long, cancel=cancel)
    finally:
        del batcher._decode
    assert steps_after == []
    assert _run(batched, _requests()) == _run(batched, _requests())  # still usable


class _Batching:
    """A fake backend that generates in batches: records what it was asked."""

    name = "fake"
    batch_width = 3

    def __init__(self) -> None:
        self.calls: list[list[tuple[int, int]]] = []

    def generate(self, prompt: Prompt, **kwargs: Any) -> Generation:
        request = GenerationRequest(prompt, kwargs["max_tokens"], 0.7, kwargs["seed"], ())
        return self.generate_batch([request])[0]  # a lone request: the one-at-a-time path

    def generate_batch(self, requests: list[GenerationRequest], *, cancel: Any = None):
        self.calls.append([(r.seed, r.max_tokens) for r in requests])
        return [Generation(f"def total(xs):\n    return {r.seed}\n", 50, 20, 0.0) for r in requests]


def test_the_search_asks_for_a_rounds_candidates_together_within_the_budget():
    backend = _Batching()
    verdict = Verdict(equivalent=False, reason="wrong")
    result = run_search(
        FN,
        CONTEXT,
        backend,  # type: ignore[arg-type]
        lambda source: verdict,
        config=StrategyConfig(name="best-of-n"),
        budget=BudgetSpec(tokens=7 * 128, seconds=1e9, candidates=7, per_candidate_tokens=128),
        temperature=0.7,
        seed=100,
        progress=lambda phase, message: None,
    )
    seeds = [seed for call in backend.calls for seed, _ in call]
    assert [len(call) for call in backend.calls] == [3, 3, 1]
    assert seeds == list(range(100, 107))  # the seeds of one-at-a-time generation
    assert all(cap == 128 for call in backend.calls for _, cap in call)
    assert result.generated == 7 and result.completion_tokens == 140
