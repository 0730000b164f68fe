"""Nothing the server keeps per message outlives the message (in process, no transport).

pygls files every notification handled by a generator or a coroutine under a fresh id that
nothing removes: 10,000 edits kept 18 MB for good (scripts/bench_lsp.py). The server forgets
them once handled; this checks the table stays empty whatever the notification.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from speedsmith.lsp.app import create_server


class NoWriter:
    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


def change(uri: str, version: int) -> dict[str, Any]:
    position = {"line": 0, "character": 0}
    return {
        "textDocument": {"uri": uri, "version": version},
        "contentChanges": [{"range": {"start": position, "end": position}, "text": "#"}],
    }


@pytest.mark.parametrize(
    ("method", "params"),
    [
        pytest.param("textDocument/didChange", change, id="didChange"),
        pytest.param(
            "textDocument/didSave", lambda uri, v: {"textDocument": {"uri": uri}}, id="didSave"
        ),
        pytest.param(
            "workspace/didChangeConfiguration", lambda uri, v: {"settings": {}}, id="configuration"
        ),
        pytest.param("$/cancelRequest", lambda uri, v: {"id": v}, id="cancelRequest"),
    ],
)
async def test_notifications_are_forgotten(tmp_path: Path, method: str, params: Any) -> None:
    server = create_server()
    protocol = server.protocol
    protocol.set_writer(NoWriter())  # type: ignore[arg-type]
    uri = (tmp_path / "mod.py").as_uri()

    def feed(message: dict[str, Any]) -> None:
        data = json.dumps({"jsonrpc": "2.0", **message})
        protocol.handle_message(json.loads(data, object_hook=protocol.structure_message))

    feed(
        {
            "id": 1,
            "method": "initialize",
            "params": {"capabilities": {}, "rootUri": tmp_path.as_uri()},
        }
    )
    feed({"method": "initialized", "params": {}})
    feed(
        {
            "method": "textDocument/didOpen",
            "params": {
                "textDocument": {
                    "uri": uri,
                    "languageId": "python",
                    "version": 1,
                    "text": "x = 1\n",
                }
            },
        }
    )
    for _ in range(100):
        await asyncio.sleep(0)
    before = len(protocol._request_futures)  # the session's own (initialize...)
    for version in range(2, 202):
        feed({"method": method, "params": params(uri, version)})
    for _ in range(100):  # let the coroutines the handlers started finish
        await asyncio.sleep(0)
        if len(protocol._request_futures) <= before:
            break

    assert len(protocol._request_futures) <= before
    server.scheduler.close()
