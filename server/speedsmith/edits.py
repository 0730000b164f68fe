"""Edits: put a verified function back into its file, and show the change as a diff.

Offsets are UTF-8 byte offsets, as everywhere outside ``speedsmith.positions``.
"""

from __future__ import annotations

import difflib

from speedsmith.isolate import FunctionInfo, RegionInfo, string_continuation_lines
from speedsmith.report import FunctionEdit


def _line_ending(source: str, fn: FunctionInfo) -> str:
    """``"\\r\\n"`` if the function (or, for a one-line function, the file) uses it."""
    data = source.encode("utf-8")
    region = data[fn.start_byte : fn.end_byte]
    if b"\n" not in region:
        region = data
    return "\r\n" if b"\r\n" in region else "\n"


def _reindent(text: str, indent: str, line_ending: str) -> str:
    """Indent every line of dedented ``text`` after the first by ``indent``.

    Blank lines stay empty and lines that continue a multi-line string are left alone (their
    whitespace is the string's value), mirroring how ``speedsmith.isolate`` dedents.
    """
    lines = text.split("\n")
    keep = string_continuation_lines(text)
    out = [lines[0]]
    for index, line in enumerate(lines[1:], start=1):
        if index in keep:
            out.append(line)
        elif not line.strip():
            out.append("")
        else:
            out.append(indent + line)
    return line_ending.join(out)


def function_edit(source: str, fn: FunctionInfo, new_function: str) -> FunctionEdit:
    """The edit that replaces ``fn`` (as found in ``source``) with ``new_function``.

    ``new_function`` is dedented (column 0); it is re-indented to ``fn.indent``: the first
    line gets no indent (the edit starts at ``fn.start_byte``, after the indent).
    Leading blank lines and trailing whitespace are dropped (``fn.end_byte`` is the end of the
    definition's last character), and line endings follow the file's (``\\r\\n`` or ``\\n``).
    """
    size = len(source.encode("utf-8"))
    if not 0 <= fn.start_byte <= fn.end_byte <= size:
        raise ValueError(f"function {fn.qualname!r} lies outside the source ({size} bytes)")
    text = new_function.replace("\r\n", "\n").rstrip()
    lines = text.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    new_text = _reindent("\n".join(lines), fn.indent, _line_ending(source, fn))
    return FunctionEdit(start_byte=fn.start_byte, end_byte=fn.end_byte, new_text=new_text)


def region_edit(
    source: str, fn: FunctionInfo, region: RegionInfo, replacement: str
) -> FunctionEdit:
    """The edit that replaces only ``region``'s lines of ``fn`` (as found in ``source``) with
    ``replacement`` (code at column 0, as ``search.region.replacement_of`` gives it), indented
    to the region's place; every other byte of the file stays. It runs from the start of the
    region's first line to the end of its last line's text (before its line ending), and
    blank lines stay empty and lines continuing a multi-line string are left alone, as in
    ``function_edit``."""
    data = source.encode("utf-8")
    lines = data.split(b"\n")
    start = sum(len(line) + 1 for line in lines[: region.start_line])
    last = lines[region.end_line]
    end = sum(len(line) + 1 for line in lines[: region.end_line]) + len(last.rstrip(b"\r"))
    ending = "\r\n" if last.endswith(b"\r") else "\n"
    indent = fn.indent + region.indent
    keep = string_continuation_lines(replacement)
    new_lines = [
        line if index in keep else (indent + line if line.strip() else "")
        for index, line in enumerate(replacement.split("\n"))
    ]
    return FunctionEdit(start_byte=start, end_byte=end, new_text=ending.join(new_lines))


def apply_edit(source: str, edit: FunctionEdit) -> str:
    """``source`` with ``edit`` applied (its offsets are UTF-8 bytes of ``source``)."""
    data = source.encode("utf-8")
    if not 0 <= edit.start_byte <= edit.end_byte <= len(data):
        raise ValueError(
            f"edit {edit.start_byte}-{edit.end_byte} lies outside the source ({len(data)} bytes)"
        )
    return (data[: edit.start_byte] + edit.new_text.encode("utf-8") + data[edit.end_byte :]).decode(
        "utf-8"
    )


def _lines(text: str) -> list[str]:
    """``text`` split after each ``"\\n"`` only (not the other separators ``splitlines`` uses)."""
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    if not lines[-1]:
        lines.pop()
    return lines


def unified_diff(old: str, new: str, path: str) -> str:
    """A unified diff from ``a/<path>`` to ``b/<path>`` ("" if the texts are equal).

    A last line with no newline is marked ``\\ No newline at end of file``, as git does.
    """
    if old == new:
        return ""
    out: list[str] = []
    for line in difflib.unified_diff(
        _lines(old), _lines(new), fromfile=f"a/{path}", tofile=f"b/{path}"
    ):
        out.append(line)
        if not line.endswith("\n"):
            out.append("\n\\ No newline at end of file\n")
    return "".join(out)
