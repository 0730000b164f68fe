"""Define a candidate function in its original's context (stdlib only, Python 3.9+).

Shared by the pytest plugin (substitute mode) and the verification harness. A method is
compiled inside a class of its owner's name, so private names are mangled as in the
original and zero-argument ``super()`` finds the real class. The candidate is compiled with
the module's own ``from __future__`` flags (and only those): with ``annotations`` there,
annotations naming what is imported only under ``if TYPE_CHECKING:`` stay unevaluated, as
in the original.
"""

from __future__ import annotations
import __future__

import contextlib
import functools
import inspect
import textwrap
from typing import Any


class CandidateError(Exception):
    """The candidate does not load or does not define the function."""


def import_name(module: str) -> str:
    """``pkg.__init__`` is imported as ``pkg``."""
    return module[: -len(".__init__")] if module.endswith(".__init__") else module


def resolve(module: Any, qualname: str) -> tuple[Any, str, Any]:
    """(owner, attribute name, raw attribute) of ``qualname`` inside ``module``."""
    owner = module
    parts = qualname.split(".")
    for part in parts[:-1]:
        owner = getattr(owner, part)
    name = parts[-1]
    raw = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    return owner, name, raw


def plain(raw: Any) -> Any:
    """The callable behind a staticmethod/classmethod (recorded args include ``cls``), a
    property (its getter) or a ``functools.cached_property``."""
    if isinstance(raw, (staticmethod, classmethod)):
        return raw.__func__
    if isinstance(raw, property):
        return raw.fget
    if isinstance(raw, functools.cached_property):
        return raw.func
    return raw


def rewrap(raw: Any, function: Any) -> Any:
    """``function`` in the same kind of wrapper as ``raw`` (staticmethod, classmethod,
    property, cached_property, or none)."""
    if isinstance(raw, (staticmethod, classmethod)):
        return type(raw)(function)
    if isinstance(raw, property):
        return raw.getter(function)
    if isinstance(raw, functools.cached_property):
        wrapped = type(raw)(function)
        wrapped.attrname = raw.attrname  # what __set_name__ did for the original
        return wrapped
    return function


def is_async(value: Any) -> bool:
    """An ``async def`` (or async generator) function, decorated or not."""
    function = plain(value)
    with contextlib.suppress(Exception):
        function = inspect.unwrap(function)
    return inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)


_FEATURE_FLAGS = {
    name: getattr(__future__, name).compiler_flag for name in __future__.all_feature_names
}
_ALL_FEATURES = 0
for _flag in _FEATURE_FLAGS.values():
    _ALL_FEATURES |= _flag


def future_flags(module: Any, original: Any = None) -> int:
    """The ``from __future__`` compiler flags the module was compiled with: from the
    original's code object, and the ``_Feature`` objects such an import binds as globals."""
    flags = 0
    function = plain(original)
    with contextlib.suppress(Exception):
        function = inspect.unwrap(function)
    code = getattr(function, "__code__", None)
    if code is not None:
        flags |= code.co_flags & _ALL_FEATURES
    for name, flag in _FEATURE_FLAGS.items():
        if isinstance(getattr(module, name, None), __future__._Feature):
            flags |= flag
    return flags


def _compile(source: str, qualname: str, flags: int) -> Any:
    # dont_inherit: this file's own ``from __future__ import annotations`` must not leak in.
    return compile(source, f"<speedsmith candidate {qualname}>", "exec", flags, True)


def define(module: Any, qualname: str, source: str, *, isolated: bool) -> tuple[Any, str, Any]:
    """Execute ``source`` and return (owner, name, the new raw attribute).

    ``isolated``: run in a copy of the module's globals (the harness, where the original must
    stay intact); otherwise in the module's own globals, so the candidate sees what the tests
    later change there (a method's temporary class binding is undone).
    """
    owner, name, original = resolve(module, qualname)
    flags = future_flags(module, original)
    namespace = dict(module.__dict__) if isolated else module.__dict__
    missing = object()
    try:
        if owner is module:
            saved = namespace.pop(name, missing)
            try:
                exec(_compile(source, qualname, flags), namespace)
            finally:
                if name not in namespace and saved is not missing:
                    namespace[name] = saved
            if name not in namespace or namespace[name] is saved:
                raise CandidateError(f"the candidate does not define {name}")
            value = namespace[name]
        else:
            holder = owner.__name__
            saved = namespace.get(holder, missing)
            wrapped = f"class {holder}:\n" + textwrap.indent(source, "    ")
            try:
                exec(_compile(wrapped, qualname, flags), namespace)
                body = vars(namespace[holder])
            finally:
                if saved is missing:
                    namespace.pop(holder, None)
                else:
                    namespace[holder] = saved
            if name not in body:
                raise CandidateError(f"the candidate does not define {name}")
            value = body[name]
            _point_class_cell(value, owner)
    except CandidateError:
        raise
    except Exception as exc:
        raise CandidateError(f"{type(exc).__name__}: {exc}") from exc
    if value is original:
        raise CandidateError(f"the candidate does not define {name}")
    return owner, name, value


def _point_class_cell(value: Any, owner: type) -> None:
    """Make zero-argument ``super()`` and ``__class__`` inside the method (and inside what a
    decorator wrapped, through ``__wrapped__``) mean ``owner``; give the method its
    original's ``__qualname__`` (it was compiled in a class named like the innermost one)."""
    function = plain(value)
    seen = 0
    while function is not None and seen < 10:
        seen += 1
        function = getattr(function, "__func__", function)
        code = getattr(function, "__code__", None)
        if code is not None and "__class__" in code.co_freevars and function.__closure__:
            cell = function.__closure__[code.co_freevars.index("__class__")]
            cell.cell_contents = owner
        if code is not None and getattr(function, "__qualname__", "") == (
            f"{owner.__name__}.{code.co_name}"
        ):
            with contextlib.suppress(AttributeError, TypeError):
                function.__qualname__ = f"{owner.__qualname__}.{code.co_name}"
        function = getattr(function, "__wrapped__", None)
