"""LSP positions (line, UTF-16 code units) <-> UTF-8 byte offsets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speedsmith.isolate import find_function
from speedsmith.positions import byte_to_position, position_to_byte

# Line 1 holds a 2-byte, a 3-byte and a 4-byte (2 UTF-16 units) character and ends in CRLF.
# Bytes: "a"=0 "\n"=1 | "é"=2-3 "中"=4-6 "😀"=7-10 "x"=11 "\r"=12 "\n"=13 | "last"=14-17, 18 in all.
TEXT = "a\né中😀x\r\nlast"


@pytest.mark.parametrize(
    ("line", "character", "expected"),
    [
        pytest.param(0, 0, 0, id="start"),
        pytest.param(0, 1, 1, id="end-of-ascii-line"),
        pytest.param(0, 5, 1, id="past-line-end-clamps"),
        pytest.param(1, 0, 2, id="line-start"),
        pytest.param(1, 1, 4, id="after-2-byte-char"),
        pytest.param(1, 2, 7, id="after-3-byte-char"),
        pytest.param(1, 3, 7, id="inside-surrogate-pair-rounds-down"),
        pytest.param(1, 4, 11, id="emoji-counts-2-units"),
        pytest.param(1, 5, 12, id="end-of-line-before-cr"),
        pytest.param(1, 6, 12, id="past-end-of-crlf-line-clamps-before-cr"),
        pytest.param(1, 1000, 12, id="far-past-end-of-line"),
        pytest.param(2, 2, 16, id="last-line"),
        pytest.param(2, 99, 18, id="past-end-of-last-line"),
        pytest.param(3, 0, 18, id="line-past-end-is-end-of-text"),
        pytest.param(-1, 3, 0, id="negative-line"),
        pytest.param(1, -4, 2, id="negative-character"),
    ],
)
def test_position_to_byte(line: int, character: int, expected: int) -> None:
    assert position_to_byte(TEXT, line, character) == expected


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        pytest.param(0, (0, 0), id="start"),
        pytest.param(1, (0, 1), id="before-newline"),
        pytest.param(2, (1, 0), id="line-start"),
        pytest.param(4, (1, 1), id="after-2-byte-char"),
        pytest.param(5, (1, 1), id="inside-3-byte-char-rounds-down"),
        pytest.param(7, (1, 2), id="before-emoji"),
        pytest.param(9, (1, 2), id="inside-emoji-rounds-down"),
        pytest.param(11, (1, 4), id="after-emoji"),
        pytest.param(12, (1, 5), id="before-cr"),
        pytest.param(13, (1, 5), id="between-cr-and-lf"),
        pytest.param(14, (2, 0), id="after-crlf"),
        pytest.param(18, (2, 4), id="end"),
        pytest.param(500, (2, 4), id="past-end-clamps"),
        pytest.param(-3, (0, 0), id="negative-clamps"),
    ],
)
def test_byte_to_position(offset: int, expected: tuple[int, int]) -> None:
    assert byte_to_position(TEXT, offset) == expected


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        pytest.param("", 0, 0, id="empty-text"),
        pytest.param("x\n", 1, 2, id="empty-line-after-final-newline"),
        pytest.param("x\n\n", 1, 2, id="empty-middle-line"),
        pytest.param("ab\r\n", 1, 4, id="after-final-crlf"),
    ],
)
def test_position_at_line_start(text: str, line: int, expected: int) -> None:
    assert position_to_byte(text, line, 0) == expected
    assert byte_to_position(text, expected) == (line, 0)


def _char_boundaries(text: str) -> list[int]:
    """Byte offsets of every character boundary except between a CR and its LF."""
    offsets = []
    position = 0
    for index, char in enumerate(text):
        if not (char == "\n" and index and text[index - 1] == "\r"):
            offsets.append(position)
        position += len(char.encode("utf-8"))
    offsets.append(position)
    return offsets


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab \t\r\néß中😀𝕏")), max_size=40))
def test_round_trip_on_character_boundaries(text: str) -> None:
    for offset in _char_boundaries(text):
        line, character = byte_to_position(text, offset)
        assert position_to_byte(text, line, character) == offset


@settings(max_examples=150, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("ab\néß中😀")), max_size=30),
    st.integers(min_value=-2, max_value=12),
    st.integers(min_value=-2, max_value=40),
)
def test_any_position_maps_to_a_character_boundary(text: str, line: int, character: int) -> None:
    offset = position_to_byte(text, line, character)
    data = text.encode("utf-8")
    assert 0 <= offset <= len(data)
    data[:offset].decode("utf-8")  # a boundary: decodes without error


SOURCE = '''"""Émoji 😀 and 中文 before the function: bytes, characters, UTF-16 units differ."""
GREETING = "héllo 😀"


class Café:
    def naïve(self, s: str = "中文") -> str:
        return s + GREETING
'''


def test_function_span_round_trips_through_lsp_positions() -> None:
    fn = find_function(SOURCE, "Café.naïve")
    start = byte_to_position(SOURCE, fn.start_byte)
    end = byte_to_position(SOURCE, fn.end_byte)
    assert start == (5, 4)
    assert end == (6, len("        return s + GREETING"))
    assert position_to_byte(SOURCE, *start) == fn.start_byte
    assert position_to_byte(SOURCE, *end) == fn.end_byte
    # Character offsets would be wrong: the text before the function holds multi-byte chars.
    assert fn.start_byte != SOURCE.index("def naïve")
