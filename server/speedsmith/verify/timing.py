"""The timing decision: is the candidate faster than the original, with statistics?

Each round times the whole recorded workload once for each function (interleaved in one
process, see ``measure.py``). The per-round ratio original/candidate is analysed on a log scale:
the speedup is the geometric mean of the ratios and its confidence interval is Student's t
interval of the mean log-ratio (scipy). Decisions are sequential (the caller looks after
every other round, from ``min_rounds`` on) and asymmetric, because the two errors cost
differently:

- "faster" needs the 99% interval's low end above ``min_speedup``, at every look including
  the last: repeated looks at 95% would inflate false "faster" verdicts, the worst outcome;
- "not faster" (futility) needs only the 95% interval's high end below ``min_speedup``: an
  early stop there can only lose a real speedup, never accept a false one;
- at the cap, whatever is not proven faster is not faster.

The 95% interval is what gets reported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

State = Literal["faster", "not-faster", "undecided"]


@dataclass(frozen=True)
class TimingDecision:
    state: State
    speedup: float
    ci95: tuple[float, float]
    rounds: int


def interval(
    original_seconds: Sequence[float], candidate_seconds: Sequence[float], confidence: float
) -> tuple[float, float, float]:
    """(speedup, low, high) for paired samples."""
    ratios = np.log(np.asarray(original_seconds, float) / np.asarray(candidate_seconds, float))
    mean = float(np.mean(ratios))
    if len(ratios) < 2 or float(np.std(ratios)) == 0.0:
        return math.exp(mean), math.exp(mean), math.exp(mean)
    low, high = stats.ttest_1samp(ratios, 0.0).confidence_interval(confidence)
    return math.exp(mean), math.exp(float(low)), math.exp(float(high))


def decide(
    original_seconds: Sequence[float],
    candidate_seconds: Sequence[float],
    *,
    min_speedup: float,
    min_rounds: int = 6,
    final: bool = False,
) -> TimingDecision:
    """Faster if the interval's low end clears ``min_speedup``; not faster if its high end is
    below it; otherwise undecided (or, when ``final``, not faster)."""
    rounds = min(len(original_seconds), len(candidate_seconds))
    original_seconds, candidate_seconds = original_seconds[:rounds], candidate_seconds[:rounds]
    if rounds == 0 or min(candidate_seconds) <= 0 or min(original_seconds) <= 0:
        return TimingDecision("undecided" if not final else "not-faster", 1.0, (1.0, 1.0), rounds)
    speedup, low95, high95 = interval(original_seconds, candidate_seconds, 0.95)
    _, low99, _high99 = interval(original_seconds, candidate_seconds, 0.99)
    state: State = "undecided"
    if rounds >= min_rounds:
        if low99 > min_speedup:
            state = "faster"
        elif high95 < min_speedup:
            state = "not-faster"
    if final and state == "undecided":
        state = "not-faster"
    return TimingDecision(state, speedup, (low95, high95), rounds)
