"""Search bookkeeping with a fake backend and a fake verifier (no model, no subprocess).

Budgets are never exceeded, duplicates are verified once, revision prompts carry the verifier's
feedback, maxmode re-ranks its hypotheses every ``update_every`` rounds, adaptive stops early
when the probe finds nothing equivalent.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from speedsmith.isolate import collect_context, find_function
from speedsmith.llm.base import Generation, Prompt
from speedsmith.search import strategies
from speedsmith.search.budget import (
    CANDIDATE_LIMIT,
    MIN_GENERATION_TOKENS,
    BudgetSpec,
    Meter,
    candidate_tokens,
    resolve,
)
from speedsmith.search.core import SearchResult
from speedsmith.search.prompt import HYPOTHESES_PREFILL, fallback_hypotheses, parse_hypotheses
from speedsmith.search.strategies import StrategyConfig, run_search
from speedsmith.settings import DEFAULTS, STRATEGIES, merge
from speedsmith.verify.verifier import Verdict

MODULE = """
def total(nums):
    t = 0
    for i in range(len(nums)):
        t = t + nums[i]
    return t
"""
FN = find_function(MODULE, "total")
CONTEXT = collect_context(MODULE, FN)

FAST = "def total(nums):\n    return sum(nums)\n"
FAST_REFORMATTED = 'def total(nums):\n    """Sum."""\n    return sum( nums )  # quick\n'
FASTER = "def total(nums):\n    return sum(nums, 0)\n"
SAME_SPEED = "def total(nums):\n    return sum(list(nums))\n"
WRONG = "def total(nums):\n    return len(nums)\n"
ORIGINAL = FN.source + "\n"
JUNK = "I think you should use numpy."
MISMATCH = "call 0 ([1, 2],): expected 3, got 2"


def fake_verdict(source: str) -> Verdict:
    if "return len(nums)" in source:
        return Verdict(False, MISMATCH, (MISMATCH,))
    if "sum(nums, 0)" in source:
        return Verdict(True, "2.50x", (), 2.5, (2.2, 2.8), True, 10)
    if "sum(list(nums))" in source:
        return Verdict(True, "0.90x", (), 0.9, (0.8, 1.0), False, 10)
    if "sum(" in source:
        return Verdict(True, "1.50x", (), 1.5, (1.3, 1.7), True, 10)
    return Verdict(False, "not equivalent")


@dataclass
class FakeVerifier:
    seen: list[str] = field(default_factory=list)

    def __call__(self, source: str) -> Verdict:
        self.seen.append(source)
        return fake_verdict(source)


@dataclass
class FakeBackend:
    """Replies from ``reply(prompt, call)``; each reply costs ``cost`` tokens, capped at
    ``max_tokens`` (as llama.cpp does). Records every call."""

    reply: Callable[[Prompt, int], str]
    cost: int = 40
    name: str = "fake"
    calls: list[dict[str, object]] = field(default_factory=list)

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
        text = self.reply(prompt, len(self.calls))
        tokens = min(self.cost, max_tokens)
        self.calls.append(
            {"prompt": prompt, "max_tokens": max_tokens, "tokens": tokens, "seed": seed}
        )
        return Generation(text=text, prompt_tokens=10, completion_tokens=tokens, seconds=0.0)


def cycling(*texts: str) -> Callable[[Prompt, int], str]:
    pool = itertools.cycle(texts)
    return lambda prompt, call: next(pool)


def is_hypotheses(prompt: Prompt) -> bool:
    return prompt.prefill == HYPOTHESES_PREFILL


def search(
    backend: FakeBackend,
    strategy: str,
    tokens: int,
    *,
    candidates: int | None = None,
    seconds: float = math.inf,
    verifier: FakeVerifier | None = None,
    clock: Callable[[], float] | None = None,
    **config: int,
) -> SearchResult:
    spec = BudgetSpec(tokens, seconds, candidates, candidate_tokens(FN.source))
    extra = {} if clock is None else {"clock": clock}
    return run_search(
        FN,
        CONTEXT,
        backend,
        verifier or FakeVerifier(),
        config=StrategyConfig(name=strategy, **config),
        budget=spec,
        temperature=0.7,
        seed=5,
        progress=lambda phase, message: None,
        **extra,  # type: ignore[arg-type]
    )


# -- budgets --------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", [pytest.param(s, id=s) for s in STRATEGIES])
@pytest.mark.parametrize(
    ("tokens", "cost"),
    [
        pytest.param(100, 40, id="tiny"),
        pytest.param(333, 70, id="odd"),
        pytest.param(1000, 128, id="cap-sized-replies"),
        pytest.param(2000, 35, id="many-rounds"),
    ],
)
def test_budget_is_never_exceeded(strategy: str, tokens: int, cost: int):
    replies = cycling(FAST, WRONG, JUNK, SAME_SPEED, FASTER, ORIGINAL)
    backend = FakeBackend(replies, cost=cost)
    result = search(backend, strategy, tokens)
    spent = sum(int(c["tokens"]) for c in backend.calls)  # type: ignore[call-overload]
    assert result.completion_tokens == spent <= tokens
    assert result.budget_tokens == tokens
    assert result.generations == len(backend.calls)
    before = 0
    for call in backend.calls:  # every generation was asked for at most what was left
        assert int(call["max_tokens"]) <= tokens - before  # type: ignore[call-overload]
        before += int(call["tokens"])  # type: ignore[call-overload]
    if result.route != "hopeless" and "depth" not in result.stopped:
        # It stops when a candidate would likely be cut off by the budget: less left than
        # three in four of its complete replies (every reply costs ``cost`` here), or than
        # half the cap before the first.
        cap = candidate_tokens(FN.source)
        complete = any(not a.truncated and not a.tool for a in result.attempts)
        needed = max(MIN_GENERATION_TOKENS, min(cost, cap) if complete else cap // 2)
        assert tokens - spent < needed or "improvement" in result.stopped


def test_no_candidate_starts_that_the_budget_would_mostly_cut_off():
    meter = Meter(BudgetSpec(1000, math.inf, None, 200))
    assert meter.needed_tokens == 100, "half the cap before any reply was read"
    meter.note_reply(30, complete=True)
    meter.note_reply(45, complete=True)
    meter.note_reply(200, complete=False)  # cut off: says nothing of a complete reply's length
    meter.note_reply(60, complete=True)
    assert meter.needed_tokens == 60, "as long as three in four complete replies"
    meter.charge(930)
    assert meter.can_generate() and meter.max_tokens() == 70
    meter.charge(20)
    assert not meter.can_generate(), "50 left: the next reply would likely be cut off"


def test_wall_clock_cap_stops_the_search():
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0  # every look at the clock costs a second
        return now[0]

    backend = FakeBackend(cycling(FAST, WRONG), cost=30)
    result = search(backend, "best-of-n", 100_000, seconds=10.0, clock=clock)
    assert 0 < len(backend.calls) < 10
    assert "wall-clock" in result.stopped


@pytest.mark.parametrize(
    ("budget", "seconds", "expected"),
    [
        pytest.param("quick", None, BudgetSpec(600, 120.0, None, 128), id="quick"),
        pytest.param("standard", None, BudgetSpec(2000, 300.0, None, 128), id="standard"),
        pytest.param("max", 30.0, BudgetSpec(8000, 30.0, None, 128), id="max-capped"),
        pytest.param(8, None, BudgetSpec(8 * 128, 600.0, 8, 128), id="candidates"),
        pytest.param(
            CANDIDATE_LIMIT - 1, None, BudgetSpec(99 * 128, 600.0, 99, 128), id="candidates-max"
        ),
        pytest.param(CANDIDATE_LIMIT, None, BudgetSpec(100, 600.0, None, 128), id="tokens-min"),
        pytest.param(1500, 45.5, BudgetSpec(1500, 45.5, None, 128), id="tokens"),
    ],
)
def test_budget_resolution(budget: str | int, seconds: float | None, expected: BudgetSpec):
    assert resolve(budget, seconds, 128) == expected


def test_candidate_budget_draws_exactly_that_many_samples():
    backend = FakeBackend(cycling(WRONG, FAST), cost=500)  # capped at the per-candidate cap
    result = search(backend, "best-of-n", 3 * 128, candidates=3)
    assert result.generated == 3 and len(backend.calls) == 3
    assert all(c["max_tokens"] == 128 for c in backend.calls)


def test_best_of_n_draws_independent_samples_and_verifies_each_distinct_one():
    backend = FakeBackend(cycling(WRONG, FAST, FAST_REFORMATTED, JUNK))
    result = search(backend, "best-of-n", 4 * 128, candidates=4, verifier=FakeVerifier())
    assert (result.generated, result.parsed, len(result.equivalent)) == (4, 3, 1)
    assert [a.source for a in result.faster] == [FAST.rstrip("\n")]
    assert len({c["seed"] for c in backend.calls}) == 4, "every sample gets its own seed"


# -- dedupe ---------------------------------------------------------------------------------


def test_duplicates_and_the_original_are_not_verified_again():
    backend = FakeBackend(cycling(FAST, FAST_REFORMATTED, ORIGINAL, WRONG, FAST, JUNK))
    verifier = FakeVerifier()
    result = search(backend, "best-of-n", 6 * 128, candidates=6, verifier=verifier)
    assert verifier.seen == [FAST.rstrip("\n"), WRONG.rstrip("\n")]
    assert [a.error for a in result.attempts][1:3] == ["duplicate", "same as the original"]
    assert result.attempts[1].duplicate_of == 0 and result.attempts[4].duplicate_of == 0
    assert result.attempts[5].source is None
    assert len(result.equivalent) == 1, "a duplicate is not counted twice"


# -- revision -------------------------------------------------------------------------------


def test_revision_prompts_carry_the_attempt_and_the_feedback():
    backend = FakeBackend(cycling(JUNK, WRONG, FAST, FASTER, FASTER))
    result = search(backend, "revision", 5 * 40)
    users = [str(c["prompt"].user) for c in backend.calls]  # type: ignore[attr-defined]
    assert "earlier attempt" not in users[0]
    assert JUNK in users[1] and "not a valid function" in users[1]
    assert "len(nums)" in users[2] and MISMATCH in users[2], "mismatch: expected vs got"
    assert "1.50x faster" in users[3]
    assert "2.50x faster" in users[4], "the best attempt so far is revised"
    assert [a.parent for a in result.attempts] == [None, 0, 1, 2, 3]
    assert result.faster[0].source == FASTER.rstrip("\n")


def test_revision_shows_the_duplicate_of_the_original_as_such():
    backend = FakeBackend(cycling(ORIGINAL, FAST))
    search(backend, "revision", 2 * 40)
    assert "same as the original function" in str(backend.calls[1]["prompt"].user)  # type: ignore[attr-defined]


# -- beam -----------------------------------------------------------------------------------


def test_beam_expands_the_top_candidates():
    replies = cycling(JUNK, WRONG, FAST, SAME_SPEED, ORIGINAL, JUNK, FASTER)
    backend = FakeBackend(replies, cost=20)
    result = search(backend, "beam", 12 * 20, beam_width=2, beam_expand=2)
    first = [i for i, a in enumerate(result.attempts) if a.round == 0]
    assert len(first) == 4
    second = [a for a in result.attempts if a.round == 1]
    # the two best of round 0: FAST (faster) and SAME_SPEED (equivalent), 2 children each
    assert sorted({a.parent for a in second}) == [2, 3]  # type: ignore[type-var]
    assert len(second) == 4


# -- maxmode --------------------------------------------------------------------------------


IDEAS = (
    " Use the sum built-in.\n2. Use a set for membership tests\n"
    "3. Iterate directly instead of by index\n"
)


@pytest.fixture
def no_patterns(monkeypatch: pytest.MonkeyPatch) -> None:
    """maxmode's hypotheses from the model alone (detected patterns would come first)."""
    monkeypatch.setattr(strategies, "pattern_hypotheses", lambda source, imports: [])


def maxmode_replies(prompt: Prompt, call: int) -> str:
    if is_hypotheses(prompt):
        return IDEAS
    # the branch with the 'sum' idea finds FAST, the others only produce wrong code
    return FAST if "Idea: Use the sum built-in" in prompt.user else WRONG


@pytest.mark.usefixtures("no_patterns")
@pytest.mark.parametrize(
    ("depth", "every", "rounds"),
    [
        pytest.param(6, 2, [2, 4], id="every-2"),
        pytest.param(10, 2, [2, 4, 6, 8], id="default-depth"),
        pytest.param(7, 3, [3, 6], id="every-3"),
        pytest.param(2, 2, [], id="too-shallow"),
    ],
)
def test_maxmode_updates_hypotheses_every_interval(depth: int, every: int, rounds: list[int]):
    backend = FakeBackend(maxmode_replies, cost=10)
    result = search(
        backend,
        "maxmode",
        100_000,
        maxmode_width=3,
        maxmode_depth=depth,
        maxmode_hypotheses=5,
        maxmode_update_every=every,
    )
    assert [u.round for u in result.updates] == rounds
    assert result.stopped == f"depth {depth} reached"
    assert max(a.round for a in result.attempts) == depth - 1
    assert {a.branch for a in result.attempts} == {0, 1, 2}


@pytest.mark.usefixtures("no_patterns")
def test_maxmode_hypotheses_come_from_the_model_then_are_ranked_and_replaced():
    backend = FakeBackend(maxmode_replies, cost=10)
    result = search(
        backend,
        "maxmode",
        100_000,
        maxmode_width=3,
        maxmode_depth=4,
        maxmode_hypotheses=5,
        maxmode_update_every=2,
    )
    assert result.hypotheses[:3] == (
        "Use the sum built-in",
        "Use a set for membership tests",
        "Iterate directly instead of by index",
    )
    assert len(result.hypotheses) >= 5, "generic ideas fill the gap to 5"
    assert is_hypotheses(backend.calls[0]["prompt"])  # type: ignore[arg-type]
    first = result.updates[0]
    assert first.ranking[0][0] == "Use the sum built-in" and first.ranking[0][1] >= 3.0
    # both failing branches get the reserve ideas, worst first
    assert {old for old, _new in first.replaced} == {
        "Use a set for membership tests",
        "Iterate directly instead of by index",
    }
    assert {new for _old, new in first.replaced} == set(result.hypotheses[3:5])
    later = [a for a in result.attempts if a.round >= 2]
    assert {a.hypothesis for a in later} == {"Use the sum built-in", *result.hypotheses[3:5]}
    branch0 = [a for a in result.attempts if a.branch == 0 and a.round > 0]
    assert all(a.parent is not None for a in branch0), "a branch revises its own best"


@pytest.mark.usefixtures("no_patterns")
def test_maxmode_asks_for_new_hypotheses_when_the_reserve_is_empty():
    backend = FakeBackend(maxmode_replies, cost=10)
    result = search(
        backend,
        "maxmode",
        100_000,
        maxmode_width=3,
        maxmode_depth=5,
        maxmode_hypotheses=3,
        maxmode_update_every=2,
    )
    proposals = [c for c in backend.calls if is_hypotheses(c["prompt"])]  # type: ignore[arg-type]
    assert len(proposals) >= 2
    assert "did not work" in str(proposals[1]["prompt"].user)  # type: ignore[attr-defined]
    tokens = sum(int(c["tokens"]) for c in backend.calls)  # type: ignore[call-overload]
    assert result.completion_tokens == tokens, "hypothesis proposals are paid for too"


# -- adaptive -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "candidates", "calls"),
    [
        # 1000 tokens: batches of 4 x 30 tokens until a quarter (250) is spent -> 3 batches.
        pytest.param(1000, None, 12, id="tokens-quarter-of-the-budget"),
        # 64 candidates: at most 16 probe samples.
        pytest.param(64 * 128, 64, 16, id="candidates-quarter-of-the-count"),
        # 4 candidates: one batch.
        pytest.param(4 * 128, 4, 4, id="small-budget-one-batch"),
    ],
)
def test_adaptive_stops_early_when_nothing_is_equivalent(
    tokens: int, candidates: int | None, calls: int
):
    backend = FakeBackend(cycling(WRONG, JUNK, ORIGINAL, WRONG, JUNK), cost=30)
    result = search(backend, "adaptive", tokens, candidates=candidates, adaptive_probe_size=4)
    assert result.route == "hopeless"
    assert result.early_stop
    assert len(backend.calls) == calls
    assert result.completion_tokens == calls * 30, "the probe's cost counts"
    assert f"nothing equivalent after a {calls}-candidate probe" in result.stopped


def test_adaptive_probe_extends_until_something_is_equivalent():
    """An unlucky first batch does not condemn the function: the second batch finds FAST."""
    replies = [WRONG, JUNK, WRONG, JUNK, WRONG, FAST, FASTER, FASTER, FASTER, FASTER]
    backend = FakeBackend(lambda prompt, call: replies[min(call, len(replies) - 1)], cost=30)
    result = search(backend, "adaptive", 10_000, adaptive_probe_size=4, adaptive_patience=2)
    assert result.route == "easy"
    assert [a.round for a in result.attempts[:8]] == [0] * 8, "two probe batches"
    assert result.attempts[8].parent == 6, "revision starts from the probe's best (FASTER)"


def test_adaptive_easy_route_revises_the_best_until_no_improvement():
    backend = FakeBackend(cycling(WRONG, FAST, WRONG, JUNK, FASTER, FASTER, FASTER, FASTER))
    result = search(backend, "adaptive", 10_000, adaptive_probe_size=4, adaptive_patience=2)
    assert result.route == "easy"
    revisions = result.attempts[4:]
    assert revisions[0].parent == 1, "revision starts from the probe's best"
    assert result.faster[0].source == FASTER.rstrip("\n")
    assert result.stopped == "2 revisions without improvement"
    assert len(result.attempts) == 7


def test_adaptive_hard_route_samples_wider_then_revises():
    """Equivalent but not faster in the probe: more samples until one is faster, then revision
    of that one until no improvement."""
    replies = [WRONG, SAME_SPEED, JUNK, WRONG, WRONG, JUNK, FAST, WRONG, WRONG, WRONG, WRONG]
    backend = FakeBackend(lambda prompt, call: replies[min(call, len(replies) - 1)], cost=25)
    result = search(backend, "adaptive", 10_000, adaptive_probe_size=4, adaptive_patience=2)
    assert result.route == "hard"
    assert [a.round for a in result.attempts[:8]] == [0] * 8, "probe, then a wider batch"
    assert [a.parent for a in result.attempts[8:]] == [6, 6], "revisions of the faster one"
    assert result.stopped == "2 revisions without improvement"


def test_adaptive_hard_route_keeps_to_the_candidate_count():
    backend = FakeBackend(cycling(WRONG, SAME_SPEED, JUNK, WRONG), cost=25)
    result = search(backend, "adaptive", 10 * 128, candidates=10, adaptive_probe_size=4)
    assert result.route == "hard"
    assert len(backend.calls) == 10
    assert not result.faster


def test_cancel_is_honoured_between_generations():
    from speedsmith.errors import Cancelled

    cancel = threading.Event()

    def reply(prompt: Prompt, call: int) -> str:
        cancel.set()
        return FAST

    with pytest.raises(Cancelled):
        run_search(
            FN,
            CONTEXT,
            FakeBackend(reply),
            FakeVerifier(),
            config=StrategyConfig(name="revision"),
            budget=BudgetSpec(1000, math.inf, None, 128),
            temperature=0.7,
            seed=1,
            progress=lambda p, m: None,
            cancel=cancel,
        )


# -- hypotheses parsing and settings --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        pytest.param(" Use a set.\n2. Use sum()\n", 6, ["Use a set", "Use sum()"], id="numbered"),
        pytest.param(
            " Use a set\n- Use a set\n* use a SET\n3) Cache len(x)\n",
            6,
            ["Use a set", "Cache len(x)"],
            id="bullets-and-duplicates",
        ),
        pytest.param(
            " a\n2. ```python\n3. Sort the list once first",
            6,
            ["Sort the list once first"],
            id="junk",
        ),
        pytest.param(
            " One idea\n2. Two ideas\n3. Three ideas", 2, ["One idea", "Two ideas"], id="limit"
        ),
    ],
)
def test_parse_hypotheses(text: str, limit: int, expected: list[str]):
    assert parse_hypotheses(text, limit) == expected


def test_fallback_hypotheses_put_relevant_ideas_first():
    ideas = fallback_hypotheses(FN.source)
    assert ideas[0] == "Iterate over the items directly instead of by index"
    assert len(ideas) == len(set(ideas)) >= 6


@pytest.mark.parametrize(
    ("options", "changed", "warned"),
    [
        pytest.param({"strategy": "maxmode"}, {"strategy": "maxmode"}, False, id="strategy"),
        pytest.param({"strategy": "greedy"}, {}, True, id="unknown-strategy"),
        pytest.param(
            {"maxmodeWidth": 3, "maxmodeUpdateEvery": 1},
            {"maxmode_width": 3, "maxmode_update_every": 1},
            False,
            id="maxmode",
        ),
        pytest.param({"maxmodeDepth": 0}, {}, True, id="zero-depth"),
        pytest.param({"budgetSeconds": 30}, {"budget_seconds": 30.0}, False, id="seconds"),
        pytest.param({"budgetSeconds": -1}, {}, True, id="negative-seconds"),
        pytest.param({"budget": 2000}, {"budget": 2000}, False, id="token-budget"),
    ],
)
def test_search_settings(options: dict[str, object], changed: dict[str, object], warned: bool):
    merged, warnings = merge(DEFAULTS, options, origin="test")
    assert bool(warnings) == warned
    for name, value in changed.items():
        assert getattr(merged, name) == value
    config = StrategyConfig.from_settings(merged)
    assert config.name == merged.strategy
    assert config.maxmode_width == merged.maxmode_width


# -- verification overlaps generation -------------------------------------------------------


def test_verification_overlaps_generation_and_keeps_the_order():
    """Candidate k is verified while candidate k+1 is generated; attempts stay in order."""
    events: list[str] = []
    lock = threading.Lock()
    first_verify_started = threading.Event()

    def reply(prompt: Prompt, call: int) -> str:
        with lock:
            events.append(f"generate {call} start")
        if call == 1:  # the second generation waits until the first candidate is verifying
            assert first_verify_started.wait(5), "verification did not start during generation"
        with lock:
            events.append(f"generate {call} end")
        return [FAST, SAME_SPEED, WRONG, FASTER][call]

    def verifier(source: str) -> Verdict:
        first_verify_started.set()
        with lock:
            events.append(f"verify {source.splitlines()[1].strip()}")
        return fake_verdict(source)

    result = run_search(
        FN,
        CONTEXT,
        FakeBackend(reply),
        verifier,
        config=StrategyConfig(name="best-of-n"),
        budget=BudgetSpec(10_000, math.inf, 4, 128),
        temperature=0.7,
        seed=1,
        progress=lambda p, m: None,
    )
    assert events.index("verify return sum(nums)") < events.index("generate 1 end")
    assert [a.source for a in result.attempts] == [
        s.rstrip("\n") for s in (FAST, SAME_SPEED, WRONG, FASTER)
    ]
    assert [a.verdict.speedup if a.verdict else None for a in result.attempts] == [
        1.5,
        0.9,
        None,
        2.5,
    ]
    assert result.faster[0].source == FASTER.rstrip("\n")


def test_cancel_during_overlapped_verification_stops_the_search():
    from speedsmith.errors import Cancelled

    cancel = threading.Event()

    def verifier(source: str) -> Verdict:
        cancel.set()
        raise Cancelled("cancelled")

    with pytest.raises(Cancelled):
        run_search(
            FN,
            CONTEXT,
            FakeBackend(cycling(FAST, FASTER, SAME_SPEED)),
            verifier,
            config=StrategyConfig(name="best-of-n"),
            budget=BudgetSpec(10_000, math.inf, 3, 128),
            temperature=0.7,
            seed=1,
            progress=lambda p, m: None,
            cancel=cancel,
        )
