"""Background suggestions on save, end to end through the real server and engine (replay model).

didSave -> background run -> textDocument/publishDiagnostics (a Hint on the ``def`` line) ->
textDocument/codeAction (quickfix) -> the verified edit; the hint and its fix disappear when
the function changes; the on-disk cache makes a second server session show the hint on
didOpen without running anything; textDocument/hover shows the cached result; turning
``onSave`` off clears the hints. The replayed candidates are a wrong one (``sum(nums)``) and
a right one: only the right one may ever be offered.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from lsp_helpers import (
    CAPABILITIES,
    SERVER_COMMAND,
    SERVER_ENV,
    Client,
    apply_text_edit,
    initialize,
    make_client,
    open_document,
    progress_values,
    replace_all,
    wait_for,
)
from lsprotocol import types
from pytest_lsp import ClientServerConfig

WRONG = "def sum_of_squares(nums):\n    return sum(nums)\n"
RIGHT = "def sum_of_squares(nums):\n    return sum([x * x for x in nums])\n"
SLOW_LINE = "        total = total + nums[: i + 1][-1] * nums[i]"
EDITED_LINE = "        total += nums[: i + 1][-1] * nums[i]"
DEF_LINE = 3
HINT = re.compile(r"^verified \d+\.\dx faster version available \(95% CI \d+\.\d-\d+\.\dx\)$")

CAPABILITIES_WITH_QUICKFIX = attrs.evolve(
    CAPABILITIES,
    text_document=attrs.evolve(
        CAPABILITIES.text_document,
        code_action=types.CodeActionClientCapabilities(
            code_action_literal_support=types.ClientCodeActionLiteralOptions(
                code_action_kind=types.ClientCodeActionKindOptions(
                    value_set=[types.CodeActionKind.RefactorRewrite, types.CodeActionKind.QuickFix]
                )
            ),
        ),
        synchronization=types.TextDocumentSyncClientCapabilities(did_save=True),
    ),
)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def options(tmp_path: Path) -> dict[str, Any]:
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"candidates": [WRONG, RIGHT]}), encoding="utf-8")
    return {
        "backend": "replay",
        "replayFile": str(replay),
        "onSave": True,
        "onSaveBudget": 2,
        "seed": 1,
    }


@contextlib.asynccontextmanager
async def session(cache_dir: Path) -> AsyncIterator[Client]:
    """A real server whose result cache is ``cache_dir``."""
    config = ClientServerConfig(
        server_command=SERVER_COMMAND,
        server_env={**SERVER_ENV, "SPEEDSMITH_CACHE_DIR": str(cache_dir)},
        client_factory=make_client,
    )
    client = await config.start()
    assert isinstance(client, Client)
    try:
        yield client
    finally:
        await client.shutdown_session()
        await client.stop()


async def start(client: Client, project: Path, options: dict[str, Any]) -> str:
    await initialize(client, project, options, capabilities=CAPABILITIES_WITH_QUICKFIX)
    return open_document(client, project / "sumsq.py")


def save(client: Client, path: Path, uri: str, text: str, version: int) -> None:
    """Edit the buffer to ``text``, write it to disk and send ``textDocument/didSave``."""
    replace_all(client, uri, text, version)
    path.write_text(text, encoding="utf-8")
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )


async def hint(client: Client, uri: str) -> types.Diagnostic:
    [diagnostic] = await wait_for(lambda: client.diagnostics.get(uri))
    return diagnostic


async def quick_fixes(
    client: Client, uri: str, diagnostic: types.Diagnostic
) -> list[types.CodeAction | types.Command]:
    result = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=diagnostic.range,
            context=types.CodeActionContext(
                diagnostics=[diagnostic], only=[types.CodeActionKind.QuickFix]
            ),
        )
    )
    return list(result or [])


def fix_edit(action: types.CodeAction | types.Command) -> tuple[int | None, types.TextEdit]:
    assert isinstance(action, types.CodeAction)
    assert action.kind == types.CodeActionKind.QuickFix
    assert action.edit is not None and action.edit.document_changes is not None
    [change] = action.edit.document_changes
    assert isinstance(change, types.TextDocumentEdit)
    [text_edit] = change.edits
    assert isinstance(text_edit, types.TextEdit)
    return change.text_document.version, text_edit


async def status(client: Client) -> dict[str, Any]:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="speedsmith.status", arguments=[])
    )


def edited(text: str) -> str:
    assert SLOW_LINE in text
    return text.replace(SLOW_LINE, EDITED_LINE)


async def test_save_hint_quick_fix_edit(
    project: Path, cache_dir: Path, options: dict[str, Any]
) -> None:
    path = project / "sumsq.py"
    async with session(cache_dir) as client:
        uri = await start(client, project, options)
        text = edited(path.read_text(encoding="utf-8"))

        save(client, path, uri, text, version=2)
        diagnostic = await hint(client, uri)

        assert HINT.match(diagnostic.message), diagnostic.message
        assert diagnostic.severity == types.DiagnosticSeverity.Hint
        assert diagnostic.source == "speedsmith"
        assert diagnostic.range.start.line == diagnostic.range.end.line == DEF_LINE
        [action] = await quick_fixes(client, uri, diagnostic)
        assert isinstance(action, types.CodeAction)
        assert list(action.diagnostics or []) == [diagnostic]
        version, text_edit = fix_edit(action)
        assert version == 2
        new_text = apply_text_edit(text, text_edit)
        assert RIGHT.rstrip() in new_text
        assert "return sum(nums)" not in new_text
        assert (await status(client))["runs"] == 1


@pytest.mark.parametrize(
    ("change", "fix_expected"),
    [
        pytest.param(lambda t: t.replace(EDITED_LINE, "        total += nums[i] ** 2"), False,
                     id="function-edited"),
        pytest.param(lambda t: "# moved down a line\n" + t, True, id="code-above-edited"),
        pytest.param(lambda t: "import math\n" + t, False, id="import-added"),
        pytest.param(lambda t: "import math\n" + t.replace(EDITED_LINE, SLOW_LINE), False,
                     id="function-reverted-to-unverified-text"),
    ],
)  # fmt: skip
async def test_document_changed_after_the_result(
    project: Path, cache_dir: Path, options: dict[str, Any], change: Any, fix_expected: bool
) -> None:
    path = project / "sumsq.py"
    async with session(cache_dir) as client:
        uri = await start(client, project, options)
        text = edited(path.read_text(encoding="utf-8"))
        save(client, path, uri, text, version=2)
        diagnostic = await hint(client, uri)

        changed = change(text)
        replace_all(client, uri, changed, version=3)

        if not fix_expected:
            assert await wait_for(lambda: not client.diagnostics.get(uri))
            assert await quick_fixes(client, uri, diagnostic) == []
            return
        moved = await wait_for(
            lambda: [d for d in client.diagnostics.get(uri, []) if d.range.start.line == 4]
        )
        [action] = await quick_fixes(client, uri, moved[0])
        version, text_edit = fix_edit(action)
        assert version == 3
        assert apply_text_edit(changed, text_edit) == changed.replace(
            changed[changed.index("def sum_of_squares") :].rstrip("\n"), RIGHT.rstrip("\n")
        )


async def test_tests_changed_after_the_result(
    project: Path, cache_dir: Path, options: dict[str, Any]
) -> None:
    """A result verified on the old tests is not offered once a test file is saved changed,
    neither in this session nor from the cache in the next one."""
    path = project / "sumsq.py"
    tests = project / "test_sumsq.py"
    async with session(cache_dir) as client:
        uri = await start(client, project, options)
        save(client, path, uri, edited(path.read_text(encoding="utf-8")), version=2)
        await hint(client, uri)

        tests_uri = open_document(client, tests)
        more = (
            tests.read_text(encoding="utf-8")
            + "\n\ndef test_one():\n    assert sum_of_squares([3]) == 9\n"
        )
        save(client, tests, tests_uri, more, version=2)

        assert await wait_for(lambda: not client.diagnostics.get(uri))

        hover = await client.text_document_hover_async(
            types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=DEF_LINE, character=6),
            )
        )
        assert hover is None

    async with session(cache_dir) as client:
        uri = await start(client, project, options)
        hover = await client.text_document_hover_async(
            types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=DEF_LINE, character=6),
            )
        )
        assert hover is None  # the cached result was for the old tests
        assert not client.diagnostics.get(uri)


async def test_cache_survives_a_restart(
    project: Path, cache_dir: Path, options: dict[str, Any]
) -> None:
    path = project / "sumsq.py"
    async with session(cache_dir) as client:
        uri = await start(client, project, options)
        save(client, path, uri, edited(path.read_text(encoding="utf-8")), version=2)
        first = await hint(client, uri)

    async with session(cache_dir) as client:
        uri = await start(client, project, options)
        second = await hint(client, uri)

        assert second == first
        assert await status(client) == {"running": None, "queued": 0, "runs": 0}
        assert progress_values(client) == {}
        [action] = await quick_fixes(client, uri, second)
        _, text_edit = fix_edit(action)
        assert text_edit.new_text.rstrip() == RIGHT.rstrip()


async def test_hover_shows_the_cached_result(
    project: Path, cache_dir: Path, options: dict[str, Any]
) -> None:
    path = project / "sumsq.py"
    async with session(cache_dir) as client:
        uri = await start(client, project, options)
        save(client, path, uri, edited(path.read_text(encoding="utf-8")), version=2)
        await hint(client, uri)

        hover = await client.text_document_hover_async(
            types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=DEF_LINE, character=6),
            )
        )
        elsewhere = await client.text_document_hover_async(
            types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=DEF_LINE + 2, character=6),
            )
        )

    assert hover is not None and isinstance(hover.contents, types.MarkupContent)
    value = hover.contents.value
    assert hover.contents.kind == types.MarkupKind.Markdown
    assert re.search(r"verified \d+\.\dx faster", value), value
    assert "Checked against 4 recorded calls" in value
    assert "model `replay:replay.json`" in value
    assert "budget `2`" in value
    assert "+    return sum([x * x for x in nums])" in value
    assert "-    total = 0" in value
    # the hot lines the run's profile found (the quadratic slice), where they are in the file
    assert "Where it spends its time" in value
    assert "- line 7: `total += nums[: i + 1][-1] * nums[i]`" in value, value
    assert elsewhere is None


async def test_turning_on_save_off_clears_the_hints(
    project: Path, cache_dir: Path, options: dict[str, Any]
) -> None:
    path = project / "sumsq.py"
    async with session(cache_dir) as client:
        uri = await start(client, project, options)
        save(client, path, uri, edited(path.read_text(encoding="utf-8")), version=2)
        diagnostic = await hint(client, uri)

        client.set_configuration({"onSave": False}, section="speedsmith")
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))

        assert await wait_for(lambda: not client.diagnostics.get(uri))
        assert await quick_fixes(client, uri, diagnostic) == []


async def test_off_by_default(project: Path, cache_dir: Path, options: dict[str, Any]) -> None:
    path = project / "sumsq.py"
    del options["onSave"]
    async with session(cache_dir) as client:
        uri = await start(client, project, options)
        save(client, path, uri, edited(path.read_text(encoding="utf-8")), version=2)
        await status(client)  # answered after didSave and what it started were handled

        assert await status(client) == {"running": None, "queued": 0, "runs": 0}
        assert not client.diagnostics.get(uri)
        assert not list(cache_dir.glob("results/*/*.json"))
