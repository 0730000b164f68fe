"""The whole loop through the real server and engine, with the replay model backend.

codeAction -> workspace/executeCommand ``speedsmith.optimize`` -> $/progress ->
workspace/applyEdit (or a warning when the document moved on, or nothing when cancelled),
on a copy of ``fixtures/project``. The first replayed candidate is plausible but wrong
(``sum(nums)``); only the second, ``sum([x * x for x in nums])``, may ever be proposed.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from lsp_helpers import (
    HANG,
    Client,
    apply_text_edit,
    code_actions,
    initialize,
    open_document,
    progress_kinds,
    progress_values,
    replace_all,
    single_text_edit,
    wait_for,
)
from lsprotocol import types

WRONG = "def sum_of_squares(nums):\n    return sum(nums)\n"
RIGHT = "def sum_of_squares(nums):\n    return sum([x * x for x in nums])\n"
FUNCTION_RANGE = types.Range(
    start=types.Position(line=3, character=0),
    end=types.Position(line=7, character=len("    return total")),
)


@pytest.fixture
def replay_options(tmp_path: Path) -> dict[str, Any]:
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"candidates": [WRONG, RIGHT]}), encoding="utf-8")
    return {"backend": "replay", "replayFile": str(replay), "budget": 2, "seed": 1}


async def start(client: Client, project: Path, options: dict[str, Any]) -> tuple[str, str, Any]:
    """Initialize, open sumsq.py, and return (uri, text, the code action's command)."""
    await initialize(client, project, options)
    path = project / "sumsq.py"
    text = path.read_text(encoding="utf-8")
    uri = open_document(client, path, text)
    [action] = await code_actions(client, uri, 3, 6)
    assert isinstance(action, types.CodeAction)
    assert action.title == "Optimize sum_of_squares"
    assert action.command is not None
    return uri, text, action.command


def execute(client: Client, command: types.Command) -> asyncio.Future[Any]:
    return asyncio.ensure_future(
        client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command=command.command, arguments=list(command.arguments or [])
            )
        )
    )


async def test_optimize_applies_the_verified_candidate(
    client: Client, project: Path, replay_options: dict[str, Any]
) -> None:
    uri, text, command = await start(client, project, replay_options)

    result = await asyncio.wait_for(execute(client, command), timeout=HANG)

    assert result["verdict"] == "improved", result["reason"]
    [values] = progress_values(client).values()
    kinds = progress_kinds(values)
    assert kinds[0] == "begin"
    assert "report" in kinds
    assert kinds[-1] == "end"
    assert kinds.count("begin") == kinds.count("end") == 1

    [params] = client.applied_edits
    document, text_edit = single_text_edit(params)
    assert (document.uri, document.version) == (uri, 1)
    assert text_edit.range == FUNCTION_RANGE
    assert text_edit.new_text.rstrip("\n") == RIGHT.rstrip("\n")
    assert "return sum(nums)" not in text_edit.new_text
    assert apply_text_edit(text, text_edit) == text.replace(
        text[text.index("def sum_of_squares") :].rstrip("\n"), RIGHT.rstrip("\n")
    )
    assert any(m.type == types.MessageType.Info and "faster" in m.message for m in client.messages)


async def test_document_changed_while_optimizing(
    client: Client, project: Path, replay_options: dict[str, Any]
) -> None:
    uri, text, command = await start(client, project, replay_options)

    running = execute(client, command)
    # The change goes after the run took its version (its progress began): a change read in
    # the same batch of bytes as the request would be applied first, and the run would then
    # rightly start from version 2.
    await wait_for(lambda: progress_values(client))
    replace_all(client, uri, text + "\n# edited meanwhile\n", version=2)
    result = await asyncio.wait_for(running, timeout=HANG)

    assert result["verdict"] == "improved", result["reason"]
    assert client.applied_edits == []
    warnings = [m.message for m in client.messages if m.type == types.MessageType.Warning]
    assert warnings == [
        "speedsmith: sumsq.py changed while optimizing sum_of_squares; no edit applied. "
        "Run Optimize again."
    ]


async def test_cancel_from_progress(
    client: Client, project: Path, replay_options: dict[str, Any]
) -> None:
    _, _, command = await start(client, project, replay_options)

    running = execute(client, command)
    token = await wait_for(
        lambda: next(
            (t for t, v in progress_values(client).items() if "report" in progress_kinds(v)),
            None,
        ),
        timeout=HANG,
    )
    client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    result = await asyncio.wait_for(running, timeout=HANG)

    assert result is None
    assert client.applied_edits == []
    values = client.progress_reports[token]
    assert (values[-1].kind, values[-1].message) == ("end", "Cancelled")
