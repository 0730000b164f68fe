"""The compute lock: generation and timing rounds take turns; timing waits for no new
generation (``compute.exclusive(priority=True)``)."""

from __future__ import annotations

import threading
import time

from speedsmith import compute


def test_timing_goes_before_generations_that_have_not_started():
    order: list[str] = []
    generating = threading.Event()
    timing_waits = threading.Event()

    def generation(name: str) -> None:
        with compute.exclusive():
            order.append(name)
            generating.set()
            time.sleep(0.2)

    def timing() -> None:
        timing_waits.set()
        with compute.exclusive(priority=True):
            order.append("timing")

    first = threading.Thread(target=generation, args=("generation 1",))
    first.start()
    assert generating.wait(5)
    waiter = threading.Thread(target=timing)
    waiter.start()
    assert timing_waits.wait(5)
    time.sleep(0.05)  # the timing round is now waiting for the lock
    second = threading.Thread(target=generation, args=("generation 2",))
    second.start()
    for thread in (first, waiter, second):
        thread.join(10)
    assert order == ["generation 1", "timing", "generation 2"]


def test_the_lock_is_reentrant_and_released():
    with compute.exclusive(priority=True), compute.exclusive(), compute.exclusive(priority=True):
        pass
    done = threading.Event()

    def other() -> None:
        with compute.exclusive():
            done.set()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(5)
    assert done.is_set()
