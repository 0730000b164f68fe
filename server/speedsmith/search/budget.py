"""The search budget: generated tokens, capped by wall-clock seconds.

A budget is given as a preset (``quick``, ``standard``, ``max``) or a number. Presets are token
budgets (see ``TOKEN_PRESETS``) that scale with the function: each pays for at least
``MIN_CANDIDATES`` candidates of the per-candidate cap, which grows with the code the model
writes (``candidate_tokens``). A number below ``CANDIDATE_LIMIT`` keeps its old meaning, a
count of candidates: it becomes ``count x per-candidate token cap`` tokens, and best-of-N then
draws exactly ``count`` samples. A number from ``CANDIDATE_LIMIT`` up is a token budget.

Only generated (completion) tokens count, and everything the search generates counts: probe
rounds, hypothesis proposals, revisions. Every generation is asked for at most the tokens left,
so the budget is never exceeded. The wall-clock cap covers generation and verification: no new
generation or verification starts after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from speedsmith.search.strip import strip
from speedsmith.settings import CANDIDATE_LIMIT, NUMERIC_BUDGET_SECONDS, PRESETS

# The presets are defined once, in ``speedsmith.settings.PRESETS``; these are views of them.
TOKEN_PRESETS: dict[str, int] = {name: preset.tokens for name, preset in PRESETS.items()}
"""Presets, in generated tokens."""
SECONDS_PRESETS: dict[str, float] = {name: preset.seconds for name, preset in PRESETS.items()}
"""Default wall-clock caps (search only: generation and verification), per preset."""
DEFAULT_SECONDS = NUMERIC_BUDGET_SECONDS
"""Wall-clock cap for numeric budgets when ``budgetSeconds`` is not set."""
MIN_GENERATION_TOKENS = 24
"""A generation with fewer tokens left cannot hold a function: the search stops instead (or
earlier: ``Meter.needed_tokens``)."""


MIN_CANDIDATES: dict[str, int] = {name: preset.min_candidates for name, preset in PRESETS.items()}
"""A preset pays for at least this many complete candidates: its tokens grow to
``MIN_CANDIDATES x per-candidate cap`` for long functions."""


def candidate_tokens(function_source: str) -> int:
    """Per-candidate cap on generated tokens: room for a rewrite a bit longer than what the model
    is shown and asked to write, the function without its docstring and comments
    (``strip.strip``); about 3 characters per token, so 2/3 of a token per character is half
    as long again as the code."""
    return max(128, 2 * len(strip(function_source).code) // 3)


@dataclass(frozen=True)
class BudgetSpec:
    tokens: int
    """Generated tokens the search may spend."""
    seconds: float
    """Wall-clock cap of the search."""
    candidates: int | None = None
    """Set when the budget was given as a number of candidates."""
    per_candidate_tokens: int = 128

    def describe(self) -> str:
        count = f"{self.candidates} candidates = " if self.candidates is not None else ""
        return f"{count}{self.tokens} tokens, {self.seconds:g} s"


def resolve(
    budget: str | int, budget_seconds: float | None, per_candidate_tokens: int
) -> BudgetSpec:
    """The budget setting (a preset or a number) in tokens and seconds."""
    if isinstance(budget, str):
        tokens = max(TOKEN_PRESETS[budget], MIN_CANDIDATES[budget] * per_candidate_tokens)
        seconds = SECONDS_PRESETS[budget]
        candidates = None
    elif budget < CANDIDATE_LIMIT:
        candidates = budget
        tokens = budget * per_candidate_tokens
        seconds = DEFAULT_SECONDS
    else:
        candidates = None
        tokens = budget
        seconds = DEFAULT_SECONDS
    if budget_seconds is not None:
        seconds = budget_seconds
    return BudgetSpec(tokens, seconds, candidates, per_candidate_tokens)


class Meter:
    """What is left of a budget while the search runs."""

    def __init__(self, spec: BudgetSpec, clock: Callable[[], float] = time.perf_counter):
        self.spec = spec
        self._clock = clock
        self._started = clock()
        self.spent_tokens = 0
        self.prompt_tokens = 0
        self._complete_replies: list[int] = []

    @property
    def remaining_tokens(self) -> int:
        return max(0, self.spec.tokens - self.spent_tokens)

    @property
    def elapsed_seconds(self) -> float:
        return self._clock() - self._started

    def out_of_time(self) -> bool:
        return self.elapsed_seconds >= self.spec.seconds

    def can_generate(self) -> bool:
        return self.remaining_tokens >= self.needed_tokens and not self.out_of_time()

    @property
    def needed_tokens(self) -> int:
        """What a new candidate needs to be likely complete: as long as three in four of this
        search's complete replies so far (half the per-candidate cap before the first), at
        least ``MIN_GENERATION_TOKENS``. With less left, the last candidate would often be cut
        off by the budget, a truncated candidate paid for and never verified (one or two per
        run on real functions before this check), so the search stops instead."""
        done = sorted(self._complete_replies)
        typical = done[len(done) * 3 // 4] if done else self.spec.per_candidate_tokens // 2
        return max(MIN_GENERATION_TOKENS, min(typical, self.spec.per_candidate_tokens))

    def note_reply(self, completion_tokens: int, *, complete: bool) -> None:
        """A candidate's reply was read: ``complete`` when it was not cut off by its cap."""
        if complete:
            self._complete_replies.append(completion_tokens)

    def max_tokens(self, cap: int | None = None) -> int:
        """What one generation may produce: the cap, or what is left if less."""
        cap = self.spec.per_candidate_tokens if cap is None else cap
        return min(cap, self.remaining_tokens)

    def charge(self, completion_tokens: int, prompt_tokens: int = 0) -> None:
        self.spent_tokens += completion_tokens
        self.prompt_tokens += prompt_tokens

    def why_stopped(self) -> str:
        if self.out_of_time():
            return f"wall-clock cap reached ({self.spec.seconds:g} s)"
        return f"token budget spent ({self.spent_tokens}/{self.spec.tokens})"
