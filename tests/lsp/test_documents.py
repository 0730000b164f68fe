"""``speedsmith.lsp.documents``: incremental changes to a list of lines give the text that the
byte-offset arithmetic of ``speedsmith.positions`` gives (UTF-16 columns, clamping, CRLF)."""

from __future__ import annotations

import pytest
from lsprotocol import types

from speedsmith import positions
from speedsmith.lsp.documents import LineDocument, apply_change, split_lines


def expected(text: str, start: tuple[int, int], end: tuple[int, int], new: str) -> str:
    data = text.encode("utf-8")
    a = positions.position_to_byte(text, *start)
    b = max(a, positions.position_to_byte(text, *end))
    return (data[:a] + new.encode("utf-8") + data[b:]).decode("utf-8")


def change(start: tuple[int, int], end: tuple[int, int], text: str) -> types.Range:
    return types.Range(
        start=types.Position(line=start[0], character=start[1]),
        end=types.Position(line=end[0], character=end[1]),
    )


TEXT = "def f(x):\n    return x  # é\n\n😀 = 'ab'\r\nlast"
CASES = [
    pytest.param((0, 0), (0, 0), "# top\n", id="insert-a-line-at-the-start"),
    pytest.param((1, 4), (1, 10), "yield", id="replace-within-a-line"),
    pytest.param((1, 4), (2, 0), "", id="delete-up-to-the-next-line-start"),
    pytest.param((0, 9), (3, 2), ":\n    pass", id="across-lines-after-a-surrogate-pair"),
    pytest.param((3, 1), (3, 1), "x", id="inside-a-surrogate-pair-rounds-down"),
    pytest.param((3, 99), (3, 99), "  # crlf", id="past-the-end-clamps-before-crlf"),
    pytest.param((3, 99), (4, 0), "", id="join-a-crlf-line"),
    pytest.param((4, 4), (4, 4), "\nmore\n", id="append-at-the-end"),
    pytest.param((9, 0), (9, 0), "\ntail", id="a-line-past-the-last-is-the-end"),
    pytest.param((1, 12), (1, 4), "z", id="end-before-start-is-empty"),
    pytest.param((0, 0), (9, 0), "", id="delete-everything"),
    pytest.param((1, 0), (1, 0), "a\nb\nc\n", id="insert-several-lines"),
]


@pytest.mark.parametrize(("start", "end", "new"), CASES)
def test_a_change_gives_what_the_byte_offsets_give(
    start: tuple[int, int], end: tuple[int, int], new: str
) -> None:
    lines = split_lines(TEXT)
    apply_change(lines, change(start, end, new), new)
    assert "".join(lines) == expected(TEXT, start, end, new)
    assert lines == split_lines("".join(lines)), "lines stay split at every newline"


def test_a_document_applies_changes_one_after_another_and_forgets_its_memo() -> None:
    document = LineDocument("file:///tmp/m.py", source=TEXT, version=1)
    assert document.memo("key", lambda: 1) == 1
    assert document.memo("key", lambda: 2) == 1, "computed once per version"
    text = TEXT
    for start, end, new in [
        ((1, 4), (1, 10), "yield"),
        ((0, 0), (0, 0), "x\n"),
        ((5, 0), (5, 4), ""),
    ]:
        document.apply_change(
            types.TextDocumentContentChangePartial(range=change(start, end, new), text=new)
        )
        text = expected(text, start, end, new)
        assert document.source == text
    assert document.memo("key", lambda: 3) == 3, "a change starts a new memo"
    document.apply_change(types.TextDocumentContentChangeWholeDocument(text="whole\n"))
    assert document.source == "whole\n"
    document.apply_change(
        types.TextDocumentContentChangePartial(range=change((1, 0), (1, 0), "x"), text="x")
    )
    assert document.source == "whole\nx"
