"""Verified edits as LSP edits, and proposing them to the editor.

LSP methods: outgoing ``workspace/applyEdit``; builds the ``WorkspaceEdit`` of the quick fixes
(``textDocument/codeAction``, kind ``quickfix``). The engine's edits are UTF-8 byte ranges of
the text a run started from (``speedsmith.report.FunctionEdit``); here they become UTF-16
positions (``speedsmith.positions``, the one place that converts) of that text, pinned to the
document version that text had, so an editor refuses the edit once the document moved on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from speedsmith import positions

if TYPE_CHECKING:
    from speedsmith.lsp.state import State
    from speedsmith.report import FunctionEdit


def text_edit(text: str, edit: FunctionEdit) -> types.TextEdit:
    """``edit`` (bytes of ``text``) as an LSP ``TextEdit`` (UTF-16 positions of ``text``)."""
    return types.TextEdit(
        range=types.Range(
            start=types.Position(*positions.byte_to_position(text, edit.start_byte)),
            end=types.Position(*positions.byte_to_position(text, edit.end_byte)),
        ),
        new_text=edit.new_text,
    )


def workspace_edit(
    state: State, uri: str, version: int | None, edit: types.TextEdit | list[types.TextEdit]
) -> types.WorkspaceEdit:
    """A ``WorkspaceEdit`` of one text edit (or several, of disjoint ranges of the same
    version): versioned ``documentChanges`` when the client supports them, else plain
    ``changes``."""
    edits = edit if isinstance(edit, list) else [edit]
    if state.client_supports("workspace.workspace_edit.document_changes"):
        return types.WorkspaceEdit(
            document_changes=[
                types.TextDocumentEdit(
                    text_document=types.OptionalVersionedTextDocumentIdentifier(
                        uri=uri, version=version
                    ),
                    edits=list(edits),
                )
            ]
        )
    return types.WorkspaceEdit(changes={uri: list(edits)})


async def apply(
    state: State,
    uri: str,
    version: int | None,
    edit: types.TextEdit | list[types.TextEdit],
    *,
    label: str,
) -> types.ApplyWorkspaceEditResult:
    """Send ``workspace/applyEdit`` and return the editor's answer (raises if the request
    fails)."""
    return await state.ls.workspace_apply_edit_async(
        types.ApplyWorkspaceEditParams(edit=workspace_edit(state, uri, version, edit), label=label)
    )
