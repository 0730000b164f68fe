"""Open documents kept as a list of lines, so an incremental change costs the lines it touches.

LSP methods: none of its own; pygls applies ``textDocument/didOpen``, ``didChange`` and
``didClose`` to the documents of its workspace, and ``speedsmith.lsp.app`` makes that workspace
create ``LineDocument`` instead of pygls's ``TextDocument``. pygls's document re-splits its
whole text into lines and writes it out again on every incremental change (about 0.5 ms for a
5,000-line file: a typing storm of 1,000 changes a second took a core); this one replaces the
changed lines in its list and joins the text only when someone reads it, once per version.

Positions follow ``speedsmith.positions`` (the one place UTF-16 meets offsets): lines end at
``"\\n"``, a character past a line's end clamps before its ``"\\r\\n"``, a line past the last
one means the end of the text.

``memo`` keeps values computed from one version of the text (a parse, a function's hash): the
change that makes a new version drops them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from lsprotocol import types
from pygls.workspace import TextDocument, Workspace

from speedsmith import cache, positions
from speedsmith.isolate import FunctionInfo

T = TypeVar("T")


def split_lines(text: str) -> list[str]:
    """``text`` as lines that keep their ``"\\n"``; the last item is what follows the last
    ``"\\n"`` (possibly ""), so there is always one more item than ``"\\n"`` in ``text``."""
    pieces = text.split("\n")
    return [piece + "\n" for piece in pieces[:-1]] + [pieces[-1]]


def apply_change(lines: list[str], change: types.Range, text: str) -> None:
    """Replace the text in ``change`` (LSP positions, UTF-16) of ``lines`` with ``text``, in
    place. A range whose end is before its start is empty, at its start."""
    last = len(lines) - 1

    def locate(position: types.Position) -> tuple[int, int]:
        if position.line > last:
            return last, len(lines[last])
        line = max(position.line, 0)
        return line, positions.line_index(lines[line], max(position.character, 0))

    start = locate(change.start)
    end = max(start, locate(change.end))
    (start_line, start_index), (end_line, end_index) = start, end
    middle = split_lines(lines[start_line][:start_index] + text + lines[end_line][end_index:])
    if end_line < last:  # the replaced lines ended with "\n": the next line starts after it
        middle.pop()
    lines[start_line : end_line + 1] = middle


class LineDocument(TextDocument):
    """pygls's ``TextDocument`` over a list of lines (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lines: list[str] | None = None
        """The text as lines (None: not split yet, or not held: a document read from disk)."""
        self._memo: dict[Any, Any] = {}
        if self._source is not None:
            self._lines = split_lines(self._source)

    def _apply_incremental_change(self, change: types.TextDocumentContentChangePartial) -> None:
        if self._lines is None:
            self._lines = split_lines(self.source)
        apply_change(self._lines, change.range, change.text)
        self._source = None
        self._memo.clear()

    def _apply_full_change(self, change: types.TextDocumentContentChangeEvent) -> None:
        self._lines = split_lines(change.text)
        self._source = change.text
        self._memo.clear()

    @property
    def source(self) -> str:
        if self._source is None and self._lines is not None:
            self._source = "".join(self._lines)
        return super().source

    def memo(self, key: Any, compute: Callable[[], T]) -> T:
        """``compute()`` for this version of the text, computed once per version."""
        try:
            return self._memo[key]  # type: ignore[no-any-return]
        except KeyError:
            value = self._memo[key] = compute()
            return value


def memo(document: TextDocument, key: Any, compute: Callable[[], T]) -> T:
    """``compute()`` once per version of ``document`` when it is a ``LineDocument``; else
    (pygls's own document) every time."""
    if isinstance(document, LineDocument):
        return document.memo(key, compute)
    return compute()


TEXTS_REMEMBERED = 4
"""``function_hash`` keeps the hashes of this many texts (the newest; a text is one version)."""
_hashes: OrderedDict[str, dict[FunctionInfo, str]] = OrderedDict()


def function_hash(text: str, fn: FunctionInfo) -> str:
    """``cache.function_hash``, computed once per function of a text: it parses the whole
    module (tens of ms for 5,000 lines), and hover, diagnostics, saves and a finished run all
    ask for the same version's hashes. Event loop only (not thread-safe)."""
    known = _hashes.get(text)
    if known is None:
        known = _hashes[text] = {}
        while len(_hashes) > TEXTS_REMEMBERED:
            _hashes.popitem(last=False)
    else:
        _hashes.move_to_end(text)
    value = known.get(fn)
    if value is None:
        value = known[fn] = cache.function_hash(text, fn)
    return value


class LineWorkspace(Workspace):
    """pygls's workspace, whose documents are ``LineDocument``."""

    def _create_text_document(
        self,
        doc_uri: str,
        source: str | None = None,
        version: int | None = None,
        language_id: str | None = None,
    ) -> TextDocument:
        return LineDocument(
            doc_uri,
            source=source,
            version=version,
            language_id=language_id,
            sync_kind=self._sync_kind,
            position_codec=self._position_codec,
        )
