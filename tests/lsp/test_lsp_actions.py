"""textDocument/codeAction: which functions get an "Optimize <qualname>" action, and how."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
from lsp_helpers import CAPABILITIES, Client, code_actions, initialize, open_document, to_json
from lsprotocol import types

# Non-ASCII text before the functions: 😀 is 1 code point, 2 UTF-16 units and 4 UTF-8 bytes,
# so a server that mixed up the units would land lines away from the cursor.
SOURCE = '''\
"""Ünïcödé 😀😀😀😀😀😀😀😀😀😀😀😀."""
GREETING = "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀"


def total(xs):
    return sum(xs)  # 😀😀 after the cursor's line start


class Shape:
    def area(self):
        return 0

    @staticmethod
    def unit():
        def helper():
            return 1
        return helper()


x = 1
'''


@pytest.fixture
def module(tmp_path: Path) -> Path:
    path = tmp_path / "shapes.py"
    path.write_text(SOURCE, encoding="utf-8")
    return path


def line_length_utf16(line: int) -> int:
    return len(SOURCE.splitlines()[line].encode("utf-16-le")) // 2


@pytest.mark.parametrize(
    ("line", "character", "qualname"),
    [
        pytest.param(4, 4, "total", id="def-line"),
        pytest.param(5, 8, "total", id="body"),
        pytest.param(5, line_length_utf16(5), "total", id="end-of-line-after-emoji"),
        pytest.param(9, 9, "Shape.area", id="method"),
        pytest.param(12, 5, "Shape.unit", id="decorator"),
        pytest.param(15, 12, "Shape.unit.helper", id="nested"),
        pytest.param(16, 8, "Shape.unit", id="after-nested"),
    ],
)
async def test_action_for_function(
    client: Client, module: Path, line: int, character: int, qualname: str
) -> None:
    await initialize(client, module.parent)
    uri = open_document(client, module)

    actions = await code_actions(client, uri, line, character)

    title = f"Optimize {qualname}"
    assert to_json(actions) == [
        {
            "title": title,
            "kind": "refactor.rewrite",
            "command": {
                "title": title,
                "command": "speedsmith.optimize",
                "arguments": [{"uri": uri, "qualname": qualname, "version": 1}],
            },
        }
    ]


@pytest.mark.parametrize(
    ("line", "character"),
    [
        pytest.param(0, 10, id="module-docstring"),
        pytest.param(1, 20, id="module-assignment-with-emoji"),
        pytest.param(3, 0, id="blank-line"),
        pytest.param(8, 3, id="class-line"),
        pytest.param(19, 0, id="after-functions"),
    ],
)
async def test_no_action_outside_functions(
    client: Client, module: Path, line: int, character: int
) -> None:
    await initialize(client, module.parent)
    uri = open_document(client, module)

    assert await code_actions(client, uri, line, character) == []


async def test_action_follows_unsaved_edits(client: Client, module: Path) -> None:
    """The document's text in the editor counts, not the file on disk."""
    await initialize(client, module.parent)
    uri = open_document(client, module, text="def fresh():\n    return 2\n", version=7)

    [action] = await code_actions(client, uri, 1, 4)

    assert isinstance(action, types.CodeAction)
    assert action.command is not None
    assert to_json(action.command.arguments) == [{"uri": uri, "qualname": "fresh", "version": 7}]


BROKEN = "def broken(:\n    pass\n"


async def test_syntax_error_gives_disabled_action(client: Client, tmp_path: Path) -> None:
    await initialize(client, tmp_path)
    uri = open_document(client, tmp_path / "broken.py", text=BROKEN)

    [action] = await code_actions(client, uri, 0, 5)

    assert isinstance(action, types.CodeAction)
    assert action.command is None
    assert action.disabled is not None
    assert action.disabled.reason.startswith("speedsmith: ")
    assert "line 1" in action.disabled.reason


async def test_syntax_error_without_disabled_support_gives_nothing(
    client: Client, tmp_path: Path
) -> None:
    text_document = attrs.evolve(
        CAPABILITIES.text_document,
        code_action=attrs.evolve(CAPABILITIES.text_document.code_action, disabled_support=False),
    )
    await initialize(
        client, tmp_path, capabilities=attrs.evolve(CAPABILITIES, text_document=text_document)
    )
    uri = open_document(client, tmp_path / "broken.py", text=BROKEN)

    assert await code_actions(client, uri, 0, 5) == []


async def test_client_without_code_action_literals_gets_a_command(
    client: Client, module: Path
) -> None:
    text_document = types.TextDocumentClientCapabilities(
        code_action=types.CodeActionClientCapabilities()
    )
    await initialize(
        client, module.parent, capabilities=attrs.evolve(CAPABILITIES, text_document=text_document)
    )
    uri = open_document(client, module)

    assert to_json(await code_actions(client, uri, 4, 4)) == [
        {
            "title": "Optimize total",
            "command": "speedsmith.optimize",
            "arguments": [{"uri": uri, "qualname": "total", "version": 1}],
        }
    ]


@pytest.mark.parametrize(
    ("only", "offered"),
    [
        pytest.param([types.CodeActionKind.Refactor], True, id="refactor"),
        pytest.param([types.CodeActionKind.RefactorRewrite], True, id="refactor.rewrite"),
        pytest.param([types.CodeActionKind.QuickFix], False, id="quickfix"),
        pytest.param([types.CodeActionKind.RefactorExtract], False, id="refactor.extract"),
    ],
)
async def test_context_only_filters(
    client: Client, module: Path, only: list[types.CodeActionKind], offered: bool
) -> None:
    await initialize(client, module.parent)
    uri = open_document(client, module)
    position = types.Position(line=4, character=4)

    result = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=position, end=position),
            context=types.CodeActionContext(diagnostics=[], only=only),
        )
    )

    assert bool(result) is offered


async def test_not_python_gives_nothing(client: Client, tmp_path: Path) -> None:
    await initialize(client, tmp_path)
    uri = (tmp_path / "notes.md").as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="markdown", version=1, text="def looks_like(python):\n"
            )
        )
    )

    assert await code_actions(client, uri, 0, 4) == []


async def test_positions_are_utf16_even_when_utf8_is_offered(client: Client, module: Path) -> None:
    """speedsmith converts positions in one place, as UTF-16; it never negotiates UTF-8."""
    result = await initialize(client, module.parent)

    assert result.capabilities.position_encoding == types.PositionEncodingKind.Utf16
    assert to_json(result.capabilities.code_action_provider) == {
        "codeActionKinds": ["refactor.rewrite", "quickfix"],
        "resolveProvider": False,
    }
    assert result.capabilities.execute_command_provider is not None
    assert "speedsmith.optimize" in result.capabilities.execute_command_provider.commands
