"""The on-save debounce of ``speedsmith.lsp.scheduler``, driven by a fake clock and timer.

A background run waits until ``onSaveDebounceSeconds`` have passed since its document's last
save; each save restarts the wait of every queued run of that document; other documents are
not held up. The scheduler's clock and timer are injected: the test moves the clock and fires
the armed timer itself, and waits (on events, with a timeout that only catches hangs) for the
runs the scheduler starts. Nothing here sleeps or reads the wall clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from speedsmith.lsp.scheduler import Pending, Scheduler

HANG = 60.0
"""Only a hang takes this long."""


@dataclass
class FakeTimer:
    due: float
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class Harness:
    """A scheduler on a fake clock whose background runs only record what they ran."""

    now: float = 0.0
    timers: list[FakeTimer] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    scheduler: Scheduler = field(init=False)

    def __post_init__(self) -> None:
        self.scheduler = Scheduler(
            lambda method, params: None, clock=self.clock, call_later=self.later
        )
        self.scheduler.background = self.run

    def clock(self) -> float:
        return self.now

    def later(self, delay: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(self.now + delay, callback)
        self.timers.append(timer)
        return timer

    async def run(self, pending: Pending) -> None:
        self.ran.append(f"{pending.uri}:{pending.qualname}")

    def save(self, uri: str, qualname: str, delay: float) -> None:
        self.scheduler.enqueue(Pending(uri, qualname, "hash"), delay)
        self.scheduler.kick()

    async def advance(self, seconds: float) -> None:
        """Move the clock; fire the live timers now due (as the event loop would)."""
        self.now += seconds
        for timer in list(self.timers):
            if not timer.cancelled and timer.due <= self.now:
                self.timers.remove(timer)
                timer.callback()
        await self.settle()

    async def settle(self) -> None:
        """Wait for every run the scheduler started to finish."""
        while (task := self.scheduler.task) is not None:
            await asyncio.wait_for(asyncio.shield(task), timeout=HANG)

    def armed(self) -> list[float]:
        return sorted(t.due for t in self.timers if not t.cancelled)


# Each step: ("save", uri, qualname, debounce seconds) or ("advance", seconds); then what has
# run so far (in order).
Step = tuple[object, ...]

CASES = [
    pytest.param(
        [("save", "a", "f", 1.0), ("advance", 0.5)],
        [],
        id="not-before-the-wait-is-over",
    ),
    pytest.param(
        [("save", "a", "f", 1.0), ("advance", 1.0)],
        ["a:f"],
        id="runs-once-the-wait-is-over",
    ),
    pytest.param(
        [("save", "a", "f", 0.0)],
        ["a:f"],
        id="zero-runs-at-once",
    ),
    pytest.param(
        [("save", "a", "f", 1.0), ("advance", 0.8), ("save", "a", "f", 1.0), ("advance", 0.8)],
        [],
        id="a-second-save-restarts-the-wait",
    ),
    pytest.param(
        [
            ("save", "a", "f", 1.0),
            ("advance", 0.8),
            ("save", "a", "f", 1.0),
            ("advance", 0.8),
            ("advance", 0.2),
        ],
        ["a:f"],
        id="runs-once-after-the-last-save",
    ),
    pytest.param(
        [("save", "a", "f", 1.0), ("advance", 0.8), ("save", "a", "g", 1.0), ("advance", 0.5)],
        [],
        id="a-save-of-the-file-holds-its-other-functions-too",
    ),
    pytest.param(
        [
            ("save", "a", "f", 1.0),
            ("advance", 0.8),
            ("save", "a", "g", 1.0),
            ("advance", 1.0),
        ],
        ["a:f", "a:g"],
        id="then-both-run-one-after-the-other",
    ),
    pytest.param(
        [("save", "a", "f", 1.0), ("advance", 0.8), ("save", "b", "h", 1.0), ("advance", 0.2)],
        ["a:f"],
        id="another-file-does-not-hold-it-up",
    ),
    pytest.param(
        [
            ("save", "a", "f", 1.0),
            ("advance", 0.8),
            ("save", "b", "h", 1.0),
            ("advance", 0.2),
            ("advance", 0.8),
        ],
        ["a:f", "b:h"],
        id="each-file-on-its-own-wait",
    ),
]


@pytest.mark.parametrize(("steps", "expected"), CASES)
async def test_background_runs_wait_for_the_debounce(
    steps: list[Step], expected: list[str]
) -> None:
    harness = Harness()
    for step in steps:
        if step[0] == "save":
            _, uri, qualname, delay = step
            harness.save(str(uri), str(qualname), float(delay))  # type: ignore[arg-type]
            await harness.settle()
        else:
            await harness.advance(float(step[1]))  # type: ignore[arg-type]
    assert harness.ran == expected
    waiting = len(harness.scheduler.queue)
    assert harness.scheduler.state()["queued"] == waiting
    if waiting:  # whatever still waits has a timer armed that fires by the time it is due
        due = min(p.not_before for p in harness.scheduler.queue)
        assert harness.armed() and harness.armed()[0] <= due
    harness.scheduler.close()


async def test_dropping_the_document_and_closing_leave_no_run() -> None:
    harness = Harness()
    harness.save("a", "f", 1.0)
    harness.scheduler.drop("a")
    await harness.advance(5.0)
    harness.save("b", "g", 1.0)
    harness.scheduler.close()
    await harness.advance(5.0)
    assert harness.ran == []
    assert harness.armed() == []
