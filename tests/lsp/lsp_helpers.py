"""Helpers for the language server tests: the client, its capabilities, LSP shorthands."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Union

import cattrs
from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import LanguageClient
from pytest_lsp.client import register_lsp_features

HERE = Path(__file__).resolve().parent
SERVER_DIR = HERE.parents[1] / "server"
FIXTURE_PROJECT = HERE / "fixtures" / "project"

SERVER_ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(SERVER_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]),
    # Results the servers cache go to a throwaway directory, never the user's cache.
    "SPEEDSMITH_CACHE_DIR": tempfile.mkdtemp(prefix="speedsmith-test-cache-"),
}
SERVER_COMMAND = [sys.executable, "-m", "speedsmith", "serve"]
FAKE_SERVER_COMMAND = [sys.executable, str(HERE / "fake_server.py")]

CAPABILITIES = types.ClientCapabilities(
    general=types.GeneralClientCapabilities(
        position_encodings=[types.PositionEncodingKind.Utf8, types.PositionEncodingKind.Utf16]
    ),
    window=types.WindowClientCapabilities(work_done_progress=True),
    workspace=types.WorkspaceClientCapabilities(
        apply_edit=True,
        configuration=True,
        workspace_edit=types.WorkspaceEditClientCapabilities(document_changes=True),
    ),
    text_document=types.TextDocumentClientCapabilities(
        code_action=types.CodeActionClientCapabilities(
            code_action_literal_support=types.ClientCodeActionLiteralOptions(
                code_action_kind=types.ClientCodeActionKindOptions(
                    value_set=[types.CodeActionKind.RefactorRewrite]
                )
            ),
            disabled_support=True,
        )
    ),
)
"""What a modern editor declares (UTF-8 offered first, as Neovim does)."""


class Client(LanguageClient):
    """pytest-lsp's client plus a ``workspace/applyEdit`` handler that records the edits."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.applied_edits: list[types.ApplyWorkspaceEditParams] = []
        self.apply_result = types.ApplyWorkspaceEditResult(applied=True)
        self.statuses: list[Any] = []
        """The ``speedsmith/status`` notifications received."""


def converter() -> cattrs.Converter:
    """pygls' converter, but a ``CodeAction`` with a ``command`` stays a ``CodeAction``.

    lsprotocol structures any code action result item that has a ``command`` key as a
    ``Command``; only a string ``command`` makes it one.
    """
    result = default_converter()

    def code_action_or_command(data: Any, _: type) -> types.Command | types.CodeAction:
        is_command = isinstance(data.get("command"), str)
        return result.structure(data, types.Command if is_command else types.CodeAction)

    result.register_structure_hook(
        Union[types.Command, types.CodeAction],  # noqa: UP007 - the key lsprotocol uses
        code_action_or_command,
    )
    return result


def make_client() -> Client:
    client = Client(converter_factory=converter)
    register_lsp_features(client)

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(
        ls: Client, params: types.ApplyWorkspaceEditParams
    ) -> types.ApplyWorkspaceEditResult:
        ls.applied_edits.append(params)
        return ls.apply_result

    @client.feature("speedsmith/status")
    def status(ls: Client, params: Any) -> None:
        # pygls hands over an unknown method's params as a namedtuple.
        ls.statuses.append(params._asdict() if hasattr(params, "_asdict") else dict(params))

    return client


async def initialize(
    client: LanguageClient,
    root: Path,
    options: Any = None,
    capabilities: types.ClientCapabilities = CAPABILITIES,
) -> types.InitializeResult:
    return await client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities,
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
            initialization_options=options,
        )
    )


def open_document(
    client: LanguageClient, path: Path, text: str | None = None, version: int = 1
) -> str:
    """Send ``textDocument/didOpen`` (``text`` defaults to the file's) and return the URI."""
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri,
                language_id="python",
                version=version,
                text=path.read_text(encoding="utf-8") if text is None else text,
            )
        )
    )
    return uri


def replace_all(client: LanguageClient, uri: str, text: str, version: int) -> None:
    """Send ``textDocument/didChange`` replacing the whole text."""
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


async def code_actions(
    client: LanguageClient, uri: str, line: int, character: int
) -> list[types.CodeAction | types.Command]:
    position = types.Position(line=line, character=character)
    result = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=position, end=position),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    return list(result or [])


HANG = float(os.environ.get("SPEEDSMITH_TEST_HANG", "600"))
"""The one timeout of these tests: long enough that only a hang reaches it, however busy the
machine (tests wait on what the server sends, never for a fixed time)."""


async def wait_for(condition: Callable[[], Any], timeout: float = HANG) -> Any:
    """Poll ``condition`` until it returns something truthy (and return that); ``timeout`` only
    catches hangs."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := condition()):
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)
    return value


def progress_values(client: LanguageClient) -> dict[Any, list[Any]]:
    """``$/progress`` values by token, for speedsmith's tokens only."""
    return {
        token: values
        for token, values in client.progress_reports.items()
        if str(token).startswith("speedsmith/")
    }


def message_texts(client: LanguageClient) -> list[str]:
    return [m.message for m in client.messages]


def to_json(value: Any) -> Any:
    """``value`` as the plain JSON the wire carries (lists, dicts, camelCase keys)."""
    return json.loads(json.dumps(converter().unstructure(value)))


async def optimize(client: LanguageClient, uri: str, qualname: str, version: int | None = 1) -> Any:
    """Run ``speedsmith.optimize`` the way the code action's command does."""
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="speedsmith.optimize",
            arguments=[{"uri": uri, "qualname": qualname, "version": version}],
        )
    )


def utf16_offset(text: str, position: types.Position) -> int:
    """Index into ``text`` of an LSP position (UTF-16 columns); the tests' own oracle."""
    lines = text.splitlines(keepends=True)
    start = sum(len(line) for line in lines[: position.line])
    line = lines[position.line] if position.line < len(lines) else ""
    units = 0
    for index, char in enumerate(line):
        if units >= position.character:
            return start + index
        units += len(char.encode("utf-16-le")) // 2
    return start + len(line.rstrip("\r\n"))


def apply_text_edit(text: str, edit: types.TextEdit) -> str:
    start = utf16_offset(text, edit.range.start)
    end = utf16_offset(text, edit.range.end)
    return text[:start] + edit.new_text + text[end:]


def single_text_edit(
    params: types.ApplyWorkspaceEditParams,
) -> tuple[types.OptionalVersionedTextDocumentIdentifier, types.TextEdit]:
    """The one document and one edit of a ``workspace/applyEdit`` (asserts there is one)."""
    changes = params.edit.document_changes
    assert changes is not None and len(changes) == 1
    [change] = changes
    assert isinstance(change, types.TextDocumentEdit)
    [text_edit] = change.edits
    assert isinstance(text_edit, types.TextEdit)
    return change.text_document, text_edit


def progress_kinds(values: list[Any]) -> list[str]:
    return [value.kind for value in values]
