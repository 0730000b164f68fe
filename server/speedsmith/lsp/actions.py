"""Offer "Optimize <qualname>" for the function at the cursor, and verified quick fixes.

LSP method: ``textDocument/codeAction``. Cheap by design: at most one parse of the document
per version (what a position found is kept with the version), no engine or model work; the
refactor action only carries a ``speedsmith.optimize`` command.

A non-empty selection inside one function offers "Optimize selection (lines a-b of `name`)"
first (the selection snapped to whole statements of one block: ``isolate.snap_region``; the
command carries the snapped ``region``), then the whole function's action; a selection that
holds no statement gets a disabled action saying why (where the client shows those). A
selection that touches several functions offers one action per function and "Optimize all
N functions" (the command carries ``qualnames``: one run after another under one progress).
A selection ending at the start of a line (whole lines selected) does not take that line.
Quick fixes (kind ``quickfix``) come from ``speedsmith.lsp.hints``: the cached, verified
edit behind a "faster version available" hint, rebuilt from the current text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from speedsmith import isolate, positions
from speedsmith.errors import SourceError
from speedsmith.lsp import documents
from speedsmith.lsp.commands import OPTIMIZE_COMMAND

if TYPE_CHECKING:
    from speedsmith.lsp.hints import Hints
    from speedsmith.lsp.state import State

KIND = types.CodeActionKind.RefactorRewrite
QUICK_FIX = types.CodeActionKind.QuickFix
PYTHON_SUFFIXES = (".py", ".pyi")
OPTIONS = types.CodeActionOptions(code_action_kinds=[KIND, QUICK_FIX], resolve_provider=False)
"""What the server registers for ``textDocument/codeAction``."""


class Actions:
    """``textDocument/codeAction``: the refactor action and the verified quick fixes."""

    def __init__(self, state: State, hints: Hints) -> None:
        self.state = state
        self.hints = hints

    def code_actions(
        self, params: types.CodeActionParams
    ) -> list[types.CodeAction | types.Command] | None:
        fixes: list[types.CodeAction | types.Command] = []
        if _kind_requested(params.context.only, QUICK_FIX) and self._literals_supported():
            fixes.extend(self.hints.quick_fixes(params.text_document.uri, params.range))
        refactors = self.refactor_actions(params)
        return [*fixes, *(refactors or [])] or refactors

    def refactor_actions(
        self, params: types.CodeActionParams
    ) -> list[types.CodeAction | types.Command] | None:
        if not _kind_requested(params.context.only, KIND):
            return None
        uri = params.text_document.uri
        document = self.state.document(uri) or self.state.ls.workspace.get_text_document(uri)
        if not _is_python(document.language_id, uri):
            return None
        try:
            text = document.source
        except (OSError, UnicodeDecodeError):
            return None
        start, end = params.range.start, params.range.end
        try:
            if (start.line, start.character) != (end.line, end.character):
                return self._selection_actions(text, uri, document.version, params.range)
            function = documents.memo(
                document, ("function_at", start.line, start.character), lambda: _at(text, start)
            ).get()
        except SourceError as err:
            if not (
                self._literals_supported()
                and self.state.client_supports("text_document.code_action.disabled_support")
            ):
                return None
            return [
                types.CodeAction(
                    title="Optimize",
                    kind=KIND,
                    disabled=types.CodeActionDisabled(reason=f"speedsmith: {err}"),
                )
            ]
        if function is None:
            return None
        return [self._action(f"Optimize {function.qualname}", uri, document.version, function)]

    def _action(
        self,
        title: str,
        uri: str,
        version: int | None,
        function: isolate.FunctionInfo | None,
        **extra: Any,
    ) -> types.CodeAction | types.Command:
        """An action (or a bare command for clients without literals) running
        ``speedsmith.optimize`` on ``function`` (or on what ``extra`` names)."""
        arguments: dict[str, Any] = {"uri": uri, "version": version}
        if function is not None:
            arguments["qualname"] = function.qualname
        arguments.update(extra)
        command = types.Command(title=title, command=OPTIMIZE_COMMAND, arguments=[arguments])
        if not self._literals_supported():
            return command
        return types.CodeAction(title=title, kind=KIND, command=command)

    def _disabled(self, title: str, reason: str) -> list[types.CodeAction | types.Command]:
        if not (
            self._literals_supported()
            and self.state.client_supports("text_document.code_action.disabled_support")
        ):
            return []
        return [
            types.CodeAction(
                title=title, kind=KIND, disabled=types.CodeActionDisabled(reason=reason)
            )
        ]

    def _selection_actions(
        self, text: str, uri: str, version: int | None, selected: types.Range
    ) -> list[types.CodeAction | types.Command] | None:
        """The actions for a non-empty selection (see the module docstring)."""
        first, last = sorted((selected.start.line, selected.end.line))
        end = max(selected.start, selected.end, key=lambda p: (p.line, p.character))
        if last > first and end.line == last and end.character == 0:
            last -= 1  # whole lines selected: the selection ends at the next line's start
        lines = text.split("\n")
        first, last = min(first, len(lines) - 1), min(last, len(lines) - 1)
        start_byte = positions.position_to_byte(text, first, 0)
        end_byte = positions.position_to_byte(text, last, len(lines[last]))
        function = isolate.function_at(text, start_byte, end_byte)
        if function is None:
            functions = isolate.functions_in_lines(text, first, last)
            found = [self._action(f"Optimize {fn.qualname}", uri, version, fn) for fn in functions]
            if len(functions) > 1:
                names = [fn.qualname for fn in functions]
                title = f"Optimize all {len(functions)} functions"
                found.append(self._action(title, uri, version, None, qualnames=names))
            return found or None
        whole = self._action(f"Optimize {function.qualname}", uri, version, function)
        try:
            region = isolate.snap_region(text, function, isolate.Region(first, last))
        except isolate.RegionError as err:
            return [*self._disabled("Optimize selection", f"speedsmith: {err}"), whole]
        if region is None:
            return [whole]
        title = f"Optimize selection ({region.lines_text} of `{function.name}`)"
        span = {"startLine": region.start_line, "endLine": region.end_line}
        return [self._action(title, uri, version, function, region=span), whole]

    def _literals_supported(self) -> bool:
        return self.state.client_supports("text_document.code_action.code_action_literal_support")


@dataclass(frozen=True)
class _Found:
    """What ``isolate.function_at`` gave for one position: a function, None, or its error."""

    function: isolate.FunctionInfo | None = None
    error: SourceError | None = None

    def get(self) -> isolate.FunctionInfo | None:
        if self.error is not None:
            raise self.error
        return self.function


def _at(text: str, position: types.Position) -> _Found:
    """The function at ``position`` of ``text`` (kept per document version: a cursor that
    comes back, or a file with a syntax error, costs no parse)."""
    offset = positions.position_to_byte(text, position.line, position.character)
    try:
        return _Found(isolate.function_at(text, offset))
    except SourceError as err:
        return _Found(error=err)


def _kind_requested(
    only: Sequence[types.CodeActionKind | str] | None, kind: types.CodeActionKind
) -> bool:
    """Whether ``context.only`` (hierarchical kinds, e.g. ``refactor``) admits ``kind``."""
    if not only:
        return True
    ours = kind.value
    for item in only:
        wanted = item.value if isinstance(item, types.CodeActionKind) else str(item)
        if ours == wanted or ours.startswith(wanted + "."):
            return True
    return False


def _is_python(language_id: str | None, uri: str) -> bool:
    if language_id:
        return language_id == "python"
    return uri.endswith(PYTHON_SUFFIXES)
