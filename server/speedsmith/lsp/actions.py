"""Offer "Optimize <qualname>" for the function at the cursor, and verified quick fixes.

LSP method: ``textDocument/codeAction``. Cheap by design: one parse of the document, no
engine or model work; the refactor action only carries a ``speedsmith.optimize`` command.
Quick fixes (kind ``quickfix``) come from ``speedsmith.lsp.hints``: the cached, verified
edit behind a "faster version available" hint, rebuilt from the current text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lsprotocol import types

from speedsmith import isolate, positions
from speedsmith.errors import SourceError
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
        start = params.range.start
        offset = positions.position_to_byte(text, start.line, start.character)
        try:
            function = isolate.function_at(text, offset)
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
        title = f"Optimize {function.qualname}"
        command = types.Command(
            title=title,
            command=OPTIMIZE_COMMAND,
            arguments=[{"uri": uri, "qualname": function.qualname, "version": document.version}],
        )
        if not self._literals_supported():
            return [command]
        return [types.CodeAction(title=title, kind=KIND, command=command)]

    def _literals_supported(self) -> bool:
        return self.state.client_supports("text_document.code_action.code_action_literal_support")


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
