"""The measuring programs of the verification harness: timing rounds and the line profile
(stdlib only; loaded by path by ``harness.py``, which wires it with ``setup``).

- ``time_rounds`` times original and candidate interleaved (ABBA order) in this one process,
  with garbage collection off inside the timed region, emitting a calibration, optionally
  the CPU instructions of one pass each (``cirron``), then one message per round until the
  parent stops it. The parent's statistics over these rounds are ``verify/timing.py``.
- ``line_profile`` line-profiles the original over the recorded calls (``sys.monitoring`` on
  3.12+, ``sys.settrace`` before, limited to its code object) and sums the lines per block of
  statements (``hot_blocks``): the hot lines for revision prompts and the hover, the hot region
  for region proposals (``search/region.py``).

The clock is the ``time.perf_counter`` the harness captured before any candidate code ran, so
a candidate that replaces ``time.perf_counter`` cannot change what is measured here.
"""

from __future__ import annotations

import ast
import gc
import inspect
import linecache
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


# -- the line profile ------------------------------------------------------------------------


class _Enough(BaseException):
    """Raised from the tracer at the time cap: ends the call (not caught by ``except
    Exception`` in the original)."""


def line_profile(
    original: Any, calls: list[dict[str, Any]], cap_seconds: float, region_share: float = 0.5
) -> dict[str, Any]:
    """Line profile of the original over the recorded calls, limited to its own code object:
    hits and seconds per line (a line's time runs until the frame's next event, so what it
    calls counts), cut short after ``cap_seconds``. ``sys.monitoring`` (LINE and start/return
    events of that code object only, under a tool id of its own, freed afterwards) where the
    interpreter has it (3.12+) and a tool id is free, else ``sys.settrace``.

    Every line that took time, most first (``lines``: ``[line, hits, seconds]``), and, from the
    function's syntax tree (``hot_blocks``), the seconds per block of statements (``blocks``)
    and the chain of hot regions, outermost first (``regions``)."""
    code = getattr(inspect.unwrap(original), "__code__", None)
    if code is None:
        return {"lines": [], "seconds": 0.0, "calls": 0, "method": "", "blocks": [], "regions": []}
    hits: dict[int, int] = {}
    spent: dict[int, float] = {}
    tool = _monitoring_tool()
    if tool is None:
        method = "sys.settrace"
        profiled = _traced(original, code, calls, cap_seconds, hits, spent)
    else:
        method = "sys.monitoring"
        profiled = _monitored(original, code, calls, cap_seconds, hits, spent, tool)
    top = sorted(spent, key=lambda line: -spent[line])
    found: dict[str, Any] = {
        "lines": [[line, hits.get(line, 0), spent[line]] for line in top],
        "seconds": sum(spent.values()),
        "calls": profiled,
        "method": method,
    }
    try:
        source = "".join(linecache.getlines(code.co_filename))
        found.update(hot_blocks(source, code.co_firstlineno, code.co_name, spent, region_share))
    except Exception:  # no source, or syntax this interpreter's ``ast`` cannot read
        found.update(blocks=[], regions=[])
    return found


def _replay_calls(original: Any, calls: list[dict[str, Any]], deadline: float, around: Any) -> int:
    """Replay the recorded calls (``around(run)`` switches the profiler on around each); the
    calls that ran to their end."""
    profiled = 0
    try:
        for call in calls:
            if _perf_counter() >= deadline:
                break
            args, kwargs = pickle.loads(call["args"])  # a fresh copy, as in replay.check_recorded
            take = len(pickle.loads(call["result"])) if call.get("iterator") else None
            ended = bool(call.get("exhausted") or call.get("iter_exc_type"))
            around(lambda: _invoke(original, args, kwargs, take, ended))  # noqa: B023
            profiled += 1
    except (_Enough, Exception):
        pass
    return profiled


def _traced(
    original: Any,
    code: Any,
    calls: list[dict[str, Any]],
    cap_seconds: float,
    hits: dict[int, int],
    spent: dict[int, float],
) -> int:
    """The ``sys.settrace`` profile (before 3.12): a local tracer per frame of ``code``."""
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

    def around(run: Any) -> None:
        saved = sys.gettrace()
        sys.settrace(tracer)
        try:
            run()
        finally:
            sys.settrace(saved)

    return _replay_calls(original, calls, deadline, around)


def _monitoring_tool() -> int | None:
    """A free ``sys.monitoring`` tool id, now ours (None before 3.12, or when all are taken)."""
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is None:
        return None
    for tool in (monitoring.PROFILER_ID, 3, 4):
        if monitoring.get_tool(tool) is None:
            try:
                monitoring.use_tool_id(tool, "speedsmith-profile")
            except ValueError:
                continue
            return int(tool)
    return None


def _monitored(
    original: Any,
    code: Any,
    calls: list[dict[str, Any]],
    cap_seconds: float,
    hits: dict[int, int],
    spent: dict[int, float],
    tool: int,
) -> int:
    """The ``sys.monitoring`` profile (3.12+): events of ``code`` only. A stack of running
    frames of ``code`` (recursion, generators): ``[line, since]`` each; a start or resume pushes
    one, a return, yield or unwind pops it, so a frame's line keeps counting while it calls
    (itself included), as with ``settrace``."""
    monitoring = sys.monitoring  # type: ignore[attr-defined,unused-ignore]
    events = monitoring.events
    clock = _perf_counter
    deadline = clock() + cap_seconds
    frames: list[list[Any]] = []

    def close() -> None:
        if frames:
            line, since = frames.pop()
            if line:
                spent[line] = spent.get(line, 0.0) + clock() - since

    def started(event_code: Any, offset: int, *rest: Any) -> None:
        if event_code is code:
            frames.append([0, clock()])

    def stopped(event_code: Any, offset: int, value: Any) -> None:
        if event_code is code:
            close()

    def line(event_code: Any, number: int) -> None:
        now = clock()
        if frames:
            top = frames[-1]
            if top[0]:
                spent[top[0]] = spent.get(top[0], 0.0) + now - top[1]
            top[0], top[1] = number, now
            hits[number] = hits.get(number, 0) + 1
        if now >= deadline:
            raise _Enough  # ends the call at the cap (the unwind pops its frames)

    local = events.LINE | events.PY_START | events.PY_RESUME | events.PY_RETURN | events.PY_YIELD
    callbacks = {
        events.LINE: line,
        events.PY_START: started,
        events.PY_RESUME: started,
        events.PY_THROW: started,
        events.PY_RETURN: stopped,
        events.PY_YIELD: stopped,
        events.PY_UNWIND: stopped,
    }

    def around(run: Any) -> None:
        del frames[:]
        monitoring.set_local_events(tool, code, local)
        monitoring.set_events(tool, events.PY_UNWIND | events.PY_THROW)  # not local events
        try:
            run()
        finally:
            monitoring.set_events(tool, 0)
            monitoring.set_local_events(tool, code, 0)
            while frames:  # a generator the call left suspended
                close()

    try:
        for event, callback in callbacks.items():
            monitoring.register_callback(tool, event, callback)
        return _replay_calls(original, calls, deadline, around)
    finally:
        for event in callbacks:
            monitoring.register_callback(tool, event, None)
        monitoring.free_tool_id(tool)


# -- lines to blocks -------------------------------------------------------------------------


def hot_blocks(
    module_source: str, first_line: int, name: str, spent: dict[int, float], share: float
) -> dict[str, Any]:
    """Seconds per block of the function ``name`` defined from ``first_line`` (1-based, its first
    decorator's line or its ``def`` line) in ``module_source``, from the seconds per line
    ``spent`` (absolute lines).

    A block is the statements of one body: the function's, a loop's, an ``if``/``elif``/
    ``else``, ``with``, ``try``/``except``/``finally`` or ``case`` body (not a nested function's
    or class's: their code is not profiled). A statement's seconds are those of its lines, the
    blocks nested in it included. ``blocks``: ``[first line, last line, seconds]`` of every
    block that took time, most first. ``regions``: the hot regions, outermost first, each the
    fewest consecutive statements of one block that hold at least ``share`` of all the seconds
    (the most seconds among those, then the earliest); the next one lies inside the previous
    when that is a single statement with a block of its own that holds ``share`` too. Whole
    statements of one block, like an editor selection (``isolate.snap_region``)."""
    total = sum(spent.values())
    function = _find_function(ast.parse(module_source), first_line, name)
    if function is None or total <= 0:
        return {"blocks": [], "regions": []}
    body = list(function.body)
    if len(body) > 1 and _is_docstring(body[0]):
        body = body[1:]

    def seconds(statements: list[Any]) -> float:
        low, high = statements[0].lineno, _end(statements[-1])
        return sum(s for line, s in spent.items() if low <= line <= high)

    blocks: list[list[Any]] = []
    pending = [body]
    while pending:
        block = pending.pop()
        taken = seconds(block)
        if taken > 0:
            blocks.append([block[0].lineno, _end(block[-1]), taken])
        for statement in block:
            pending.extend(_inner_blocks(statement))
    blocks.sort(key=lambda found: (-found[2], found[0]))

    regions: list[list[Any]] = []
    block = body
    need = share * total
    while True:
        window = _fewest(block, need, seconds)
        if window is None:
            break
        regions.append([window[0].lineno, _end(window[-1]), seconds(window)])
        inner = [b for b in _inner_blocks(window[0]) if seconds(b) >= need]
        if len(window) > 1 or not inner:
            break
        block = max(inner, key=seconds)
    return {"blocks": blocks, "regions": regions}


def _find_function(tree: Any, first_line: int, name: str) -> Any:
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name != name:
            continue
        lines = [node.lineno, *(d.lineno for d in node.decorator_list)]
        if first_line in lines:
            return node
    return None


def _is_docstring(statement: Any) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _end(node: Any) -> int:
    return int(getattr(node, "end_lineno", None) or node.lineno)


def _inner_blocks(statement: Any) -> list[list[Any]]:
    """The blocks of a compound statement (``elif`` chains flattened: an ``elif`` is no
    statement of its own in the source); none for nested functions and classes."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return []
    found: list[list[Any]] = []
    for field in ("body", "orelse", "finalbody"):
        value = getattr(statement, field, None)
        if not isinstance(value, list) or not value or not isinstance(value[0], ast.stmt):
            continue
        elif_ = (
            isinstance(statement, ast.If)
            and field == "orelse"
            and len(value) == 1
            and isinstance(value[0], ast.If)
            and value[0].col_offset == statement.col_offset
        )
        found.extend(_inner_blocks(value[0]) if elif_ else [value])
    for part in [*getattr(statement, "handlers", []), *getattr(statement, "cases", [])]:
        found.append(part.body)
    return found


def _fewest(block: list[Any], need: float, seconds: Any) -> list[Any] | None:
    """The fewest consecutive statements of ``block`` holding at least ``need`` seconds (the
    most seconds among those, then the earliest); None when the whole block holds less."""
    each = [seconds([statement]) for statement in block]
    sums = [0.0]
    for taken in each:
        sums.append(sums[-1] + taken)
    for size in range(1, len(block) + 1):
        best, best_seconds = -1, 0.0
        for start in range(len(block) - size + 1):
            taken = sums[start + size] - sums[start]
            if taken >= need and taken > best_seconds:
                best, best_seconds = start, taken
        if best >= 0:
            return block[best : best + size]
    return None
