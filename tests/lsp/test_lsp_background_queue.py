"""The background queue against a scripted engine (fake_server.py): who runs, who is cancelled.

LSP methods: ``textDocument/didSave`` queues, ``textDocument/didChange`` cancels a stale job,
``workspace/executeCommand`` ``speedsmith.optimize`` pre-empts the background job (which is
queued again and runs after it) and ``speedsmith.cancel`` stops it; the server reports its
queue with the ``speedsmith/status`` notification.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lsp_helpers import (
    HANG,
    Client,
    initialize,
    open_document,
    optimize,
    replace_all,
    wait_for,
)
from lsprotocol import types

MODULE = "def slow(xs):\n    return [x for x in xs]\n\n\ndef other():\n    return 1\n"
SAVED = MODULE.replace("[x for x in xs]", "list(x for x in xs)")
IDLE = {"running": None, "queued": 0}
BUSY = {"running": "slow", "queued": 0}


def write_script(root: Path, **script: Any) -> Path:
    path = root / "script.json"
    path.write_text(json.dumps({"steps": [], "verdict": "no-improvement", **script}))
    return path


async def start_background_job(client: Client, root: Path) -> str:
    """Open mod.py, change and save ``slow``; returns the URI once its job called the engine.

    The status says ``running`` as soon as the job is taken off the queue and ``runs: 1`` once
    it calls the engine; an explicit request that pre-empted it in between would leave it with
    no engine run at all (the race behind an old flaky failure), so wait for ``runs``.
    """
    script = write_script(root, wait_for_cancel=True)
    path = root / "mod.py"
    path.write_text(MODULE, encoding="utf-8")
    await initialize(client, root, {"backend": "replay", "replayFile": str(script), "onSave": True})
    uri = open_document(client, path)
    replace_all(client, uri, SAVED, version=2)
    path.write_text(SAVED, encoding="utf-8")
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    await wait_for(lambda: client.statuses and client.statuses[-1] == {**BUSY, "runs": 1})
    return uri


def idle_after(runs: int) -> Callable[[Client], bool]:
    return lambda client: bool(client.statuses) and client.statuses[-1] == {**IDLE, "runs": runs}


async def test_explicit_request_preempts_the_background_job(
    fake_client: Client, tmp_path: Path
) -> None:
    uri = await start_background_job(fake_client, tmp_path)
    write_script(tmp_path)  # from now on the engine answers at once

    result = await asyncio.wait_for(optimize(fake_client, uri, "other"), timeout=HANG)

    assert result["verdict"] == "no-improvement"
    await wait_for(lambda: idle_after(2)(fake_client))  # slow ran again, after "other"
    running = [s["running"] for s in fake_client.statuses]
    assert running.count("slow") >= 2


@pytest.mark.parametrize(
    "stop",
    [
        pytest.param(
            lambda client, uri: replace_all(client, uri, SAVED.replace("xs", "ys"), version=3),
            id="function-edited",
        ),
        pytest.param(
            lambda client, uri: client.workspace_execute_command(
                types.ExecuteCommandParams(command="speedsmith.cancel", arguments=[])
            ),
            id="cancel-command",
        ),
        pytest.param(
            lambda client, uri: client.workspace_did_change_configuration(
                types.DidChangeConfigurationParams(settings=None)
            ),
            id="on-save-turned-off",
        ),
    ],
)
async def test_background_job_is_cancelled(
    fake_client: Client, tmp_path: Path, stop: Callable[[Client, str], Any]
) -> None:
    fake_client.set_configuration({"onSave": True}, section="speedsmith")
    uri = await start_background_job(fake_client, tmp_path)
    fake_client.set_configuration({"onSave": False}, section="speedsmith")

    stop(fake_client, uri)

    await wait_for(lambda: idle_after(1)(fake_client))  # the script waits for the cancel
    assert not fake_client.diagnostics.get(uri)


async def test_editing_another_function_keeps_the_job(fake_client: Client, tmp_path: Path) -> None:
    uri = await start_background_job(fake_client, tmp_path)

    replace_all(fake_client, uri, SAVED.replace("return 1", "return 2"), version=3)
    # The server answers requests in order: this answer comes after didChange was handled.
    status = await fake_client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="speedsmith.status", arguments=[])
    )

    assert status == fake_client.statuses[-1] == {**BUSY, "runs": 1}
    fake_client.workspace_execute_command(
        types.ExecuteCommandParams(command="speedsmith.cancel", arguments=[])
    )
    await wait_for(lambda: idle_after(1)(fake_client))
