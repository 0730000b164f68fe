"""Verification harness: the child process that runs a candidate (stdlib only).

Started as ``python -I harness.py CONFIG.json`` by ``speedsmith.verify.sandbox``. It applies
its resource limits before any user code is imported, then:

1. replays every recorded call on the candidate (or, with no candidate, on the original, which
   checks that the original is deterministic) and compares return value or exception type and
   the arguments after the call with what the tests recorded;
2. if asked, times original and candidate interleaved (ABBA order) in this one process, with
   garbage collection off inside the timed region, streaming one JSON line per round until the
   parent stops it.

Results go out as JSON lines on a private copy of stdout; the candidate's own prints go to
/dev/null. The parent never unpickles anything this process writes.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import pickle
import sys
import time
from typing import Any

_perf_counter = time.perf_counter  # captured before any candidate code runs
_dumps = json.dumps


def _limit(config: dict[str, Any]) -> None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    limits = config.get("limits", {})
    wanted = {
        "RLIMIT_CPU": limits.get("cpu_seconds"),
        "RLIMIT_AS": limits.get("memory_bytes"),
        "RLIMIT_FSIZE": limits.get("file_bytes"),
        "RLIMIT_NOFILE": limits.get("open_files"),
        "RLIMIT_CORE": 0,
    }
    for name, value in wanted.items():
        kind = getattr(resource, name, None)
        if kind is None or value is None:
            continue
        _soft, hard = resource.getrlimit(kind)
        value = int(value)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(kind, (value, hard if name != "RLIMIT_CPU" else value + 1))


def _resolve(module: Any, qualname: str) -> tuple[Any, Any]:
    owner = module
    parts = qualname.split(".")
    for part in parts[:-1]:
        owner = getattr(owner, part)
    name = parts[-1]
    raw = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    return owner, raw


def _callable(raw: Any) -> Any:
    """The plain function behind a staticmethod/classmethod (recorded args include ``cls``)."""
    if isinstance(raw, staticmethod | classmethod):
        return raw.__func__
    return raw


def _candidate(module: Any, qualname: str, source: str) -> Any:
    namespace = dict(module.__dict__)
    name = qualname.split(".")[-1]
    exec(compile(source, "<speedsmith candidate>", "exec"), namespace)
    return _callable(namespace[name])


_NUMBER = (int, float, complex)


def same(expected: Any, actual: Any, rel_tol: float, abs_tol: float, depth: int = 0) -> bool:
    """Structural equality with exact types and float tolerance (NaN equals NaN)."""
    if depth > 200:
        return False
    if type(expected) is not type(actual):
        return False
    if isinstance(expected, float):
        if math.isnan(expected) or math.isnan(actual):
            return math.isnan(expected) and math.isnan(actual)
        if expected == 0.0 and actual == 0.0:
            return math.copysign(1.0, expected) == math.copysign(1.0, actual)
        return math.isclose(expected, actual, rel_tol=rel_tol, abs_tol=abs_tol)
    if isinstance(expected, complex):
        return same(expected.real, actual.real, rel_tol, abs_tol) and same(
            expected.imag, actual.imag, rel_tol, abs_tol
        )
    if isinstance(expected, int | str | bytes | bool | type(None)):
        return bool(expected == actual)
    if isinstance(expected, list | tuple):
        return len(expected) == len(actual) and all(
            same(e, a, rel_tol, abs_tol, depth + 1) for e, a in zip(expected, actual, strict=True)
        )
    if isinstance(expected, dict):
        if list(expected.keys()) != list(actual.keys()):
            return False
        return all(same(expected[k], actual[k], rel_tol, abs_tol, depth + 1) for k in expected)
    if isinstance(expected, set | frozenset):
        return bool(expected == actual)
    try:
        return pickle.dumps(expected) == pickle.dumps(actual) or bool(expected == actual)
    except Exception:
        return False


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 200 else text[:197] + "..."


def _type_name(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _check(fn: Any, calls: list[dict[str, Any]], config: dict[str, Any]) -> list[str]:
    rel, abs_ = config["rel_tol"], config["abs_tol"]
    mismatches: list[str] = []
    for index, call in enumerate(calls):
        args, kwargs = pickle.loads(call["args"])
        shown = _short(args)[:120]
        try:
            value = fn(*args, **kwargs)
            raised = None
        except Exception as exc:
            value, raised = None, exc
        if call["exc_type"] is not None:
            if raised is None:
                mismatches.append(
                    f"call {index} {shown}: expected {call['exc_type']}, got {_short(value)}"
                )
            elif _type_name(type(raised)) != call["exc_type"]:
                got = _type_name(type(raised))
                mismatches.append(f"call {index} {shown}: expected {call['exc_type']}, got {got}")
        elif raised is not None:
            got = f"{_type_name(type(raised))}: {_short(str(raised))}"
            mismatches.append(f"call {index} {shown}: raised {got}")
        else:
            expected = pickle.loads(call["result"])
            if not same(expected, value, rel, abs_):
                mismatches.append(
                    f"call {index} {shown}: expected {_short(expected)}, got {_short(value)}"
                )
        after_expected = pickle.loads(call["after"])
        if not same(after_expected, (args, kwargs), rel, abs_):
            mismatches.append(f"call {index} {shown}: arguments mutated differently")
        if len(mismatches) >= 5:
            break
    return mismatches


def _run_all(fn: Any, prepared: list[tuple[Any, Any]]) -> float:
    gc.collect()
    gc.disable()
    started = _perf_counter()
    for args, kwargs in prepared:
        try:  # noqa: SIM105 - a plain try costs less than a context manager in the timed loop
            fn(*args, **kwargs)
        except Exception:
            pass
    elapsed = _perf_counter() - started
    gc.enable()
    return elapsed


def _time(
    original: Any, candidate: Any, calls: list[dict[str, Any]], config: dict[str, Any], emit: Any
) -> None:
    timing = config["timing"]
    blobs = [call["args"] for call in calls]

    def prepare(loops: int) -> list[tuple[Any, Any]]:
        return [pickle.loads(blob) for _ in range(loops) for blob in blobs]

    _run_all(original, prepare(1))  # warm-up
    _run_all(candidate, prepare(1))
    once = max(_run_all(original, prepare(1)), 1e-7)
    loops = max(1, min(10000, math.ceil(timing["min_round_seconds"] / once)))
    emit({"phase": "calibration", "loops": loops, "once_seconds": once})
    for index in range(int(timing["max_rounds"])):
        order = (original, candidate) if index % 2 == 0 else (candidate, original)
        seconds = {}
        for fn in order:
            prepared = prepare(loops)
            seconds[fn is original] = _run_all(fn, prepared)
            del prepared
        emit(
            {
                "phase": "round",
                "round": index,
                "original": seconds[True],
                "candidate": seconds[False],
            }
        )


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as handle:
        config = json.load(handle)
    _limit(config)
    out = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    sys.stdin = open(os.devnull)  # noqa: SIM115

    def emit(message: dict[str, Any]) -> None:
        out.write(_dumps(message) + "\n")
        out.flush()

    sys.path.insert(0, config["sys_path"])
    import importlib

    try:
        module = importlib.import_module(config["module"])
        _owner, raw = _resolve(module, config["qualname"])
        original = _callable(raw)
        with open(config["workload"], "rb") as workload:
            calls = pickle.load(workload)["calls"]
    except Exception as exc:
        emit({"phase": "error", "error": f"cannot load the original: {type(exc).__name__}: {exc}"})
        return 0
    fn = original
    if config.get("candidate") is not None:
        try:
            fn = _candidate(module, config["qualname"], config["candidate"])
        except Exception as exc:
            message = f"candidate does not load: {type(exc).__name__}: {_short(str(exc))}"
            emit({"phase": "equivalence", "equivalent": False, "mismatches": [message]})
            return 0
    mismatches = _check(fn, calls, config)
    emit({"phase": "equivalence", "equivalent": not mismatches, "mismatches": mismatches})
    if not mismatches and config.get("timing"):
        _time(original, fn, calls, config, emit)
    emit({"phase": "done"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
