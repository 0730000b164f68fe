"""Offer "Optimize <qualname>" for the function at the cursor.

LSP method: ``textDocument/codeAction``. Cheap by design: one parse of the document, no
engine or model work; the action only carries a ``speedsmith.optimize`` command.
"""

from __future__ import annotations

from collections.abc import Sequence

from lsprotocol import types

from speedsmith import isolate, positions
from speedsmith.errors import SourceError
from speedsmith.lsp.server import SpeedsmithServer

KIND = types.CodeActionKind.RefactorRewrite
OPTIMIZE_COMMAND = "speedsmith.optimize"
PYTHON_SUFFIXES = (".py", ".pyi")


def register(server: SpeedsmithServer) -> None:
    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[KIND], resolve_provider=False),
    )
    def code_action(
        ls: SpeedsmithServer, params: types.CodeActionParams
    ) -> list[types.CodeAction | types.Command] | None:
        return code_actions(ls, params)


def code_actions(
    ls: SpeedsmithServer, params: types.CodeActionParams
) -> list[types.CodeAction | types.Command] | None:
    if not _kind_requested(params.context.only):
        return None
    uri = params.text_document.uri
    document = ls.workspace.get_text_document(uri)
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
            _literals_supported(ls)
            and ls.client_supports("text_document.code_action.disabled_support")
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
    if not _literals_supported(ls):
        return [command]
    return [types.CodeAction(title=title, kind=KIND, command=command)]


def _kind_requested(only: Sequence[types.CodeActionKind | str] | None) -> bool:
    """Whether ``context.only`` (hierarchical kinds, e.g. ``refactor``) admits our kind."""
    if not only:
        return True
    ours = KIND.value
    for kind in only:
        wanted = kind.value if isinstance(kind, types.CodeActionKind) else str(kind)
        if ours == wanted or ours.startswith(wanted + "."):
            return True
    return False


def _is_python(language_id: str | None, uri: str) -> bool:
    if language_id:
        return language_id == "python"
    return uri.endswith(PYTHON_SUFFIXES)


def _literals_supported(ls: SpeedsmithServer) -> bool:
    return ls.client_supports("text_document.code_action.code_action_literal_support")
