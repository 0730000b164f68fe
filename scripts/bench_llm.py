"""Inference throughput of the embedded model on this machine, measured side by side in one run.

Prints raw llama.cpp decode t/s (``Llama.create_completion`` alone, same sampling settings),
speedsmith's generation t/s inside a search (best-of-n, a verifier that rejects everything),
prompt tokens evaluated per candidate with and without shared-prefix reuse (``llm/batch.py``),
and aggregate t/s at width 1 and width 5: in-process batch and through the openai backend
against a local ``llama_cpp.server``; each as a ratio to the raw figure. Then prompt-lookup
speculation (``speculativeTokens``) against plain decoding on the single-stream path
(``LlamaBackend.generate``): the same rewrite prompts, seeds and temperatures, alternating, as
a ratio, with the tokens per decode step and whether the texts agree. The last line is one
summary line of the ratios. Usage::

    .venv/bin/python scripts/bench_llm.py [--tokens 48] [--repeats 2] [--no-server] \
        [--speculative-tokens 4] [--only-speculation]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "llm"))

from speedsmith import compute
from speedsmith.isolate import collect_context, find_function
from speedsmith.llm.base import GenerationRequest, generate_batch
from speedsmith.llm.llama import LlamaBackend
from speedsmith.llm.model import resolve_model
from speedsmith.search.budget import BudgetSpec
from speedsmith.search.prompt import FENCE, build_prompt, build_revision_prompt
from speedsmith.search.strategies import StrategyConfig, run_search
from speedsmith.verify.verifier import Verdict

SOURCE = "def total(xs):\n    s = 0\n    for x in xs:\n        s += x * x\n    return s\n"
WIDTH = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=48, help="max tokens per generation")
    parser.add_argument("--repeats", type=int, default=2, help="alternating repeats")
    parser.add_argument("--no-server", action="store_true", help="skip the openai backend")
    parser.add_argument(
        "--speculative-tokens", type=int, default=4, help="draft tokens per step (speculation)"
    )
    parser.add_argument(
        "--only-speculation", action="store_true", help="measure speculation vs plain only"
    )
    args = parser.parse_args()
    fn = find_function(SOURCE, "total")
    context = collect_context(SOURCE, fn)
    prompt = build_prompt(fn, context)
    model = resolve_model(None)
    speculation = _speculation(model, args.speculative_tokens, args.repeats)
    if args.only_speculation:
        print(speculation)
        return
    backend = LlamaBackend(model, n_gpu_layers=-1, n_ctx=2048, n_threads=None, batch_width=WIDTH)
    text = backend.render(prompt)
    requests = [GenerationRequest(prompt, args.tokens, 1.0, 1000 + i, ()) for i in range(WIDTH)]
    totals: dict[str, list[float]] = {}

    def add(key: str, tokens: int, seconds: float) -> None:
        got = totals.setdefault(key, [0.0, 0.0])
        got[0] += tokens
        got[1] += seconds

    batcher = backend.batcher()
    prompts = [batcher.tokenize(text)] * WIDTH
    for repeat in range(args.repeats):
        # raw: the library alone (create_completion reuses the cached prompt, as it does)
        for r in requests:
            started = time.perf_counter()
            out = backend._llama.create_completion(
                prompt=text,
                max_tokens=r.max_tokens,
                temperature=r.temperature,
                top_p=0.95,
                top_k=40,
                repeat_penalty=1.05,
                seed=r.seed + repeat,
            )
            add("raw", out["usage"]["completion_tokens"], time.perf_counter() - started)
        # in-search: best-of-n through speedsmith's search machinery, width 1
        search = run_search(
            fn,
            context,
            backend,
            lambda source: Verdict(equivalent=False, reason="skip"),
            config=StrategyConfig(name="best-of-n"),
            budget=BudgetSpec(WIDTH * args.tokens, 1e9, WIDTH, args.tokens),
            temperature=1.0,
            seed=repeat * 100,
            progress=lambda phase, message: None,
        )
        add("search", search.completion_tokens, search.generation_seconds)
        # width 1 vs width 5 in one process (batch engine)
        for width in (1, WIDTH):
            started = time.perf_counter()
            made = []
            for start in range(0, WIDTH, width):
                chunk = requests[start : start + width]
                made += batcher.generate(
                    prompts[start : start + width],
                    max_tokens=[r.max_tokens for r in chunk],
                    temperatures=[r.temperature for r in chunk],
                    seeds=[r.seed + repeat for r in chunk],
                    stops=[()] * len(chunk),
                )
            add(
                f"batch{width}",
                sum(g.completion_tokens for g in made),
                time.perf_counter() - started,
            )
    # prompt tokens per candidate with and without reuse
    before = (batcher.stats.prompt_tokens_evaluated, batcher.stats.generations)
    for _ in range(2):  # the second batch finds the shared prefix already evaluated
        batcher.generate(
            prompts,
            max_tokens=[8] * WIDTH,
            temperatures=[1.0] * WIDTH,
            seeds=list(range(WIDTH)),
            stops=[()] * WIDTH,
            reuse=True,
        )
    reused = (batcher.stats.prompt_tokens_evaluated - before[0]) / (2 * WIDTH)
    before = batcher.stats.prompt_tokens_evaluated
    batcher.generate(
        prompts,
        max_tokens=[8] * WIDTH,
        temperatures=[1.0] * WIDTH,
        seeds=list(range(WIDTH)),
        stops=[()] * WIDTH,
        reuse=False,
    )
    fresh = (batcher.stats.prompt_tokens_evaluated - before) / WIDTH
    backend.close()
    if not args.no_server:
        _server(model, requests, args.repeats, add)
    raw = totals["raw"][0] / totals["raw"][1]
    print(
        f"prompt: {len(prompts[0])} tokens; {args.tokens} tokens per generation, "
        f"{args.repeats} repeats, width {WIDTH}"
    )
    ratios = []
    for key, label in [
        ("raw", "raw llama.cpp decode"),
        ("search", "in-search generation (width 1)"),
        ("batch1", "batch engine, width 1"),
        (f"batch{WIDTH}", f"batch engine, width {WIDTH}"),
        ("openai1", "openai backend, width 1"),
        (f"openai{WIDTH}", f"openai backend, width {WIDTH}"),
    ]:
        if key in totals:
            tps = totals[key][0] / totals[key][1]
            ratios.append(f"{key} {tps / raw:.2f}x")
            print(f"{label:34s} {tps:7.1f} t/s  {tps / raw:5.2f}x raw")
    print(f"prompt tokens evaluated per candidate: {fresh:.0f} without reuse, {reused:.1f} with")
    b1, b5 = totals["batch1"], totals[f"batch{WIDTH}"]
    widen = (b5[0] / b5[1]) / (b1[0] / b1[1])
    line = f"summary: {', '.join(ratios)}; width-{WIDTH}/width-1 batch {widen:.2f}x"
    if "openai1" in totals:
        o1, o5 = totals["openai1"], totals[f"openai{WIDTH}"]
        line += f", openai {(o5[0] / o5[1]) / (o1[0] / o1[1]):.2f}x"
    print(speculation)
    ratio = speculation.split("speculative/plain ")[1].split(";")[0]
    print(line + f"; prompt tokens/candidate {fresh:.0f} -> {reused:.1f}; speculation {ratio}")


SPECULATION_PROMPTS = [
    ("total", SOURCE, None),
    ("total", SOURCE, "def total(xs):\n    return sum(xs)\n"),
    (
        "evens",
        "def evens(items):\n    out = []\n    for item in items:\n        if item % 2 == 0:\n"
        "            out.append(item)\n    return out\n",
        None,
    ),
    (
        "count_words",
        "def count_words(text):\n    counts = {}\n    for word in text.split():\n"
        "        if word in counts:\n            counts[word] = counts[word] + 1\n"
        "        else:\n            counts[word] = 1\n    return counts\n",
        "__source__",
    ),
]
"""(function, source, earlier attempt): first-round prompts and revision prompts (an earlier
attempt to revise, ``__source__``: the function itself, the most to copy)."""


def _speculation(model: Path, tokens: int, repeats: int) -> str:
    """Plain vs prompt-lookup speculation through ``LlamaBackend.generate``, side by side."""
    prompts = []
    for name, source, previous in SPECULATION_PROMPTS:
        fn = find_function(source, name)
        context = collect_context(source, fn)
        if previous is None:
            prompts.append(build_prompt(fn, context))
        else:
            earlier = source if previous == "__source__" else previous
            prompts.append(build_revision_prompt(fn, context, earlier, "not faster (1.02x)"))
    # the create_completion path: a prompt that asks for a grammar goes to the batch engine
    prompts = [
        dataclasses.replace(p, grammar="") if getattr(p, "grammar", "") else p for p in prompts
    ]
    backends = {
        key: LlamaBackend(
            model, n_gpu_layers=-1, n_ctx=2048, n_threads=None, speculative_tokens=key
        )
        for key in (0, tokens)
    }
    made = {key: [0, 0.0] for key in backends}
    # timed from when the compute lock is held: other processes' turns on it are not decoding
    locked = compute.exclusive
    acquired = [0.0]

    @contextlib.contextmanager
    def timed(**kwargs: bool) -> Iterator[None]:
        with locked(**kwargs):
            acquired[0] = time.perf_counter()
            yield

    compute.exclusive = timed  # type: ignore[assignment]
    texts: dict[int, list[tuple[float, str]]] = {key: [] for key in backends}
    for i, prompt in enumerate(prompts):
        for backend in backends.values():  # the prompt into each one's cache: decode is timed
            backend.generate(prompt, max_tokens=1, temperature=0.0, seed=0, stop=())
        for repeat in range(repeats):
            for temperature in (0.0, 0.7):
                order = list(backends) if (repeat + i) % 2 == 0 else list(backends)[::-1]
                for key in order:
                    out = backends[key].generate(
                        prompt,
                        max_tokens=128,
                        temperature=temperature,
                        seed=1000 + 10 * repeat + i,
                        stop=(FENCE,),
                    )
                    made[key][0] += out.completion_tokens
                    made[key][1] += time.perf_counter() - acquired[0]
                    texts[key].append((temperature, out.text))
    compute.exclusive = locked  # type: ignore[assignment]
    llama = backends[tokens]._llama
    steps, drafted = llama.steps, llama.drafted
    for backend in backends.values():
        backend.close()
    plain, fast = (made[key][0] / made[key][1] for key in (0, tokens))
    pairs = list(zip(texts[0], texts[tokens], strict=True))
    greedy = [a == b for a, b in pairs if a[0] == 0.0]
    sampled = [a == b for a, b in pairs if a[0] != 0.0]
    accepted = (made[tokens][0] - steps) / max(drafted, 1)
    return (
        f"speculation ({tokens} draft tokens), single stream, {len(pairs)} generations each: "
        f"plain {plain:.1f} t/s, speculative {fast:.1f} t/s; speculative/plain "
        f"{fast / plain:.2f}x; {made[tokens][0] / max(steps, 1):.2f} tokens per decode step, "
        f"{accepted:.0%} of drafted tokens kept; same text greedy {sum(greedy)}/{len(greedy)}, "
        f"sampled {sum(sampled)}/{len(sampled)}"
    )


def _server(model: Path, requests: list[GenerationRequest], repeats: int, add) -> None:  # type: ignore[no-untyped-def]
    from local_server import start_server

    from speedsmith.llm.openai import OpenAIBackend

    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(model, Path(tmp) / "server.log")
        try:
            for repeat in range(repeats):
                for width in (1, WIDTH):
                    backend = OpenAIBackend(server.base_url, concurrency=width)
                    backend.check()
                    shifted = [
                        GenerationRequest(
                            r.prompt, r.max_tokens, r.temperature, r.seed + repeat, ()
                        )
                        for r in requests
                    ]
                    started = time.perf_counter()
                    made = []
                    for start in range(0, WIDTH, width):
                        made += generate_batch(backend, shifted[start : start + width])
                    add(
                        f"openai{width}",
                        sum(g.completion_tokens for g in made),
                        time.perf_counter() - started,
                    )
                    backend.close()
        finally:
            server.kill()


if __name__ == "__main__":
    main()
