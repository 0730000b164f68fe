"""Edits: put a verified function back into its file, and show the change as a diff."""

from __future__ import annotations

from speedsmith.isolate import FunctionInfo
from speedsmith.report import FunctionEdit


def function_edit(source: str, fn: FunctionInfo, new_function: str) -> FunctionEdit:
    """The edit that replaces ``fn`` (as found in ``source``) with ``new_function``.

    ``new_function`` is dedented (column 0); it is re-indented to ``fn.indent``: the first
    line gets no indent (the edit starts at ``fn.start_byte``, after the indent).
    """
    raise NotImplementedError


def apply_edit(source: str, edit: FunctionEdit) -> str:
    raise NotImplementedError


def unified_diff(old: str, new: str, path: str) -> str:
    raise NotImplementedError
