"""The one place where LSP positions (line, UTF-16 code units) meet UTF-8 byte offsets.

Lines are split on ``"\\n"``; a ``"\\r"`` before it belongs to the line's bytes but is not a
character a position can point past: positions beyond the end of a line clamp to the end of its
text, before any ``"\\r\\n"``. Characters are counted in UTF-16 code units, so a character
outside the Basic Multilingual Plane (an emoji, say) counts 2. Out-of-range positions clamp:
a line past the last one means the end of the text.
"""

from __future__ import annotations


def _utf16_units(text: str) -> int:
    """How many UTF-16 code units ``text`` takes."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def utf16_units(text: str) -> int:
    """How many UTF-16 code units ``text`` takes: an LSP character offset of a line's prefix."""
    return _utf16_units(text)


def _prefix_for_units(text: str, units: int) -> str:
    """The longest prefix of ``text`` that takes at most ``units`` UTF-16 code units.

    A position inside a surrogate pair rounds down to the start of its character.
    """
    if units <= 0:
        return ""
    if text.isascii():
        return text[:units]
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > units:
            return text[:index]
    return text


def line_index(line_text: str, character: int) -> int:
    """Index into ``line_text`` (one line, with or without its ``"\\n"``) of the UTF-16
    ``character``, clamped to the end of the line's text, before any ``"\\r\\n"``."""
    content = line_text[:-1] if line_text.endswith("\n") else line_text
    if line_text.endswith("\n") and content.endswith("\r"):
        content = content[:-1]
    return len(_prefix_for_units(content, character))


def position_to_byte(text: str, line: int, character: int) -> int:
    """Byte offset in ``text.encode('utf-8')`` of an LSP position (clamped to the line's end)."""
    if line < 0:
        return 0
    start = 0
    for _ in range(line):
        newline = text.find("\n", start)
        if newline == -1:
            return len(text.encode("utf-8"))
        start = newline + 1
    end = text.find("\n", start)
    if end == -1:
        end = len(text)
    line_text = text[start:end]
    if end < len(text) and line_text.endswith("\r"):
        line_text = line_text[:-1]
    prefix = _prefix_for_units(line_text, character)
    return len(text[:start].encode("utf-8")) + len(prefix.encode("utf-8"))


def byte_to_position(text: str, byte_offset: int) -> tuple[int, int]:
    """LSP (line, UTF-16 character) of a byte offset.

    Offsets are clamped to the text; one inside a multi-byte character rounds down to the
    character's start, and one between ``"\\r"`` and ``"\\n"`` maps to the end of the line.
    """
    data = text.encode("utf-8")
    offset = min(max(byte_offset, 0), len(data))
    while 0 < offset < len(data) and data[offset] & 0xC0 == 0x80:
        offset -= 1
    line_start = data.rfind(b"\n", 0, offset) + 1
    line = data.count(b"\n", 0, offset)
    prefix = data[line_start:offset].decode("utf-8")
    if prefix.endswith("\r") and data[offset : offset + 1] == b"\n":
        prefix = prefix[:-1]
    return line, _utf16_units(prefix)
