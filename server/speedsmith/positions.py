"""The one place where LSP positions (line, UTF-16 code units) meet UTF-8 byte offsets."""

from __future__ import annotations


def position_to_byte(text: str, line: int, character: int) -> int:
    """Byte offset in ``text.encode('utf-8')`` of an LSP position (clamped to the line's end)."""
    raise NotImplementedError


def byte_to_position(text: str, byte_offset: int) -> tuple[int, int]:
    """LSP (line, UTF-16 character) of a byte offset."""
    raise NotImplementedError
