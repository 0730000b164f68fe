"""Random well-formed LSP traffic: the server stays alive and answers every request.

Hypothesis draws sequences of requests and notifications whose params are lsprotocol types
(hover, code actions, commands, document sync with random text and ranges, configuration,
cancellations, methods the server does not handle), sends them to one server (the scripted
engine, ``fake_server.py``) and checks that each request gets exactly its response (a result or
an error) and that the process is still running.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsprotocol import types
from pygls.protocol import default_converter
from raw_client import RawClient

CONVERTER = default_converter()
UINT = st.integers(min_value=0, max_value=2**31 - 1)
SMALL = st.integers(min_value=0, max_value=40)
PYTHON = st.sampled_from(
    [
        "def f(x):\n    return x + 1\n",
        "class A:\n    def m(self):\n        return [i for i in range(3)]\n",
        "def broken(:\n",
        "",
        "😀 = 1\ndef g():\n    '''é'''\n    return 2\r\n",
        "async def h():\n    await x\n",
    ]
)
TEXT = PYTHON | st.text(max_size=200)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def wire(value: Any) -> Any:
    return json.loads(json.dumps(CONVERTER.unstructure(value)))


def messages(uris: list[str]) -> st.SearchStrategy[tuple[str, str, Any]]:
    """``(kind, method, params)`` with kind ``request`` or ``notify``."""
    uri = st.sampled_from(uris)
    position = st.builds(types.Position, line=SMALL | UINT, character=SMALL | UINT)
    range_ = st.builds(types.Range, start=position, end=position)
    document = st.builds(types.TextDocumentIdentifier, uri=uri)
    versioned = st.builds(
        types.VersionedTextDocumentIdentifier, uri=uri, version=st.integers(0, 10**6)
    )
    kinds = st.sampled_from(list(types.CodeActionKind))
    change = st.one_of(
        st.builds(types.TextDocumentContentChangeWholeDocument, text=TEXT),
        st.builds(types.TextDocumentContentChangePartial, range=range_, text=TEXT),
    )
    command_names = st.sampled_from(
        ["speedsmith.status", "speedsmith.settings", "speedsmith.cancel", "speedsmith.optimize"]
    ) | st.text(max_size=20)

    def request(method: str, params: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.tuples(st.just("request"), st.just(method), params.map(wire))

    def notify(method: str, params: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.tuples(st.just("notify"), st.just(method), params.map(wire))

    return st.one_of(
        request(
            "textDocument/hover",
            st.builds(types.HoverParams, text_document=document, position=position),
        ),
        request(
            "textDocument/codeAction",
            st.builds(
                types.CodeActionParams,
                text_document=document,
                range=range_,
                context=st.builds(
                    types.CodeActionContext,
                    diagnostics=st.just([]),
                    only=st.none() | st.lists(kinds, max_size=3),
                ),
            ),
        ),
        request(
            "workspace/executeCommand",
            st.builds(
                types.ExecuteCommandParams,
                command=command_names,
                arguments=st.none() | st.lists(JSON, max_size=3),
            ),
        ),
        request(
            "textDocument/completion",
            st.builds(types.CompletionParams, text_document=document, position=position),
        ),
        request(
            "textDocument/documentSymbol",
            st.builds(types.DocumentSymbolParams, text_document=document),
        ),
        notify(
            "textDocument/didOpen",
            st.builds(
                types.DidOpenTextDocumentParams,
                text_document=st.builds(
                    types.TextDocumentItem,
                    uri=uri,
                    language_id=st.sampled_from(["python", "plaintext"]),
                    version=st.integers(0, 10**6),
                    text=TEXT,
                ),
            ),
        ),
        notify(
            "textDocument/didChange",
            st.builds(
                types.DidChangeTextDocumentParams,
                text_document=versioned,
                content_changes=st.lists(change, min_size=1, max_size=3),
            ),
        ),
        notify(
            "textDocument/didSave",
            st.builds(types.DidSaveTextDocumentParams, text_document=document),
        ),
        notify(
            "textDocument/didClose",
            st.builds(types.DidCloseTextDocumentParams, text_document=document),
        ),
        notify(
            "workspace/didChangeConfiguration",
            st.builds(types.DidChangeConfigurationParams, settings=JSON),
        ),
        notify("$/cancelRequest", st.builds(types.CancelParams, id=st.integers(0, 50))),
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[RawClient, list[str]]]:
    (tmp_path / "script.json").write_text(json.dumps({"verdict": "no-improvement"}))
    (tmp_path / "mod.py").write_text("def f(x):\n    return x + 1\n", encoding="utf-8")
    client = RawClient(fake=True)
    client.initialize(tmp_path, {"backend": "replay", "replayFile": str(tmp_path / "script.json")})
    uris = [(tmp_path / "mod.py").as_uri(), (tmp_path / "new.py").as_uri(), "untitled:Untitled-1"]
    try:
        yield client, uris
    finally:
        client.close()


def test_random_traffic_is_answered(server: tuple[RawClient, list[str]]) -> None:
    client, uris = server

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=True,
    )
    @given(st.lists(messages(uris), min_size=1, max_size=12))
    def check(batch: list[tuple[str, str, Any]]) -> None:
        ids = []
        for kind, method, params in batch:
            if kind == "request":
                ids.append(client.send_request(method, params))
            else:
                client.notify(method, params)
        for request_id in ids:
            response = client.response(request_id)
            assert ("result" in response) != ("error" in response), response
        assert client.alive()

    check()
    assert client.request("workspace/executeCommand", {"command": "speedsmith.status"})["result"]
