"""Equivalence rules and harness-integrity checks (stdlib only: also loaded by the harness).

``same(expected, actual)`` decides whether a candidate's value matches the original's:

- types must match exactly: ``1``, ``1.0`` and ``True`` are three different results;
- floats match within ``rel_tol``/``abs_tol``; NaN matches NaN; ``0.0`` and ``-0.0`` differ;
- lists, tuples and dicts (key order included) match element by element; sets by ``==``;
  subclasses of these also compare their attributes (``__dict__`` and ``__slots__``);
- functions, classes and modules must be the very same object;
- other objects: if the class defines its own ``__eq__``, that (the original's class)
  decides; otherwise their attributes (``__dict__`` and ``__slots__``) are compared with
  these same rules; the last resort is equal pickles.

``Guard`` snapshots what a candidate could tamper with to fake a pass or a speedup (the
clocks, ``gc``, ``pickle``, builtins, the target module's globals and classes) and reports
what changed.
"""

from __future__ import annotations

import builtins
import gc
import json
import math
import pickle
import sys
import time
import types
from typing import Any

_SCALARS = (int, str, bytes, bool, type(None), range, type(Ellipsis))
_EXACT = {int, str, bytes, bool, type(None)}
_BY_IDENTITY = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
    type,
)


def same(expected: Any, actual: Any, rel_tol: float, abs_tol: float, depth: int = 0) -> bool:
    """Structural equality with exact types and float tolerance (rules in the module doc)."""
    if depth > 200:
        try:
            return pickle.dumps(expected) == pickle.dumps(actual)
        except Exception:
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
    if isinstance(expected, _SCALARS):
        return bool(expected == actual)
    if isinstance(expected, (list, tuple)):
        if len(expected) != len(actual):
            return False
        left, right = list(expected), list(actual)  # what iterating them yields
        kinds = list(map(type, left))
        if set(kinds) <= _EXACT and kinds == list(map(type, right)) and left == right:
            pass  # only ints, strings, bytes, None: == is exact (and fast on long lists)
        elif not all(
            same(e, a, rel_tol, abs_tol, depth + 1)
            for e, a in zip(left, right)  # noqa: B905 - zip(strict=) is 3.10+; lengths match
        ):
            return False
        return _same_extra_state(expected, actual, rel_tol, abs_tol, depth)
    if isinstance(expected, dict):
        keys_e, keys_a = list(expected.keys()), list(actual.keys())
        if keys_e != keys_a or list(map(type, keys_e)) != list(map(type, keys_a)):
            return False  # 1 == True: the keys' types must match too
        return all(
            same(expected[k], actual[k], rel_tol, abs_tol, depth + 1) for k in expected
        ) and _same_extra_state(expected, actual, rel_tol, abs_tol, depth)
    if isinstance(expected, (set, frozenset)):
        if expected != actual:
            return False
        found = {item: item for item in actual}  # the member of actual equal to each
        if any(type(found[item]) is not type(item) for item in expected):
            return False  # {1} == {True}: the members' types must match too
        return _same_extra_state(expected, actual, rel_tol, abs_tol, depth)
    if isinstance(expected, types.FunctionType) and expected is not actual:
        # A lambda or test-module function travels by value: the same code, defaults and
        # closure values make the same function.
        return (
            expected.__code__ == actual.__code__
            and expected.__qualname__ == actual.__qualname__
            and same(expected.__defaults__, actual.__defaults__, rel_tol, abs_tol, depth + 1)
            and same(_cells(expected), _cells(actual), rel_tol, abs_tol, depth + 1)
        )
    if isinstance(expected, _BY_IDENTITY):
        return expected is actual
    kind = type(expected)
    if kind.__eq__ is not object.__eq__ and kind.__module__ != "builtins":
        try:
            return bool(expected == actual)
        except Exception:
            return False
    state_e, state_a = _state(expected), _state(actual)
    if state_e is not None and state_a is not None:
        return same(state_e, state_a, rel_tol, abs_tol, depth + 1)
    try:
        return pickle.dumps(expected) == pickle.dumps(actual)
    except Exception:
        return False


def _cells(function: Any) -> tuple[Any, ...]:
    values = []
    for cell in function.__closure__ or ():
        try:
            values.append(cell.cell_contents)
        except ValueError:
            values.append(None)
    return tuple(values)


def _same_extra_state(
    expected: Any, actual: Any, rel_tol: float, abs_tol: float, depth: int
) -> bool:
    """A subclass of a builtin container also keeps attributes (a ``list`` subclass's own
    bookkeeping): compare them too."""
    if type(expected) in _CONTAINERS:
        return True
    state_e, state_a = _state(expected), _state(actual)
    if state_e is None and state_a is None:
        return True
    return same(state_e, state_a, rel_tol, abs_tol, depth + 1)


_CONTAINERS = (list, tuple, dict, set, frozenset)


def _state(value: Any) -> dict[str, Any] | None:
    state: dict[str, Any] = {}
    found = False
    if hasattr(value, "__dict__"):
        state.update(vars(value))
        found = True
    for klass in type(value).__mro__:
        for slot in getattr(klass, "__slots__", ()):
            if isinstance(slot, str) and slot not in ("__dict__", "__weakref__"):
                found = True
                state[slot] = getattr(value, slot, _MISSING)
    return state if found else None


class _Missing:
    def __repr__(self) -> str:
        return "<unset>"


_MISSING = _Missing()


def type_name(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def short(value: Any, limit: int = 200) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


_WATCHED: tuple[tuple[Any, str], ...] = (
    *((time, name) for name in ("perf_counter", "perf_counter_ns", "time", "monotonic")),
    *((time, name) for name in ("process_time", "thread_time", "sleep")),
    *((gc, name) for name in ("collect", "disable", "enable", "isenabled")),
    *((pickle, name) for name in ("loads", "dumps")),
    (json, "dumps"),
    (math, "isclose"),
    (sys, "exit"),
)


def stored_globals(function: Any) -> frozenset[str]:
    """Names the function (or code nested in it) assigns with ``global``: the original may
    rebind these (lazy initialisation), so a candidate may too."""
    import dis

    names: set[str] = set()
    pending = [getattr(function, "__code__", None)]
    while pending:
        code = pending.pop()
        if code is None:
            continue
        for instruction in dis.get_instructions(code):
            if instruction.opname in ("STORE_GLOBAL", "DELETE_GLOBAL"):
                names.add(str(instruction.argval))
        pending.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return frozenset(names)


class Guard:
    """Snapshot of what a candidate must not change; ``changes()`` lists what it did change."""

    def __init__(
        self,
        modules: list[types.ModuleType],
        namespaces: list[dict[str, Any]],
        allowed_globals: frozenset[str] = frozenset(),
    ):
        self._allowed = allowed_globals
        self._functions = {(id(owner), name): getattr(owner, name) for owner, name in _WATCHED}
        self._builtins = dict(vars(builtins))
        unique = {id(ns): ns for ns in namespaces}
        self._namespaces = [(ns, dict(ns)) for ns in unique.values()]
        self._classes: list[tuple[type, dict[str, Any]]] = []
        for module in modules:
            for value in list(vars(module).values()):
                if isinstance(value, type) and value.__module__ == module.__name__:
                    self._classes.append((value, dict(vars(value))))

    def changes(self) -> list[str]:
        found: list[str] = []
        for owner, name in _WATCHED:
            if getattr(owner, name, None) is not self._functions[(id(owner), name)]:
                found.append(f"replaced {owner.__name__}.{name}")
        current = vars(builtins)
        for name, value in self._builtins.items():
            if current.get(name, _MISSING) is not value:
                found.append(f"replaced builtins.{name}")
        for namespace, before in self._namespaces:
            for name in set(before) | set(namespace):
                if (name.startswith("__") and name.endswith("__")) or name in self._allowed:
                    continue
                if namespace.get(name, _MISSING) is not before.get(name, _MISSING):
                    found.append(f"rebound module global {name!r}")
        for klass, before in self._classes:
            now = vars(klass)
            for name in set(before) | set(now):
                if name in ("__dict__", "__weakref__", "__doc__"):
                    continue
                if now.get(name, _MISSING) is not before.get(name, _MISSING):
                    found.append(f"changed class {klass.__qualname__}.{name}")
        return found[:5]
