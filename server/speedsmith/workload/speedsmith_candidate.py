"""Define a candidate function in its original's context (stdlib only).

Shared by the pytest plugin (substitute mode) and the verification harness. A method is
compiled inside a class of its owner's name, so private names are mangled as in the
original and zero-argument ``super()`` finds the real class.
"""

from __future__ import annotations

import textwrap
from typing import Any


class CandidateError(Exception):
    """The candidate does not load or does not define the function."""


def resolve(module: Any, qualname: str) -> tuple[Any, str, Any]:
    """(owner, attribute name, raw attribute) of ``qualname`` inside ``module``."""
    owner = module
    parts = qualname.split(".")
    for part in parts[:-1]:
        owner = getattr(owner, part)
    name = parts[-1]
    raw = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    return owner, name, raw


def define(module: Any, qualname: str, source: str, *, isolated: bool) -> tuple[Any, str, Any]:
    """Execute ``source`` and return (owner, name, the new raw attribute).

    ``isolated``: run in a copy of the module's globals (the harness, where the original must
    stay intact); otherwise a module-level function is defined in the module itself.
    """
    owner, name, original = resolve(module, qualname)
    namespace = dict(module.__dict__) if isolated or owner is not module else module.__dict__
    saved = namespace.pop(name, None) if owner is module else None
    try:
        if owner is module:
            exec(compile(source, f"<speedsmith candidate {qualname}>", "exec"), namespace)
            if name not in namespace:
                raise CandidateError(f"the candidate does not define {name}")
            value = namespace[name]
        else:
            wrapped = f"class {owner.__name__}:\n" + textwrap.indent(source, "    ")
            exec(compile(wrapped, f"<speedsmith candidate {qualname}>", "exec"), namespace)
            body = vars(namespace[owner.__name__])
            if name not in body:
                raise CandidateError(f"the candidate does not define {name}")
            value = body[name]
            _point_class_cell(value, owner)
            namespace[owner.__name__] = module.__dict__.get(owner.__name__)
    except CandidateError:
        raise
    except Exception as exc:
        raise CandidateError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        if saved is not None and name not in namespace:
            namespace[name] = saved
    if value is original:
        raise CandidateError(f"the candidate does not define {name}")
    return owner, name, value


def _point_class_cell(value: Any, owner: type) -> None:
    """Make zero-argument ``super()`` and ``__class__`` inside the method mean ``owner``."""
    function = getattr(value, "__func__", value)
    code = getattr(function, "__code__", None)
    if code is None or "__class__" not in code.co_freevars:
        return
    cell = function.__closure__[code.co_freevars.index("__class__")]
    cell.cell_contents = owner


def plain(raw: Any) -> Any:
    """The function behind a staticmethod/classmethod (recorded args include ``cls``)."""
    if isinstance(raw, staticmethod | classmethod):
        return raw.__func__
    return raw
