"""pytest plugin (stdlib only, Python 3.9+): record every call of the target, or substitute
a candidate.

Loaded into the project's own pytest run with ``-p speedsmith_capture``; configured by the
``SPEEDSMITH_CAPTURE`` environment variable (JSON):

``{"mode": "record" | "substitute", "module": "pkg.mod", "qualname": "Class.method",
"sys_path": ["/project/src", ...] (or one string), "out": "/tmp/x/workload.pkl",
"max_calls": 200, "max_bytes": 67108864, "candidate": "<source, substitute mode>",
"doctests": false}``

**Every reference.** The target is what the module (or class) binds the qualified name to:
for a decorated definition that is the decorated object, which is what the tests call (the
undecorated function behind ``__wrapped__`` is reached through it, so its calls are part of
the recorded outer calls). Record mode wraps the target, substitute mode replaces it with the
candidate's definition, and both put the stand-in everywhere the tests can reach the target
from: the defining module or class; every module in ``sys.modules`` binding the same object
under any name (re-exports, ``from .core import *``, aliases); class attributes holding it
(directly or as a staticmethod, classmethod, property or cached_property); bound methods
of it stored as globals; functions' default values; the closures of
``functools.wraps``-style wrappers whose ``__wrapped__`` chain reaches it; and the globals
of collected doctests (``pytest --doctest-modules`` copies a module's globals at
collection). Modules are scanned again when the tests have been
collected and whenever new modules appeared before a test starts.

**Record mode** pickles, for each outermost call: the arguments before the call (the
receiver ``self`` included), the return value or the exception, and the arguments after the
call (to see mutation). Each snapshot must survive a round trip (pickle, unpickle, compare
with the original object): list, dict and set subclasses whose own methods cannot rebuild a
bare instance (a ``list`` subclass whose ``extend`` needs its ``__init__`` attributes) are
restored from their raw contents and ``__dict__``/``__slots__`` instead. A call whose
arguments cannot be snapshotted is skipped, with the reason kept in the data
(``skip_reasons``). A returned iterator is recorded lazily: the items the test consumed (how
many), and whether the test ran it to its end (or it raised); the harness replays exactly
that. ``async def`` targets are not recorded (``error``).

**Substitute mode** defines the candidate in the module, puts a counting stand-in for it
everywhere the original was reachable (carrying the original's docstring, so the original's
doctests still run, against the candidate) and writes to ``out`` how many times it was
called (a gate that never ran it proves nothing).
"""

from __future__ import annotations

import builtins
import contextlib
import copyreg
import functools
import importlib
import importlib.util
import inspect
import io
import json
import marshal
import os
import pickle
import signal
import sys
import threading
import time
import types
from collections.abc import Callable
from typing import Any

from speedsmith_candidate import define, import_name, is_async, plain, resolve, rewrap

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
    "modules": -1,
}
_TESTS: dict[str, str] = {}
_REACHED: set[str] = set()
_CURRENT_TEST = {"nodeid": ""}
_DEPTH = threading.local()
_SKIPPED_CALLS: list[dict[str, str]] = []
_SKIP_REASONS: list[str] = []
_MAX_SKIPPED_CALLS = 50
_MAX_SKIP_REASONS = 5
_SWAPS: list[tuple[Any, Any]] = []
"""(original callable, its stand-in): what every reference to the original must become."""
_STAND_INS: set[int] = set()
_OWN_MODULES = ("speedsmith_capture", "speedsmith_candidate")
_MISSING = object()


# --- snapshots ------------------------------------------------------------------------------


class SnapshotError(Exception):
    """A value cannot be pickled and restored as an equal copy."""


_BASES = (list, dict, set)


def _slot_names(kind: type) -> list[str]:
    names: list[str] = []
    for klass in kind.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            if slot in ("__dict__", "__weakref__"):
                continue
            if slot.startswith("__") and not slot.endswith("__"):
                slot = f"_{klass.__name__.lstrip('_')}{slot}"
            names.append(slot)
    return names


def _object_state(obj: Any) -> Any:
    """What ``BUILD`` restores: the class's own ``__getstate__``, else ``__dict__`` (and the
    ``__slots__`` values)."""
    own = getattr(type(obj), "__getstate__", None)
    if own is not None and own is not getattr(object, "__getstate__", None):
        return obj.__getstate__()
    try:
        attributes = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        attributes = None
    slots = {}
    for name in _slot_names(type(obj)):
        with contextlib.suppress(AttributeError):
            slots[name] = object.__getattribute__(obj, name)
    if slots:
        return (dict(attributes) if attributes else None, slots)
    return dict(attributes) if attributes else None


def _raw_reduce(obj: Any) -> Any:
    """For an instance of a ``list``/``dict``/``set`` subclass that pickles the default way:
    rebuild it from the base type's own storage, then its state, never calling the
    subclass's methods (protocol 2's default calls its ``extend``/``__setitem__`` on a bare
    instance, before its attributes exist)."""
    kind = type(obj)
    if kind in _BASES or not issubclass(kind, _BASES):
        return NotImplemented
    instance: Any = obj
    base: type = list if issubclass(kind, list) else dict if issubclass(kind, dict) else set
    if kind.__reduce_ex__ is not base.__reduce_ex__ or kind.__reduce__ is not base.__reduce__:
        return NotImplemented  # the class says how it pickles
    if base is list:
        raw: Any = list(list.__iter__(instance))
    elif base is dict:
        raw = dict(dict.items(instance))
    else:
        raw = set(set.__iter__(instance))
    return (copyreg._reconstructor, (kind, base, raw), _object_state(obj))  # type: ignore[attr-defined]


class _Pickler(pickle.Pickler):
    """Modules by name; the project's module-level singletons (``_MISSING = object()``, a
    sentinel that does not pickle) by reference, so a restored argument is the very object
    the function compares with ``is``; with ``raw``, builtin-container subclasses from their
    raw contents."""

    raw = False

    def reducer_override(self, obj: Any) -> Any:
        ref = _REFS.get(id(obj))
        if ref is not None and ref[0] is obj:
            return (getattr, (ref[1], ref[2]))
        kind = type(obj)
        if obj is types.FunctionType or obj is types.CellType:  # builtins.function: no name
            return (getattr, (types, "CellType" if obj is types.CellType else "FunctionType"))
        if kind is types.ModuleType:
            return (importlib.import_module, (obj.__name__,))
        if kind is types.FunctionType and not _importable_function(obj):
            return _function_reduce(obj)
        if kind is types.CodeType:
            return (marshal.loads, (marshal.dumps(obj),))
        if kind is types.CellType:
            try:
                return (types.CellType, (obj.cell_contents,))
            except ValueError:  # an empty cell
                return (types.CellType, ())
        return _raw_reduce(obj) if self.raw else NotImplemented


def _importable_function(function: Any) -> bool:
    """The replay can import ``function`` by name: a module-level function of a module it
    can import (the standard library, installed packages, the project's import roots).
    Lambdas, local functions and functions of test modules (pytest imports those from
    folders the replay does not have on its path) travel by value instead."""
    qualname = getattr(function, "__qualname__", "")
    if "<lambda>" in qualname or "<locals>" in qualname:
        return False
    module = sys.modules.get(getattr(function, "__module__", None) or "")
    if module is None:
        return False
    file = getattr(module, "__file__", None)
    rootdir = _STATE.get("rootdir") or ""
    if not file or not rootdir:
        return True
    file = os.path.abspath(file)
    if not file.startswith(os.path.abspath(rootdir) + os.sep) or "site-packages" in file:
        return True
    for root in _paths():
        relative = os.path.relpath(file, os.path.abspath(root))
        if relative.startswith(".."):
            continue
        parts = relative[: -len(".py")].split(os.sep) if relative.endswith(".py") else []
        if parts and parts[-1] == "__init__":
            parts = parts[:-1]
        if ".".join(parts) == module.__name__:
            return True
    return False


def _global_names(code: Any) -> set[str]:
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _global_names(constant)
    return names


def _function_reduce(function: Any) -> Any:
    """Rebuild ``function`` from its code (``marshal``: the replay runs the same interpreter),
    the globals it names, its defaults and closure: only standard-library callables appear in
    the pickle, so the replay needs nothing of speedsmith's to load it."""
    namespace = function.__globals__
    globals_used: dict[str, Any] = {"__builtins__": builtins}
    for name in sorted(_global_names(function.__code__)):
        if name in namespace:
            globals_used[name] = namespace[name]
    if "__name__" in namespace:
        globals_used["__name__"] = namespace["__name__"]
    arguments = (
        function.__code__,
        globals_used,
        function.__name__,
        function.__defaults__,
        function.__closure__,
    )
    slots = {"__qualname__": function.__qualname__, "__kwdefaults__": function.__kwdefaults__}
    return (types.FunctionType, arguments, (function.__dict__ or None, slots))


def _dumps(value: Any, raw: bool) -> bytes:
    buffer = io.BytesIO()
    pickler = _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.raw = raw
    pickler.dump(value)
    return buffer.getvalue()


_REFS: dict[int, tuple[Any, Any, str]] = {}
"""id -> (object, its module, its global name): singletons pickled by reference."""
_REFS_STATE = {"modules": -1, "all_modules": -1}
_PLAIN_VALUES = (int, float, complex, str, bytes, bool, type(None), tuple, frozenset)


def _find_singletons() -> None:
    """Module-level objects of the target's package that must keep their identity: bare
    ``object()`` sentinels, and instances that do not pickle (they can only be named)."""
    package = import_name(str(_CONFIG.get("module", ""))).split(".")[0]
    if not package or len(sys.modules) == _REFS_STATE["all_modules"]:
        return
    _REFS_STATE["all_modules"] = len(sys.modules)
    modules = [
        module
        for name, module in list(sys.modules.items())
        if module is not None and (name == package or name.startswith(package + "."))
    ]
    if len(modules) == _REFS_STATE["modules"]:
        return
    _REFS_STATE["modules"] = len(modules)
    for module in modules:
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for name, value in list(namespace.items()):
            if id(value) in _REFS or name.startswith("__") or _named_anyway(value):
                continue
            if type(value) is not object:
                try:
                    pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
                    continue
                except Exception:
                    pass
            _REFS[id(value)] = (value, module, name)


def _named_anyway(value: Any) -> bool:
    """Classes and modules are pickled by name already; values and containers by value, as
    they should be (a copy of a list argument must not be the module's list)."""
    return issubclass(type(value), (type, types.ModuleType, list, dict, set, *_PLAIN_VALUES))


_SAME: list[Any] = []


def _same_function() -> Any:
    """``equivalence.same`` (the replay's own comparison), loaded by path; None if absent."""
    if not _SAME:
        path = os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "..", "verify", "equivalence.py"
        )
        same = None
        try:
            spec = importlib.util.spec_from_file_location("_speedsmith_equivalence", path)
            if spec is not None and spec.loader is not None:
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                same = module.same
        except Exception:
            same = None
        _SAME.append(same)
    return _SAME[0]


def _restores(value: Any, data: bytes, raw: bool) -> bool:
    """The pickled ``data`` restores a copy that pickles the same again (fast), or that the
    replay's own comparison finds equal to ``value`` (sets and dicts may pickle in another
    order)."""
    restored = pickle.loads(data)
    with contextlib.suppress(Exception):
        if _dumps(restored, raw) == data:
            return True
    same = _same_function()
    if same is None:
        return True
    try:
        return bool(same(value, restored, 0.0, 0.0))
    except Exception:
        return False


_PREFER_RAW = [False]
"""The last snapshot needed the raw-contents reduction: the next one tries it first."""


def snapshot(value: Any) -> bytes:
    """Pickled ``value`` that restores an equal copy: the plain pickle, or the raw-contents
    reduction for builtin-container subclasses. SnapshotError says why not."""
    problem: BaseException | None = None
    _find_singletons()
    for raw in (True, False) if _PREFER_RAW[0] else (False, True):
        try:
            data = _dumps(value, raw)
            if _restores(value, data, raw):
                _PREFER_RAW[0] = raw
                return data
            problem = problem or SnapshotError("its restored copy differs from it")
        except RecursionError:
            problem = problem or SnapshotError("too deeply nested")
        except Exception as exc:
            problem = problem or exc
    if isinstance(problem, SnapshotError):
        raise problem
    raise SnapshotError(f"{type(problem).__name__}: {str(problem)[:200]}")


def _parameters(function: Any, args: Any, kwargs: Any) -> list[tuple[str, Any]]:
    """(parameter name, value) of a call, for messages (``self``, ``items``, ``*args[1]``)."""
    try:
        signature = inspect.signature(function)
        bound = signature.bind(*args, **kwargs)
    except Exception:
        named = [(f"argument {index}", value) for index, value in enumerate(args)]
        return named + list(kwargs.items())
    named = []
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            named += [(f"*{name}[{index}]", item) for index, item in enumerate(value)]
        elif kind is inspect.Parameter.VAR_KEYWORD:
            named += [(f"**{name}[{key!r}]", item) for key, item in value.items()]
        else:
            named.append((name, value))
    return named


def _why(function: Any, args: Any, kwargs: Any, problem: SnapshotError, after: bool) -> str:
    """Which argument cannot be snapshotted, and why."""
    when = " after the call" if after else ""
    for name, value in _parameters(function, args, kwargs):
        try:
            snapshot(value)
        except SnapshotError as exc:
            return f"cannot snapshot `{name}`{when} ({type(value).__name__}): {exc}"
    return f"cannot snapshot the arguments{when}: {problem}"


def _skip(reason: str) -> None:
    _STATE["skipped"] += 1
    if len(_SKIPPED_CALLS) < _MAX_SKIPPED_CALLS:
        _SKIPPED_CALLS.append({"test": _CURRENT_TEST["nodeid"], "reason": reason})
    if reason not in _SKIP_REASONS and len(_SKIP_REASONS) < _MAX_SKIP_REASONS:
        _SKIP_REASONS.append(reason)


# --- recording ------------------------------------------------------------------------------


def _nested(function: Any, args: Any, kwargs: Any) -> Any:
    """Call without recording what it calls in turn."""
    depth = getattr(_DEPTH, "value", 0)
    _DEPTH.value = depth + 1
    try:
        return function(*args, **kwargs)
    finally:
        _DEPTH.value = depth


def _record_call(function: Any, args: Any, kwargs: Any) -> Any:
    depth = getattr(_DEPTH, "value", 0)
    full = _STATE["truncated"] or len(_CALLS) >= _CONFIG.get("max_calls", 200)
    if depth > 0 or full:
        if full and depth == 0:
            _STATE["truncated"] = True
        return _nested(function, args, kwargs)
    _REACHED.add(_CURRENT_TEST["nodeid"])
    try:
        before = snapshot((args, kwargs))
    except SnapshotError as problem:
        _skip(_why(function, args, kwargs, problem, after=False))
        return _nested(function, args, kwargs)
    _DEPTH.value = depth + 1
    printed = io.StringIO()
    saved = sys.stdout
    sys.stdout = _Tee(saved, printed)
    started = time.perf_counter()
    try:
        value = function(*args, **kwargs)
    except BaseException as exc:
        seconds = time.perf_counter() - started
        _DEPTH.value = depth
        sys.stdout = saved
        _store(function, before, args, kwargs, seconds, printed.getvalue(), exc=exc)
        raise
    seconds = time.perf_counter() - started
    _DEPTH.value = depth
    sys.stdout = saved
    if _is_iterator(value):
        call = _store(function, before, args, kwargs, seconds, printed.getvalue(), iterator=True)
        return value if call is None else _recording(value, call, function, args, kwargs)
    _store(function, before, args, kwargs, seconds, printed.getvalue(), value=value)
    return value


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
    """An iterator result (compared by the items it yields); files are not."""
    try:
        return (
            hasattr(value, "__next__") and iter(value) is value and not isinstance(value, io.IOBase)
        )
    except Exception:
        return False


_MAX_ITEMS = 10000


def _step(iterator: Any, call: dict[str, Any]) -> Any:
    """``next(iterator)``, adding what it prints to the call's output (the replay runs the
    whole consumption with its output captured)."""
    printed = io.StringIO()
    saved = sys.stdout
    sys.stdout = _Tee(saved, printed)
    try:
        return _nested(next, (iterator,), {})
    finally:
        sys.stdout = saved
        if len(call["printed"]) < 65536:
            call["printed"] += printed.getvalue()


def _recording(iterator: Any, call: dict[str, Any], function: Any, args: Any, kwargs: Any) -> Any:
    """Yield what ``iterator`` yields, keeping a copy of each item, how many the test took,
    whether it ended (or raised), what it printed, and the arguments as they are after each
    step."""
    items = call["items"]
    try:
        while True:
            try:
                item = _step(iterator, call)
            except StopIteration:
                call["exhausted"] = True
                _refresh_after(call, function, args, kwargs)
                return
            except Exception as exc:
                call["iter_exc_type"] = _type_name(type(exc))
                call["iter_exc_message"] = str(exc)[:500]
                _refresh_after(call, function, args, kwargs)
                raise
            if not call.get("dropped") and len(items) >= _MAX_ITEMS:
                _drop(call, f"the test took more than {_MAX_ITEMS} items from the iterator")
            if not call.get("dropped"):
                try:
                    items.append(pickle.loads(snapshot(item)))
                except SnapshotError as exc:
                    _drop(
                        call, f"cannot snapshot an item it yielded ({type(item).__name__}): {exc}"
                    )
                _refresh_after(call, function, args, kwargs)
            yield item
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()


def _refresh_after(call: dict[str, Any], function: Any, args: Any, kwargs: Any) -> None:
    if call.get("dropped"):
        return
    try:
        call["after"] = snapshot((args, kwargs))
    except SnapshotError as problem:
        _drop(call, _why(function, args, kwargs, problem, after=True))


def _drop(call: dict[str, Any], reason: str) -> None:
    """Forget an iterator call recorded earlier (something it yielded cannot be kept)."""
    if call.get("dropped"):
        return
    call["dropped"] = True
    saved = _CURRENT_TEST["nodeid"]
    _CURRENT_TEST["nodeid"] = call["test"]
    _skip(reason)
    _CURRENT_TEST["nodeid"] = saved


def _store(
    function: Any,
    before: bytes,
    args: Any,
    kwargs: Any,
    seconds: float,
    printed: str,
    *,
    value: Any = None,
    exc: BaseException | None = None,
    iterator: bool = False,
) -> dict[str, Any] | None:
    if exc is not None and not isinstance(exc, Exception):
        _skip(f"it raised {type(exc).__name__}, which the replay does not catch")
        return None
    try:
        after = snapshot((args, kwargs))
    except SnapshotError as problem:
        _skip(_why(function, args, kwargs, problem, after=True))
        return None
    result = None
    if exc is None and not iterator:
        try:
            result = snapshot(value)
        except SnapshotError as problem:
            _skip(f"cannot snapshot the return value ({type(value).__name__}): {problem}")
            return None
    size = len(before) + len(after) + len(result or b"")
    if _STATE["bytes"] + size > _CONFIG.get("max_bytes", 64 << 20):
        _STATE["truncated"] = True
        return None
    _STATE["bytes"] += size
    call: dict[str, Any] = {
        "args": before,
        "after": after,
        "result": result,
        "exc_type": None if exc is None else _type_name(type(exc)),
        "exc_message": None if exc is None else str(exc)[:500],
        "seconds": seconds,
        "test": _CURRENT_TEST["nodeid"],
        "printed": printed,
        "iterator": iterator,
        "items": [] if iterator else None,
        "exhausted": False,
        "iter_exc_type": None,
        "iter_exc_message": None,
    }
    _CALLS.append(call)
    return call


def _count_call(function: Any, args: Any, kwargs: Any) -> Any:
    _STATE["candidate_calls"] += 1
    return function(*args, **kwargs)


def _type_name(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


# --- stand-ins and every reference ------------------------------------------------------------


class _Proxy:
    """Stand-in for a callable that is not a plain function (an ``lru_cache`` wrapper, a
    callable object): attributes (``cache_clear``...) are the target's; it binds as a method
    where the target does."""

    def __init__(self, target: Any, call: Callable[[Any, Any, Any], Any]):
        object.__setattr__(self, "_speedsmith_target", target)
        object.__setattr__(self, "_speedsmith_call", call)
        for name in ("__module__", "__name__", "__qualname__", "__doc__"):
            with contextlib.suppress(AttributeError):
                object.__setattr__(self, name, getattr(target, name))
        object.__setattr__(self, "__wrapped__", target)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._speedsmith_call(self._speedsmith_target, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_speedsmith_target"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._speedsmith_target, name, value)

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None or not hasattr(type(self._speedsmith_target), "__get__"):
            return self
        return types.MethodType(self, instance)

    def __repr__(self) -> str:
        return repr(self._speedsmith_target)


def _stand_in(target: Any, call: Callable[[Any, Any, Any], Any], doc: Any = _MISSING) -> Any:
    """A callable doing ``call(target, args, kwargs)`` that looks like ``target``."""
    if type(target) is types.FunctionType:

        @functools.wraps(target)
        def stand_in(*args: Any, **kwargs: Any) -> Any:
            return call(target, args, kwargs)

        result: Any = stand_in
        if doc is not _MISSING:
            result.__doc__ = doc
    else:
        result = _Proxy(target, call)
        if doc is not _MISSING:
            object.__setattr__(result, "__doc__", doc)
    _STAND_INS.add(id(result))
    return result


def _replacement(value: Any) -> Any:
    """What ``value`` must become (``_MISSING``: nothing to change): the stand-in for an
    original, the same wrapper (staticmethod, classmethod, property, cached_property, bound
    method) around the stand-in for a wrapper of one."""
    kind = type(value)
    for original, new in _SWAPS:
        if value is original:
            return new
        if kind is types.MethodType:
            if value.__func__ is original:
                return types.MethodType(new, value.__self__)
        elif issubclass(kind, _DESCRIPTORS) and plain(value) is original:
            return rewrap(value, new)
    return _MISSING


_DESCRIPTORS = (staticmethod, classmethod, property, functools.cached_property)


def _patch_function(function: Any) -> None:
    """Originals held by a function: default values, and the closure of a
    ``functools.wraps``-style wrapper."""
    if id(function) in _STAND_INS:
        return
    defaults = function.__defaults__
    if defaults:
        new = [_replacement(value) for value in defaults]
        if any(value is not _MISSING for value in new):
            function.__defaults__ = tuple(
                defaults[index] if value is _MISSING else value for index, value in enumerate(new)
            )
    keywords = function.__kwdefaults__
    if keywords:
        for key, old in list(keywords.items()):
            value = _replacement(old)
            if value is not _MISSING:
                keywords[key] = value
    _patch_closures(function)


def _patch_closures(value: Any) -> None:
    """In a ``functools.wraps``-style wrapper (``__wrapped__`` chain), swap the originals
    its closure holds."""
    current, hops = value, 0
    while type(current) is types.FunctionType and hops < 8:
        hops += 1
        if id(current) in _STAND_INS:
            return
        wrapped = current.__dict__.get("__wrapped__", _MISSING)
        if wrapped is _MISSING:
            return
        for cell in current.__closure__ or ():
            try:
                contents = cell.cell_contents
            except ValueError:
                continue
            new = _replacement(contents)
            if new is not _MISSING:
                cell.cell_contents = new
        current = wrapped


def _patch_namespace(namespace: dict[str, Any], classes: list[type] | None) -> None:
    for key, value in list(namespace.items()):
        new = _replacement(value)
        if new is not _MISSING:
            namespace[key] = new
            continue
        if type(value) is types.FunctionType:
            _patch_function(value)
        elif classes is not None and issubclass(type(value), type):
            classes.append(value)


def _patch_class(klass: type) -> list[type]:
    nested: list[type] = []
    try:
        items = list(vars(klass).items())
    except Exception:
        return nested
    for key, value in items:
        new = _replacement(value)
        if new is not _MISSING:
            with contextlib.suppress(AttributeError, TypeError):
                setattr(klass, key, new)
        elif type(value) is types.FunctionType:
            _patch_function(value)
        elif issubclass(type(value), type):
            nested.append(value)
    return nested


_SCANNED: dict[str, int] = {}
"""Module name -> id of the module object scanned under it."""


def _scan(only_new: bool = False) -> None:
    """Put the stand-ins wherever the originals are reachable: every module's globals, every
    class those globals hold (and the classes nested in them). ``only_new``: modules not
    scanned yet (before each test: cheap)."""
    if not _SWAPS:
        return
    _STATE["modules"] = len(sys.modules)
    classes: list[type] = []
    for name, module in list(sys.modules.items()):
        if module is None or name in _OWN_MODULES or name.startswith("_speedsmith"):
            continue
        if only_new and _SCANNED.get(name) == id(module):
            continue
        _SCANNED[name] = id(module)
        try:
            namespace = object.__getattribute__(module, "__dict__")
        except Exception:
            continue
        if isinstance(namespace, dict):
            _patch_namespace(namespace, classes)
    seen: set[int] = set()
    while classes:
        klass = classes.pop()
        if id(klass) in seen:
            continue
        seen.add(id(klass))
        classes.extend(_patch_class(klass))


def _rescan_if_new_modules() -> None:
    if _SWAPS and len(sys.modules) != _STATE["modules"]:
        _scan(only_new=True)


# --- installation ---------------------------------------------------------------------------


def _paths() -> list[str]:
    paths = _CONFIG.get("sys_path") or []
    return [paths] if isinstance(paths, str) else [str(p) for p in paths]


def _install(*, early: bool = False) -> None:
    """Wrap (record) or replace (substitute) the target. ``early``: before conftest.py files
    load; if the module cannot be imported yet, try again at ``pytest_configure``."""
    if _STATE["installed"] or not _CONFIG:
        return
    for root in reversed(_paths()):
        if root not in sys.path:
            sys.path.insert(0, root)
    module_name = import_name(_CONFIG["module"])
    if early:
        try:
            importlib.import_module(module_name)
        except Exception:
            return
    _STATE["installed"] = True
    if _CONFIG["mode"] == "substitute":
        _substitute(module_name)
        return
    try:
        module = importlib.import_module(module_name)
        owner, name, raw = resolve(module, _CONFIG["qualname"])
    except Exception as exc:
        _STATE["error"] = f"cannot import {module_name}: {type(exc).__name__}: {exc}"
        return
    _STATE["error"] = _elsewhere(module)
    if _STATE["error"]:
        return
    if is_async(raw):
        _STATE["error"] = (
            f"{_CONFIG['qualname']} is an `async def` function: its calls cannot be recorded"
        )
        return
    original = plain(raw)
    if not callable(original):
        _STATE["error"] = f"{_CONFIG['qualname']} is not callable ({type(raw).__name__})"
        return
    wrapper = _stand_in(original, _record_call)
    _SWAPS.append((original, wrapper))
    setattr(owner, name, rewrap(raw, wrapper))
    _scan()


def _elsewhere(module: Any) -> str:
    """Why the imported module is not the file speedsmith edits ("" when it is): another
    copy first on the path (an installed, non-editable version of the package)."""
    wanted = _CONFIG.get("module_file")
    found = getattr(module, "__file__", None)
    if not wanted or not found:
        return ""
    if os.path.normcase(os.path.realpath(found)) == os.path.normcase(os.path.realpath(wanted)):
        return ""
    return f"the tests import {module.__name__} from {found}, not from {wanted}"


def _substitute(module_name: str) -> None:
    # Any failure must fail the run: tests passing against the original prove nothing.
    module = importlib.import_module(module_name)
    _STATE["error"] = _elsewhere(module)
    if _STATE["error"]:
        return  # nothing substituted: no candidate call, the gate fails
    qualname = _CONFIG["qualname"]
    owner, name, raw = resolve(module, qualname)
    original = plain(raw)
    _owner, _name, value = define(module, qualname, _CONFIG["candidate"], isolated=False)
    if is_async(raw) or is_async(value):
        _STATE["error"] = f"{qualname} is an `async def` function: it cannot be substituted"
        setattr(owner, name, raw)
        return
    doc = getattr(original, "__doc__", None)
    counted = _stand_in(plain(value), _count_call, doc if doc else _MISSING)
    _SWAPS.append((original, counted))
    setattr(owner, name, rewrap(value, counted))
    _scan()


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
    if _CONFIG and _CONFIG.get("mode") == "record":
        # At the time limit the run is interrupted (SIGINT) and saves what it recorded; a
        # process started with SIGINT ignored (a background job of a non-interactive shell)
        # passes that on to pytest, which would then be killed with nothing saved.
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
                signal.signal(signal.SIGINT, signal.default_int_handler)
    _install()
    _rescan_if_new_modules()


def pytest_collection_modifyitems(session: Any, config: Any, items: Any) -> None:
    """Test modules are imported now; doctests hold copies of their module's globals."""
    if not _SWAPS:
        return
    _scan()
    for item in items:
        globs = getattr(getattr(item, "dtest", None), "globs", None)
        if isinstance(globs, dict):
            _patch_namespace(globs, None)


def pytest_collection_finish(session: Any) -> None:
    _scan()
    _PROGRESS["total"] = len(getattr(session, "items", ()) or ())
    _write_progress()


_PROGRESS = {"done": 0, "total": 0}


def _write_progress() -> None:
    """``done total`` (tests) for the parent's progress bar; best effort."""
    path = _CONFIG.get("progress")
    if not path:
        return
    with contextlib.suppress(OSError):
        with open(path + ".part", "w", encoding="ascii") as handle:
            handle.write(f"{_PROGRESS['done']} {_PROGRESS['total']}\n")
        os.replace(path + ".part", path)


def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
    _PROGRESS["done"] += 1
    _write_progress()


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    _CURRENT_TEST["nodeid"] = nodeid
    _rescan_if_new_modules()


def pytest_runtest_setup(item: Any) -> None:
    _CURRENT_TEST["nodeid"] = item.nodeid


def pytest_runtest_logreport(report: Any) -> None:
    if report.when == "call" or report.outcome != "passed":
        previous = _TESTS.get(report.nodeid)
        if previous in (None, "passed"):
            _TESTS[report.nodeid] = report.outcome


def _finished_calls() -> list[dict[str, Any]]:
    calls = []
    for call in _CALLS:
        if call.pop("dropped", False):
            continue
        items = call.pop("items")
        if call["iterator"]:
            try:
                call["result"] = snapshot(items)
            except SnapshotError as exc:
                _CURRENT_TEST["nodeid"] = call["test"]
                _skip(f"cannot snapshot the items it yielded: {exc}")
                continue
        calls.append(call)
    return calls


def pytest_unconfigure(config: Any) -> None:
    if _CONFIG and _CONFIG.get("mode") == "substitute" and _CONFIG.get("out"):
        with open(_CONFIG["out"], "w", encoding="utf-8") as handle:
            json.dump({"calls": _STATE["candidate_calls"], "error": _STATE["error"]}, handle)
        return
    if not _CONFIG or _CONFIG.get("mode") != "record":
        return
    calls = _finished_calls()
    data = {
        "calls": calls,
        "skipped": _STATE["skipped"],
        "skip_reasons": list(_SKIP_REASONS),
        "skipped_calls": list(_SKIPPED_CALLS),
        "truncated": _STATE["truncated"],
        "error": _STATE["error"],
        "tests": _TESTS,
        "reached": sorted(_REACHED),
        "rootdir": _STATE["rootdir"],
    }
    with open(_CONFIG["out"], "wb") as handle:
        pickle.dump(data, handle, protocol=pickle.HIGHEST_PROTOCOL)
