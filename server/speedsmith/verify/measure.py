"""The measuring programs of the verification harness: timing rounds and the line profile
(stdlib only; loaded by path by ``harness.py``, which wires it with ``setup``).

- ``time_rounds`` times original and candidate interleaved (ABBA order) in this one process,
  with garbage collection off inside the timed region, emitting a calibration, optionally
  the CPU instructions of one pass each (``cirron``), then one message per round until the
  parent stops it. The parent's statistics over these rounds are ``verify/timing.py``.
- ``line_profile`` line-profiles the original over the recorded calls (``sys.settrace``
  limited to its code object): the hot lines for revision prompts.

The clock is the ``time.perf_counter`` the harness captured before any candidate code ran, so
a candidate that replaces ``time.perf_counter`` cannot change what is measured here.
"""

from __future__ import annotations

import gc
import inspect
import math
import pickle
import sys
from typing import Any

_as: Any = None
"""The harness's ``_as(fn)``: side effects meanwhile are ``fn``'s (original or candidate)."""
_perf_counter: Any = None
"""``time.perf_counter`` as the harness captured it before any candidate code ran."""
_invoke: Any = None
"""``replay.invoke``: one call the way a test made it (the profile replays the recording)."""


def setup(as_role: Any, perf_counter: Any, invoke: Any) -> None:
    """Wire this module to the harness's shared state; called once, before any user code."""
    global _as, _perf_counter, _invoke
    _as, _perf_counter, _invoke = as_role, perf_counter, invoke


def _run_all(fn: Any, prepared: list[tuple[Any, Any]]) -> float:
    gc.collect()
    gc.disable()
    with _as(fn):
        started = _perf_counter()
        for args, kwargs in prepared:
            try:  # noqa: SIM105 - a plain try costs less than a context manager in the timed loop
                fn(*args, **kwargs)
            except Exception:
                pass
        elapsed = _perf_counter() - started
    gc.enable()
    return elapsed


def time_rounds(
    original: Any, candidate: Any, calls: list[dict[str, Any]], config: dict[str, Any], emit: Any
) -> None:
    timing = config["timing"]
    blobs = [call["args"] for call in calls if not call.get("iterator")]
    if not blobs:
        emit({"phase": "calibration", "loops": 0, "once_seconds": 0.0})
        return

    def prepare(loops: int) -> list[tuple[Any, Any]]:
        return [pickle.loads(blob) for _ in range(loops) for blob in blobs]

    _run_all(original, prepare(1))  # warm-up
    _run_all(candidate, prepare(1))
    once = max(_run_all(original, prepare(1)), 1e-7)
    loops = max(1, min(10000, math.ceil(timing["min_round_seconds"] / once)))
    emit({"phase": "calibration", "loops": loops, "once_seconds": once})
    if timing.get("instructions"):
        counted = _instructions(original, candidate, prepare)
        if counted is not None:
            emit({"phase": "instructions", **counted})
    for index in range(int(timing["max_rounds"])):
        seconds = [0.0, 0.0]  # original, candidate
        for which in (0, 1) if index % 2 == 0 else (1, 0):
            prepared = prepare(loops)
            seconds[which] = _run_all((original, candidate)[which], prepared)
            del prepared
        emit({"phase": "round", "round": index, "original": seconds[0], "candidate": seconds[1]})


def _instructions(original: Any, candidate: Any, prepare: Any) -> dict[str, int] | None:
    """CPU instructions retired by one pass of each (perf_event_open through ``cirron``; the
    parent asks only where a probe showed the counters readable). None when they are not."""
    try:
        from cirron import Collector

        counts = []
        for fn in (original, candidate):
            prepared = prepare(1)
            with Collector() as collector:
                _run_all(fn, prepared)
            counts.append(int(collector.counters.instruction_count))
    except Exception:
        return None
    return {"original": counts[0], "candidate": counts[1]}


def line_profile(original: Any, calls: list[dict[str, Any]], cap_seconds: float) -> dict[str, Any]:
    """Line profile of the original over the recorded calls: ``sys.settrace`` limited to its
    own code object, hits and seconds per line (a line's time runs until the frame's next
    event, so what it calls counts), cut short after ``cap_seconds``. The top 5 lines by time."""

    class _Enough(BaseException):  # not caught by the original's ``except Exception``
        pass

    code = getattr(inspect.unwrap(original), "__code__", None)
    if code is None:
        return {"lines": [], "seconds": 0.0, "calls": 0}
    hits: dict[int, int] = {}
    spent: dict[int, float] = {}
    clock = _perf_counter
    deadline = clock() + cap_seconds

    def frame_tracer() -> Any:
        line, since = 0, 0.0  # the line running in this frame, since when

        def local(frame: Any, event: str, arg: Any) -> Any:
            nonlocal line, since
            now = clock()
            if line:
                spent[line] = spent.get(line, 0.0) + now - since
            since = now
            if event == "return":
                line = 0
            elif event == "line":
                line = frame.f_lineno
                hits[line] = hits.get(line, 0) + 1
            if now >= deadline:
                raise _Enough  # ends the call (and tracing) at the cap
            return local

        return local

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        return frame_tracer() if frame.f_code is code else None

    profiled = 0
    saved = sys.gettrace()
    try:
        for call in calls:
            if clock() >= deadline:
                break
            args, kwargs = pickle.loads(call["args"])  # a fresh copy, as in replay.check_recorded
            take = len(pickle.loads(call["result"])) if call.get("iterator") else None
            ended = bool(call.get("exhausted") or call.get("iter_exc_type"))
            sys.settrace(tracer)
            try:
                _invoke(original, args, kwargs, take, ended)
            finally:
                sys.settrace(saved)
            profiled += 1
    except (_Enough, Exception):
        pass
    top = sorted(spent, key=lambda line: -spent[line])[:5]
    lines = [[line, hits.get(line, 0), spent[line]] for line in top]
    return {"lines": lines, "seconds": sum(spent.values()), "calls": profiled}
