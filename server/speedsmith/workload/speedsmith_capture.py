"""pytest plugin (stdlib only): record every call of the target, or substitute a candidate.

Loaded into the project's own pytest run with ``-p speedsmith_capture``; configured by the
``SPEEDSMITH_CAPTURE`` environment variable (JSON):

``{"mode": "record" | "substitute", "module": "pkg.mod", "qualname": "Class.method",
"sys_path": "/project", "out": "/tmp/x/workload.pkl", "max_calls": 200,
"max_bytes": 67108864, "candidate": "<source, substitute mode>"}``

Record mode wraps the target before test modules are collected and pickles, for each
outermost call: the arguments before the call, the return value or the exception, and the
arguments after the call (to see mutation). Substitute mode replaces the target with the
candidate's definition, so the project's tests run against it, and writes to ``out`` how
many times the candidate was called (a gate that never ran it proves nothing).
"""

from __future__ import annotations

import copy
import functools
import importlib
import io
import json
import os
import pickle
import sys
import threading
import time
from typing import Any

from speedsmith_candidate import define, resolve

_CONFIG: dict[str, Any] = {}
_CALLS: list[dict[str, Any]] = []
_STATE: dict[str, Any] = {
    "skipped": 0,
    "truncated": False,
    "bytes": 0,
    "installed": False,
    "error": "",
    "rootdir": "",
    "candidate_calls": 0,
}
_TESTS: dict[str, str] = {}
_REACHED: set[str] = set()
_CURRENT_TEST = {"nodeid": ""}
_DEPTH = threading.local()


def _record_wrapper(func: Any) -> Any:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        depth = getattr(_DEPTH, "value", 0)
        full = _STATE["truncated"] or len(_CALLS) >= _CONFIG.get("max_calls", 200)
        if depth > 0 or full:
            if full and depth == 0:
                _STATE["truncated"] = True
            return func(*args, **kwargs)
        _REACHED.add(_CURRENT_TEST["nodeid"])
        try:
            before = pickle.dumps((args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            _STATE["skipped"] += 1
            return func(*args, **kwargs)
        _DEPTH.value = depth + 1
        printed = io.StringIO()
        saved = sys.stdout
        sys.stdout = _Tee(saved, printed)
        started = time.perf_counter()
        try:
            value = func(*args, **kwargs)
        except BaseException as exc:
            seconds = time.perf_counter() - started
            _DEPTH.value = depth
            sys.stdout = saved
            _store(before, args, kwargs, seconds, printed.getvalue(), exc=exc)
            raise
        seconds = time.perf_counter() - started
        _DEPTH.value = depth
        sys.stdout = saved
        if _is_iterator(value):
            items: list[Any] = []
            _store(before, args, kwargs, seconds, printed.getvalue(), items=items)
            return _recording(value, items)
        _store(before, args, kwargs, seconds, printed.getvalue(), value=value)
        return value

    return wrapper


class _Tee:
    """Passes writes on to the test's stdout and keeps a copy."""

    def __init__(self, target: Any, copy: io.StringIO):
        self._target, self._copy = target, copy

    def write(self, text: str) -> int:
        if self._copy.tell() < 65536:
            self._copy.write(text)
        return int(self._target.write(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def _is_iterator(value: Any) -> bool:
    try:
        return hasattr(value, "__next__") and iter(value) is value
    except Exception:
        return False


def _recording(iterator: Any, items: list[Any]) -> Any:
    """Yield what ``iterator`` yields, keeping each item for the workload."""
    for item in iterator:
        items.append(copy.deepcopy(item))
        yield item


def _store(
    before: bytes,
    args: Any,
    kwargs: Any,
    seconds: float,
    printed: str,
    *,
    value: Any = None,
    exc: BaseException | None = None,
    items: list[Any] | None = None,
) -> None:
    try:
        after = pickle.dumps((args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        result = (
            None
            if exc is not None or items is not None
            else pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
        )
    except Exception:
        _STATE["skipped"] += 1
        return
    size = len(before) + len(after) + len(result or b"")
    if _STATE["bytes"] + size > _CONFIG.get("max_bytes", 64 << 20):
        _STATE["truncated"] = True
        return
    _STATE["bytes"] += size
    _CALLS.append(
        {
            "args": before,
            "after": after,
            "result": result,
            "exc_type": None if exc is None else _type_name(type(exc)),
            "exc_message": None if exc is None else str(exc)[:500],
            "seconds": seconds,
            "test": _CURRENT_TEST["nodeid"],
            "printed": printed,
            "iterator": items is not None,
            "items": items,
        }
    )


def _counting(value: Any) -> Any:
    """``value`` (function, staticmethod, classmethod or property) counting its calls."""
    if isinstance(value, (staticmethod, classmethod)):
        return type(value)(_counting(value.__func__))
    if isinstance(value, property):
        return property(_counting(value.fget), value.fset, value.fdel, value.__doc__)
    if not callable(value):
        return value

    @functools.wraps(value)
    def counted(*args: Any, **kwargs: Any) -> Any:
        _STATE["candidate_calls"] += 1
        return value(*args, **kwargs)

    return counted


def _type_name(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _install(*, early: bool = False) -> None:
    """Wrap (record) or replace (substitute) the target. ``early``: before conftest.py files
    load; if the module cannot be imported yet, try again at ``pytest_configure``."""
    if _STATE["installed"] or not _CONFIG:
        return
    root = _CONFIG["sys_path"]
    if root not in sys.path:
        sys.path.insert(0, root)
    if early:
        try:
            importlib.import_module(_CONFIG["module"])
        except Exception:
            return
    _STATE["installed"] = True
    if _CONFIG["mode"] == "substitute":
        # Any failure must fail the run: tests passing against the original prove nothing.
        module = importlib.import_module(_CONFIG["module"])
        owner, name, value = define(
            module, _CONFIG["qualname"], _CONFIG["candidate"], isolated=False
        )
        setattr(owner, name, _counting(value))
        return
    try:
        module = importlib.import_module(_CONFIG["module"])
        owner, name, raw = resolve(module, _CONFIG["qualname"])
    except Exception as exc:
        _STATE["error"] = f"cannot import {_CONFIG['module']}: {type(exc).__name__}: {exc}"
        return
    if isinstance(raw, staticmethod | classmethod):
        setattr(owner, name, type(raw)(_record_wrapper(raw.__func__)))
    else:
        setattr(owner, name, _record_wrapper(raw))


def _configure() -> None:
    text = os.environ.get("SPEEDSMITH_CAPTURE")
    if text and not _CONFIG:
        _CONFIG.update(json.loads(text))


def pytest_load_initial_conftests(early_config: Any, parser: Any, args: Any) -> None:
    """Install before the project's conftest.py files import the target."""
    _configure()
    _install(early=True)


def pytest_configure(config: Any) -> None:
    _configure()
    _STATE["rootdir"] = str(config.rootpath)
    _install()


def pytest_runtest_setup(item: Any) -> None:
    _CURRENT_TEST["nodeid"] = item.nodeid


def pytest_runtest_logreport(report: Any) -> None:
    if report.when == "call" or report.outcome != "passed":
        previous = _TESTS.get(report.nodeid)
        if previous in (None, "passed"):
            _TESTS[report.nodeid] = report.outcome


def pytest_unconfigure(config: Any) -> None:
    if _CONFIG and _CONFIG.get("mode") == "substitute" and _CONFIG.get("out"):
        with open(_CONFIG["out"], "w", encoding="utf-8") as handle:
            json.dump({"calls": _STATE["candidate_calls"]}, handle)
        return
    if not _CONFIG or _CONFIG.get("mode") != "record":
        return
    calls = []
    for call in _CALLS:
        if call["iterator"]:
            try:
                call["result"] = pickle.dumps(call["items"], pickle.HIGHEST_PROTOCOL)
            except Exception:
                _STATE["skipped"] += 1
                continue
        call.pop("items")
        calls.append(call)
    data = {
        "calls": calls,
        "skipped": _STATE["skipped"],
        "truncated": _STATE["truncated"],
        "error": _STATE["error"],
        "tests": _TESTS,
        "reached": sorted(_REACHED),
        "rootdir": _STATE["rootdir"],
    }
    with open(_CONFIG["out"], "wb") as handle:
        pickle.dump(data, handle, protocol=pickle.HIGHEST_PROTOCOL)
