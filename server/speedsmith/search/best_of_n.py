"""Best-of-N: N independent samples (temperatures spread for diversity), each verified.

Generation finishes before any timing round starts, so the model never competes with the
timing harness for the cores. Duplicates (same normalised AST) are verified once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from speedsmith.errors import Cancelled
from speedsmith.isolate import Context, FunctionInfo
from speedsmith.llm.base import Backend
from speedsmith.search.prompt import FENCE, build_prompt, extract, normalised
from speedsmith.verify.verifier import Verdict

Verifier = Callable[[str], Verdict]
Progress = Callable[[str, str], None]


@dataclass(frozen=True)
class Attempt:
    source: str | None
    error: str
    verdict: Verdict | None = None


@dataclass
class SearchResult:
    attempts: list[Attempt] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generation_seconds: float = 0.0
    verification_seconds: float = 0.0

    @property
    def generated(self) -> int:
        return len(self.attempts)

    @property
    def parsed(self) -> int:
        return sum(a.source is not None for a in self.attempts)

    @property
    def equivalent(self) -> list[Attempt]:
        return [a for a in self.attempts if a.verdict is not None and a.verdict.equivalent]

    @property
    def faster(self) -> list[Attempt]:
        """Verified faster candidates, best lower confidence bound first."""
        found = [a for a in self.equivalent if a.verdict is not None and a.verdict.faster]
        return sorted(
            found,
            key=lambda a: a.verdict.ci95[0] if a.verdict and a.verdict.ci95 else 0,
            reverse=True,
        )


def temperature_for(index: int, base: float) -> float:
    """Spread samples around ``base``: the first is the most conservative."""
    spread = (0.0, 0.15, 0.3, -0.2, 0.45, 0.1, 0.25, -0.1)
    return max(0.05, base + spread[index % len(spread)])


def best_of_n(
    fn: FunctionInfo,
    context: Context,
    backend: Backend,
    verifier: Verifier,
    *,
    n: int,
    temperature: float,
    seed: int,
    progress: Progress,
    cancel: threading.Event | None = None,
) -> SearchResult:
    result = SearchResult()
    prompt = build_prompt(fn, context)
    max_tokens = max(128, 2 * len(fn.source) // 3)
    texts: list[tuple[str | None, str]] = []
    started = time.perf_counter()
    for index in range(n):
        progress("generation", f"Generating candidate {index + 1}/{n}")
        generation = backend.generate(
            prompt,
            max_tokens=max_tokens,
            temperature=temperature_for(index, temperature),
            seed=seed + index,
            stop=(FENCE,),
            cancel=cancel,
        )
        result.prompt_tokens += generation.prompt_tokens
        result.completion_tokens += generation.completion_tokens
        extracted = extract(prompt.prefill_code + generation.text, fn)
        texts.append((extracted.source, extracted.error))
    result.generation_seconds = time.perf_counter() - started

    started = time.perf_counter()
    seen: dict[str, Verdict | None] = {normalised(fn.source): None}
    for index, (source, error) in enumerate(texts):
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        if source is None:
            result.attempts.append(Attempt(None, error))
            continue
        key = normalised(source)
        if key in seen:
            why = "same as the original" if seen[key] is None else "duplicate"
            result.attempts.append(Attempt(source, why))
            continue
        progress("verification", f"Verifying candidate {index + 1}/{n}")
        verdict = verifier(source)
        seen[key] = verdict
        result.attempts.append(Attempt(source, verdict.reason, verdict))
    result.verification_seconds = time.perf_counter() - started
    return result
