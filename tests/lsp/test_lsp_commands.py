"""workspace/executeCommand ``speedsmith.optimize`` against a scripted engine (fake_server.py).

Checks the handler's side of the contract deterministically: progress, the edit and its
version, stale documents, cancellation, and what the user is told for each verdict.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import attrs
import pytest
from lsp_helpers import (
    CAPABILITIES,
    HANG,
    Client,
    apply_text_edit,
    initialize,
    open_document,
    optimize,
    progress_kinds,
    progress_values,
    replace_all,
    single_text_edit,
    wait_for,
)
from lsprotocol import types
from pygls.exceptions import JsonRpcException

# 😀 is 2 UTF-16 units and 4 UTF-8 bytes: it sits before the function and on the line where
# the function ends, so a unit mix-up shows in the edit's range.
MODULE = '''\
"""Ünïcödé 😀😀😀."""


def slow(xs):
    out = []
    for x in xs:
        out.append(x)
    return out  # 😀😀


def other():
    return 1
'''
NEW_TEXT = "def slow(xs):\n    return list(xs)"
OPTIMIZED_MODULE = MODULE.replace(
    "def slow(xs):\n    out = []\n    for x in xs:\n        out.append(x)\n    return out  # 😀😀",
    NEW_TEXT,
)
END_OF_SLOW = types.Position(line=7, character=len("    return out  # ") + 4)


def write_script(root: Path, **script: Any) -> Path:
    path = root / "script.json"
    path.write_text(json.dumps({"steps": ["one", "two"], "verdict": "improved", **script}))
    return path


def options(script: Path) -> dict[str, Any]:
    return {"backend": "replay", "replayFile": str(script)}


@pytest.fixture
def module(tmp_path: Path) -> Path:
    path = tmp_path / "mod.py"
    path.write_text(MODULE, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("opened_version"),
    [
        pytest.param(1, id="opened-v1"),
        pytest.param(5, id="opened-v5"),
        pytest.param(None, id="on-disk"),
    ],
)
async def test_improved_applies_edit(
    fake_client: Client, module: Path, opened_version: int | None
) -> None:
    script = write_script(module.parent, new_text=NEW_TEXT)
    await initialize(fake_client, module.parent, options(script))
    if opened_version is None:
        uri = module.as_uri()
    else:
        uri = open_document(fake_client, module, version=opened_version)

    result = await optimize(fake_client, uri, "slow", opened_version)

    assert result["verdict"] == "improved"
    [params] = fake_client.applied_edits
    assert params.label == "speedsmith: optimize slow"
    document, text_edit = single_text_edit(params)
    assert (document.uri, document.version) == (uri, opened_version)
    assert text_edit.range == types.Range(
        start=types.Position(line=3, character=0), end=END_OF_SLOW
    )
    assert text_edit.new_text == NEW_TEXT
    assert apply_text_edit(MODULE, text_edit) == OPTIMIZED_MODULE

    [values] = progress_values(fake_client).values()
    assert progress_kinds(values) == ["begin", "report", "report", "end"]
    assert values[0].title == "Optimizing slow"
    assert values[0].cancellable is True
    assert [v.message for v in values[1:3]] == ["generation: one", "generation: two"]
    assert values[-1].message.startswith("verified 2.00x faster")
    assert [(m.type, m.message) for m in fake_client.messages] == [
        (types.MessageType.Info, f"speedsmith: slow: {values[-1].message}")
    ]


async def test_engine_output_cannot_corrupt_the_stream(fake_client: Client, module: Path) -> None:
    """stdout and stdin of the server process are not the LSP channel's file descriptors."""
    script = write_script(module.parent, new_text=NEW_TEXT, noise=True)
    await initialize(fake_client, module.parent, options(script))
    uri = open_document(fake_client, module)

    result = await asyncio.wait_for(optimize(fake_client, uri, "slow"), timeout=HANG)

    assert result["verdict"] == "improved"
    assert len(fake_client.applied_edits) == 1


@pytest.mark.parametrize(
    "new_text",
    [
        pytest.param(MODULE + "\n# an edit\n", id="text-changed"),
        pytest.param(MODULE, id="same-text-new-version"),
    ],
)
async def test_stale_document_gets_no_edit(
    fake_client: Client, module: Path, new_text: str
) -> None:
    script = write_script(module.parent, new_text=NEW_TEXT, delay=0.2)
    await initialize(fake_client, module.parent, options(script))
    uri = open_document(fake_client, module)

    running = asyncio.ensure_future(optimize(fake_client, uri, "slow"))
    # The change must come after the run took its version: wait for its progress to begin (a
    # change read in the same batch of bytes as the request is applied before the request's
    # handler runs, and the run then rightly starts from version 2).
    await wait_for(lambda: progress_values(fake_client))
    replace_all(fake_client, uri, new_text, version=2)
    result = await running

    assert result["verdict"] == "improved"
    assert fake_client.applied_edits == []
    assert [(m.type, m.message) for m in fake_client.messages] == [
        (
            types.MessageType.Warning,
            "speedsmith: mod.py changed while optimizing slow; no edit applied. "
            "Run Optimize again.",
        )
    ]
    [values] = progress_values(fake_client).values()
    assert progress_kinds(values)[-1] == "end"


async def test_progress_cancel_stops_the_job(fake_client: Client, module: Path) -> None:
    script = write_script(module.parent, new_text=NEW_TEXT, wait_for_cancel=True)
    await initialize(fake_client, module.parent, options(script))
    uri = open_document(fake_client, module)

    running = asyncio.ensure_future(optimize(fake_client, uri, "slow"))
    token = await wait_for(lambda: first_reported_token(fake_client), timeout=HANG)
    fake_client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    result = await asyncio.wait_for(running, timeout=HANG)

    assert result is None
    assert fake_client.applied_edits == []
    values = fake_client.progress_reports[token]
    assert progress_kinds(values)[0] == "begin"
    assert progress_kinds(values)[-1] == "end"
    assert values[-1].message == "Cancelled"
    assert fake_client.messages == []


async def test_cancel_command_stops_every_job(fake_client: Client, module: Path) -> None:
    script = write_script(module.parent, new_text=NEW_TEXT, wait_for_cancel=True)
    await initialize(fake_client, module.parent, options(script))
    uri = open_document(fake_client, module)

    first = asyncio.ensure_future(optimize(fake_client, uri, "slow"))
    second = asyncio.ensure_future(optimize(fake_client, uri, "other"))
    await wait_for(lambda: first_reported_token(fake_client), timeout=HANG)
    await wait_for(lambda: len(progress_values(fake_client)) == 2, timeout=HANG)
    cancelled = await fake_client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="speedsmith.cancel", arguments=[])
    )

    assert cancelled == 2
    assert await asyncio.wait_for(asyncio.gather(first, second), timeout=HANG) == [None, None]
    assert fake_client.applied_edits == []
    for values in progress_values(fake_client).values():
        assert (values[-1].kind, values[-1].message) == ("end", "Cancelled")
    begins = sorted(values[0].message for values in progress_values(fake_client).values())
    assert begins == ["starting", "waiting for slow"]


@pytest.mark.parametrize(
    ("verdict", "kind", "summary"),
    [
        pytest.param(
            "no-improvement",
            types.MessageType.Info,
            "no verified speedup: 2 candidates, 2 parsed, 1 equivalent, none faster",
            id="no-improvement",
        ),
        pytest.param(
            "refused", types.MessageType.Info, "refused: no test calls slow", id="refused"
        ),
        pytest.param("error", types.MessageType.Error, "error: no test calls slow", id="error"),
    ],
)
async def test_other_verdicts_only_tell(
    fake_client: Client, module: Path, verdict: str, kind: types.MessageType, summary: str
) -> None:
    script = write_script(module.parent, verdict=verdict, reason="no test calls slow")
    await initialize(fake_client, module.parent, options(script))
    uri = open_document(fake_client, module)

    result = await optimize(fake_client, uri, "slow")

    assert result["verdict"] == verdict
    assert fake_client.applied_edits == []
    assert [(m.type, m.message) for m in fake_client.messages] == [
        (kind, f"speedsmith: slow: {summary}")
    ]
    [values] = progress_values(fake_client).values()
    assert (values[-1].kind, values[-1].message) == ("end", summary)


async def test_rejected_edit_is_reported(fake_client: Client, module: Path) -> None:
    fake_client.apply_result = types.ApplyWorkspaceEditResult(
        applied=False, failure_reason="file is read-only"
    )
    script = write_script(module.parent, new_text=NEW_TEXT)
    await initialize(fake_client, module.parent, options(script))
    uri = open_document(fake_client, module)

    await optimize(fake_client, uri, "slow")

    assert len(fake_client.applied_edits) == 1
    assert [(m.type, m.message) for m in fake_client.messages] == [
        (
            types.MessageType.Warning,
            "speedsmith: the editor did not apply the edit to slow: file is read-only",
        )
    ]


async def test_minimal_client(fake_client: Client, module: Path) -> None:
    """No progress support and no documentChanges: plain ``changes`` and no $/progress."""
    capabilities = attrs.evolve(
        CAPABILITIES,
        window=types.WindowClientCapabilities(work_done_progress=False),
        workspace=types.WorkspaceClientCapabilities(apply_edit=True),
    )
    script = write_script(module.parent, new_text=NEW_TEXT)
    await initialize(fake_client, module.parent, options(script), capabilities=capabilities)
    uri = open_document(fake_client, module)

    await optimize(fake_client, uri, "slow")

    assert fake_client.progress_reports == {}
    [params] = fake_client.applied_edits
    assert params.edit.document_changes is None
    assert params.edit.changes is not None
    [text_edit] = params.edit.changes[uri]
    assert apply_text_edit(MODULE, text_edit) == OPTIMIZED_MODULE


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param([], id="none"),
        pytest.param([{"uri": "file:///x.py"}], id="no-qualname"),
        pytest.param([{"uri": 3, "qualname": "f"}], id="uri-not-a-string"),
    ],
)
async def test_bad_arguments_are_invalid_params(
    fake_client: Client, tmp_path: Path, arguments: list[Any]
) -> None:
    await initialize(fake_client, tmp_path)

    with pytest.raises(JsonRpcException, match=r"speedsmith\.optimize expects"):
        await fake_client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="speedsmith.optimize", arguments=arguments)
        )


def first_reported_token(client: Client) -> Any:
    """The first token that got a ``report`` (the engine is running), else None."""
    for token, values in progress_values(client).items():
        if "report" in progress_kinds(values):
            return token
    return None
