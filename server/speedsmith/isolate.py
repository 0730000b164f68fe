"""Isolation: find a function in Python source with tree-sitter and collect its context.

Knows nothing of LSP. Offsets are UTF-8 byte offsets into the source (``start_byte``).
"""

from __future__ import annotations

from dataclasses import dataclass

from speedsmith.errors import SourceError, TargetNotFound  # noqa: F401  (raised here)


@dataclass(frozen=True)
class FunctionInfo:
    qualname: str
    """Dotted path: ``f``, ``Class.method``, ``outer.inner`` (nested), ``Outer.Inner.m``."""
    name: str
    start_byte: int
    """Start of the whole definition, decorators included (the start of its first line's text)."""
    end_byte: int
    """End of the definition's last character (no trailing newline)."""
    start_line: int
    """0-based line of ``start_byte``."""
    end_line: int
    indent: str
    """Whitespace before ``start_byte`` on its line (the definition's indentation)."""
    source: str
    """The definition's text, decorators included, dedented to column 0."""
    header: str
    """Dedented decorators plus the ``def`` line(s) up to and including the colon."""
    parameters: str
    """The parameter list text with whitespace normalised, e.g. ``(self, x: int = 1)``."""
    decorators: tuple[str, ...]
    is_async: bool
    class_name: str | None
    """Enclosing class's qualified name for methods, else None."""
    is_nested: bool
    """Defined inside another function."""


@dataclass(frozen=True)
class Context:
    """What the model needs to see besides the function itself (all source text)."""

    imports: tuple[str, ...]
    """Module-level import statements (all of them, in file order)."""
    globals_used: tuple[str, ...]
    """Module-level assignments of names the function uses (constants etc.)."""
    helpers: tuple[str, ...]
    """Module-level functions/classes defined in the same file that the function calls."""
    class_header: str | None
    """For a method: the enclosing ``class X(...):`` line plus its docstring if any."""


def parse_functions(source: str) -> tuple[FunctionInfo, ...]:
    """Every function definition in ``source``, outer before inner, in file order.

    Raises SourceError (message with 1-based line and column) if the source has syntax errors.
    """
    raise NotImplementedError


def find_function(source: str, qualname: str) -> FunctionInfo:
    """The function named ``qualname``; raises SourceError or TargetNotFound (listing names)."""
    raise NotImplementedError


def function_at(source: str, start_byte: int, end_byte: int | None = None) -> FunctionInfo | None:
    """The innermost function whose span contains the byte range (None if none).

    Raises SourceError if the source has syntax errors.
    """
    raise NotImplementedError


def collect_context(source: str, fn: FunctionInfo) -> Context:
    raise NotImplementedError


def parse_candidate(text: str) -> FunctionInfo:
    """Parse model output that should hold exactly one function definition at column 0.

    Raises SourceError if it does not parse or holds no function.
    """
    raise NotImplementedError
