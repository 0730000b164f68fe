"""The timing decision on synthetic, seeded samples (no processes, no clocks)."""

from __future__ import annotations

import numpy as np
import pytest

from speedsmith.verify.timing import decide, interval


def samples(
    seed: int, rounds: int, speedup: float, noise: float, base: float = 0.01
) -> tuple[list[float], list[float]]:
    """Per-round (original, candidate) seconds: lognormal noise of relative size ``noise``."""
    rng = np.random.default_rng(seed)
    original = base * rng.lognormal(0.0, noise, rounds)
    candidate = base / speedup * rng.lognormal(0.0, noise, rounds)
    return original.tolist(), candidate.tolist()


def sequential(original: list[float], candidate: list[float], min_speedup: float) -> str:
    """The verifier's procedure: look every second round, stop at the first decision, then a
    final decision over everything if none came."""
    for rounds in range(2, len(original) + 1, 2):
        decision = decide(original[:rounds], candidate[:rounds], min_speedup=min_speedup)
        if decision.state != "undecided":
            return decision.state
    return decide(original, candidate, min_speedup=min_speedup, final=True).state


@pytest.mark.parametrize(
    ("seed", "rounds", "speedup", "noise", "min_speedup", "final", "states"),
    [
        pytest.param(1, 10, 1.0, 0.02, 1.1, False, {"not-faster", "undecided"}, id="same-2%"),
        pytest.param(2, 10, 1.0, 0.02, 1.1, True, {"not-faster"}, id="same-2%-final"),
        pytest.param(3, 20, 1.0, 0.10, 1.1, True, {"not-faster"}, id="same-10%-final"),
        pytest.param(4, 10, 2.0, 0.05, 1.1, False, {"faster"}, id="2x-5%"),
        pytest.param(5, 10, 2.0, 0.05, 1.1, True, {"faster"}, id="2x-5%-final"),
        pytest.param(6, 20, 1.05, 0.03, 1.1, False, {"not-faster", "undecided"}, id="1.05x-vs-1.1"),
        pytest.param(7, 20, 1.05, 0.03, 1.1, True, {"not-faster"}, id="1.05x-vs-1.1-final"),
        pytest.param(8, 2, 3.0, 0.05, 1.1, False, {"undecided"}, id="2-rounds-of-3x"),
        pytest.param(9, 2, 3.0, 0.05, 1.1, True, {"not-faster"}, id="2-rounds-of-3x-final"),
        pytest.param(10, 5, 3.0, 0.05, 1.1, True, {"not-faster"}, id="5-rounds-below-minimum"),
        pytest.param(11, 10, 0.5, 0.05, 1.1, False, {"not-faster"}, id="2x-slower"),
        pytest.param(12, 10, 0.9, 0.05, 1.0, True, {"not-faster"}, id="slower-vs-1.0"),
        pytest.param(13, 12, 1.5, 0.30, 1.1, False, {"undecided"}, id="1.5x-very-noisy"),
    ],
)
def test_decide(
    seed: int,
    rounds: int,
    speedup: float,
    noise: float,
    min_speedup: float,
    final: bool,
    states: set[str],
):
    original, candidate = samples(seed, rounds, speedup, noise)
    decision = decide(original, candidate, min_speedup=min_speedup, final=final)
    assert decision.state in states
    assert decision.rounds == rounds
    low, high = decision.ci95
    assert low <= decision.speedup <= high


@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed{s}") for s in range(5)])
def test_clear_speedup_estimate(seed: int):
    original, candidate = samples(100 + seed, 10, 2.0, 0.05)
    decision = decide(original, candidate, min_speedup=1.1)
    assert decision.state == "faster"
    assert decision.speedup == pytest.approx(2.0, rel=0.1)
    assert decision.ci95[0] <= 2.0 <= decision.ci95[1]
    assert decision.ci95[0] > 1.1


def test_identical_times_are_never_faster():
    original, candidate = samples(21, 12, 1.0, 0.01)
    for final in (False, True):
        assert decide(original, candidate, min_speedup=1.1, final=final).state != "faster"
    assert decide(original, candidate, min_speedup=1.1, final=True).state == "not-faster"


@pytest.mark.parametrize(
    ("original", "candidate", "final", "state", "speedup"),
    [
        pytest.param([], [], False, "undecided", 1.0, id="no-rounds"),
        pytest.param([], [], True, "not-faster", 1.0, id="no-rounds-final"),
        pytest.param([1.0] * 8, [0.0] * 8, False, "undecided", 1.0, id="zero-candidate-time"),
        pytest.param([1.0] * 8, [0.5] * 8, False, "faster", 2.0, id="exact-2x-no-noise"),
        pytest.param([1.0] * 8, [1.0] * 8, False, "not-faster", 1.0, id="exact-same-no-noise"),
    ],
)
def test_decide_degenerate_samples(
    original: list[float], candidate: list[float], final: bool, state: str, speedup: float
):
    decision = decide(original, candidate, min_speedup=1.1, final=final)
    assert decision.state == state
    assert decision.speedup == pytest.approx(speedup)


def test_decide_uses_paired_rounds_only():
    original, candidate = samples(31, 10, 2.0, 0.05)
    decision = decide(original, candidate[:7], min_speedup=1.1)
    assert decision.rounds == 7


def test_interval_99_is_wider_than_95():
    original, candidate = samples(41, 10, 1.3, 0.1)
    speedup, low95, high95 = interval(original, candidate, 0.95)
    same, low99, high99 = interval(original, candidate, 0.99)
    assert speedup == same
    assert low99 < low95 < speedup < high95 < high99


def test_aa_final_decisions_are_never_faster():
    """A/A: 200 seeded trials of identical distributions (10% lognormal noise), 20 rounds."""
    rng = np.random.default_rng(2024)
    states = []
    for _ in range(200):
        original = (0.01 * rng.lognormal(0.0, 0.1, 20)).tolist()
        candidate = (0.01 * rng.lognormal(0.0, 0.1, 20)).tolist()
        states.append(decide(original, candidate, min_speedup=1.1, final=True).state)
    assert states.count("faster") == 0
    assert set(states) == {"not-faster"}


def test_aa_sequential_looks_are_never_faster():
    """The verifier's sequential procedure (look every 2 rounds up to 40) on A/A samples."""
    rng = np.random.default_rng(7)
    states = []
    for _ in range(60):
        original = (0.01 * rng.lognormal(0.0, 0.1, 40)).tolist()
        candidate = (0.01 * rng.lognormal(0.0, 0.1, 40)).tolist()
        states.append(sequential(original, candidate, 1.1))
    assert "faster" not in states


def test_sequential_finds_a_real_speedup():
    rng = np.random.default_rng(8)
    found = 0
    for _ in range(20):
        original = (0.01 * rng.lognormal(0.0, 0.1, 40)).tolist()
        candidate = (0.005 * rng.lognormal(0.0, 0.1, 40)).tolist()
        found += sequential(original, candidate, 1.1) == "faster"
    assert found == 20
