"""Best-of-N as a function: exactly ``n`` independent samples, each verified.

The original entry point, kept for callers that count candidates rather than tokens; it runs
the ``best-of-n`` strategy (``strategies.py``) with a budget of ``n`` candidates.
"""

from __future__ import annotations

import math
import threading

from speedsmith.isolate import Context, FunctionInfo
from speedsmith.llm.base import Backend
from speedsmith.search.budget import BudgetSpec, candidate_tokens
from speedsmith.search.core import Attempt, Progress, SearchResult, Verifier
from speedsmith.search.strategies import StrategyConfig, run_search, temperature_for

__all__ = ["Attempt", "SearchResult", "best_of_n", "temperature_for"]


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
    per_candidate = candidate_tokens(fn.source)
    budget = BudgetSpec(n * per_candidate, math.inf, n, per_candidate)
    return run_search(
        fn,
        context,
        backend,
        verifier,
        config=StrategyConfig(name="best-of-n"),
        budget=budget,
        temperature=temperature,
        seed=seed,
        progress=progress,
        cancel=cancel,
    )
