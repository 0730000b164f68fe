"""The server survives an editor's worst day and keeps answering.

Over raw stdio (``raw_client.py``), against the server with the scripted engine
(``fake_server.py``): malformed JSON, wrong ``Content-Length``, bodies that are not requests,
unknown methods, invalid params, a flood of ``$/cancelRequest``, ``didClose`` / typing / a
change on disk during a job, and the client process killed (the server exits, and the job's
child with it). Every wait is on a message from the server, with a timeout that only catches
hangs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lsp_helpers import FAKE_SERVER_COMMAND, HANG, SERVER_ENV
from raw_client import RawClient, encode, frame

MODULE = "def slow(xs):\n    return [x for x in xs]\n"
FAST = "def slow(xs):\n    return list(xs)"
RESYNC = b"\r\n"
"""Ends the bodies of the probes sent after garbage: once a wrong Content-Length has the server
reading at the wrong place, this line ending lets it find the next header again."""


@pytest.fixture
def raw(tmp_path: Path) -> Iterator[RawClient]:
    client = RawClient(fake=True)
    try:
        yield client
    finally:
        client.close()


def setup(raw: RawClient, root: Path, **script: Any) -> str:
    """Initialize on ``root`` with a script for the fake engine; open mod.py; its URI."""
    (root / "script.json").write_text(
        json.dumps({"steps": [], "verdict": "improved", "new_text": FAST, **script}),
        encoding="utf-8",
    )
    path = root / "mod.py"
    path.write_text(MODULE, encoding="utf-8")
    raw.initialize(root, {"backend": "replay", "replayFile": str(root / "script.json")})
    return raw.open(path)


def status_probe(raw: RawClient) -> int:
    """Send ``speedsmith.status`` with a body that ends in a line break; its id."""
    request_id = next(raw.ids)
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "workspace/executeCommand",
            "params": {"command": "speedsmith.status", "arguments": []},
        }
    ).encode()
    raw.send_bytes(frame(body + RESYNC))
    return request_id


def still_answers(raw: RawClient) -> None:
    """The server is alive and answers a request sent now (after a few it may have eaten)."""
    ids = [status_probe(raw) for _ in range(3)]
    response = raw.response(ids[-1])
    assert response.get("result") == {"running": None, "queued": 0, "runs": 0}
    assert raw.alive()


def optimize_params(uri: str, qualname: str = "slow") -> dict[str, Any]:
    return {
        "command": "speedsmith.optimize",
        "arguments": [{"uri": uri, "qualname": qualname, "version": 1}],
    }


VALID = json.dumps({"jsonrpc": "2.0", "id": 999, "method": "shutdown"}).encode()


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(frame(b'{"jsonrpc": "2.0", "id": 5, "method": '), id="malformed-json"),
        pytest.param(frame(b"\xff\xfe{}"), id="not-utf8"),
        pytest.param(frame(b"[1, 2, 3]"), id="array-body"),
        pytest.param(frame(b"42"), id="number-body"),
        pytest.param(frame(b"null"), id="null-body"),
        pytest.param(frame(b'{"jsonrpc": "2.0"}'), id="neither-request-nor-response"),
        pytest.param(frame(b'{"jsonrpc": "2.0", "id": 12345, "result": 1}'), id="stray-response"),
        pytest.param(frame(VALID, length=10), id="content-length-too-short"),
        pytest.param(frame(VALID, length=len(VALID) + 40), id="content-length-too-long"),
        pytest.param(b"Content-Length: -3\r\n\r\n{}", id="content-length-negative"),
        pytest.param(b"Content-Length: lots\r\n\r\n{}", id="content-length-not-a-number"),
        pytest.param(b"X-Junk: 1\r\n\r\n{}\r\n", id="no-content-length"),
        pytest.param(b"\r\n\r\n\r\n", id="blank-lines"),
        pytest.param(os.urandom(512).replace(b"\n", b" ") + b"\r\n", id="random-bytes"),
    ],
)
def test_garbage_on_the_wire(raw: RawClient, tmp_path: Path, garbage: bytes) -> None:
    setup(raw, tmp_path)

    raw.send_bytes(garbage)

    still_answers(raw)


@pytest.mark.parametrize(
    ("method", "params", "code"),
    [
        pytest.param("speedsmith/nonsense", {}, -32601, id="unknown-request"),
        pytest.param("textDocument/completion", None, -32601, id="unregistered-method"),
        pytest.param("textDocument/codeAction", {}, None, id="codeaction-empty-params"),
        pytest.param(
            "textDocument/hover",
            {"textDocument": {"uri": 3}, "position": {"line": "x"}},
            None,
            id="hover-wrong-types",
        ),
        pytest.param(
            "workspace/executeCommand",
            {"command": "speedsmith.optimize", "arguments": []},
            -32602,
            id="optimize-without-arguments",
        ),
        pytest.param(
            "workspace/executeCommand",
            {"command": "speedsmith.optimize", "arguments": [{"uri": 1, "qualname": None}]},
            -32602,
            id="optimize-wrong-argument-types",
        ),
        pytest.param(
            "workspace/executeCommand",
            {"command": "rm -rf /", "arguments": []},
            None,
            id="unknown-command",
        ),
    ],
)
def test_bad_requests_get_an_error(
    raw: RawClient, tmp_path: Path, method: str, params: Any, code: int | None
) -> None:
    setup(raw, tmp_path)

    response = raw.request(method, params)

    assert "error" in response, response
    if code is not None:
        assert response["error"]["code"] == code
    still_answers(raw)


@pytest.mark.parametrize(
    ("method", "params"),
    [
        pytest.param("speedsmith/unknownNotification", {"x": 1}, id="unknown-notification"),
        pytest.param("$/somethingOptional", None, id="dollar-notification"),
        pytest.param(
            "textDocument/didChange",
            {
                "textDocument": {"uri": "file:///nowhere.py", "version": 2},
                "contentChanges": [{"text": "x = 1\n"}],
            },
            id="change-of-a-document-never-opened",
        ),
        pytest.param(
            "textDocument/didClose",
            {"textDocument": {"uri": "file:///nowhere.py"}},
            id="close-of-a-document-never-opened",
        ),
        pytest.param(
            "textDocument/didOpen",
            {"textDocument": {"uri": "file:///x.py", "languageId": "python", "text": 3}},
            id="open-with-invalid-params",
        ),
        pytest.param(
            "textDocument/didSave", {"textDocument": {"uri": 7}}, id="save-with-invalid-params"
        ),
        pytest.param("workspace/didChangeConfiguration", {"settings": [1, 2]}, id="bad-settings"),
    ],
)
def test_bad_notifications_are_survived(
    raw: RawClient, tmp_path: Path, method: str, params: Any
) -> None:
    setup(raw, tmp_path)

    raw.notify(method, params)

    still_answers(raw)


def test_a_flood_of_cancel_requests(raw: RawClient, tmp_path: Path) -> None:
    """2,000 cancellations of requests that do not exist leave the running job alone; the one
    for the job's own request stops it (and its child)."""
    pid_file = tmp_path / "child.pid"
    uri = setup(
        raw, tmp_path, steps=["started"], wait_for_cancel=True, child_pid_file=str(pid_file)
    )
    job = raw.send_request("workspace/executeCommand", optimize_params(uri))
    raw.wait_for(
        lambda m: m.get("method") == "$/progress" and m["params"]["value"]["kind"] == "report"
    )

    flood = b"".join(
        encode({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": request_id}})
        for request_id in range(100_000, 102_000)
    )
    raw.send_bytes(flood)
    answer = raw.response(status_probe(raw))

    assert answer["result"]["running"] is None  # status is about background jobs: none
    assert pid_file.exists() and process_running(int(pid_file.read_text()))
    raw.notify("$/cancelRequest", {"id": job})
    response = raw.response(job)
    assert response.get("result") is None or response["error"]["code"] == -32800
    wait_until(lambda: not process_running(int(pid_file.read_text())))
    still_answers(raw)


@pytest.mark.parametrize(
    ("during", "edit_expected", "message"),
    [
        pytest.param(
            lambda raw, uri, path: raw.notify(
                "textDocument/didChange",
                {
                    "textDocument": {"uri": uri, "version": 2},
                    "contentChanges": [{"text": MODULE + "\n# typing\n"}],
                },
            ),
            False,
            "mod.py changed while optimizing slow; no edit applied. Run Optimize again.",
            id="typing-during-the-search",
        ),
        pytest.param(
            lambda raw, uri, path: raw.notify(
                "textDocument/didClose", {"textDocument": {"uri": uri}}
            ),
            False,
            "mod.py was closed while optimizing slow; no edit applied. Run Optimize again.",
            id="document-closed-during-the-search",
        ),
        pytest.param(
            lambda raw, uri, path: path.write_text(MODULE + "\n# from another program\n"),
            True,
            "speedsmith: slow: verified 2.00x faster",
            id="file-changed-on-disk-during-the-search",
        ),
    ],
)
def test_document_moves_during_a_job(
    raw: RawClient,
    tmp_path: Path,
    during: Callable[[RawClient, str, Path], Any],
    edit_expected: bool,
    message: str,
) -> None:
    """The edit goes to the buffer's version the job started from, or nowhere (with a message
    saying why): never to text the job did not see."""
    release = tmp_path / "release"
    uri = setup(raw, tmp_path, steps=["started"], wait_for_file=str(release))
    job = raw.send_request("workspace/executeCommand", optimize_params(uri))
    raw.wait_for(
        lambda m: m.get("method") == "$/progress" and m["params"]["value"]["kind"] == "report"
    )

    during(raw, uri, tmp_path / "mod.py")
    still_answers(raw)  # answered after the change was handled
    release.write_text("go")
    response = raw.response(job)

    assert response["result"]["verdict"] == "improved"
    edits = raw.messages_of("workspace/applyEdit")
    shown = [m["params"]["message"] for m in raw.messages_of("window/showMessage")]
    if edit_expected:
        [edit] = edits
        [change] = edit["params"]["edit"]["documentChanges"]
        assert change["textDocument"] == {"uri": uri, "version": 1}
    else:
        assert edits == []
    assert any(message in text for text in shown), shown


CLIENT = textwrap.dedent(
    """
    import json, subprocess, sys, time
    command, root, script = json.loads(sys.argv[1])
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    def send(message):
        body = json.dumps(message).encode()
        server.stdin.write(b"Content-Length: %d\\r\\n\\r\\n" % len(body) + body)
        server.stdin.flush()
    uri = "file://" + root + "/mod.py"
    send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"processId": None,
          "rootUri": "file://" + root, "capabilities": {},
          "initializationOptions": {"backend": "replay", "replayFile": script}}})
    send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
          "uri": uri, "languageId": "python", "version": 1,
          "text": open(root + "/mod.py").read()}}})
    send({"jsonrpc": "2.0", "id": 2, "method": "workspace/executeCommand", "params": {
          "command": "speedsmith.optimize", "arguments": [{"uri": uri, "qualname": "slow"}]}})
    print(server.pid, flush=True)
    time.sleep(600)
    """
)


def process_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def wait_until(condition: Callable[[], bool], timeout: float = HANG) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "hang"
        time.sleep(0.02)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_client_killed_mid_job(tmp_path: Path) -> None:
    """SIGKILL the editor while a job runs: the server sees its input end, cancels the job (whose
    child dies with it) and exits."""
    pid_file = tmp_path / "child.pid"
    script = tmp_path / "script.json"
    script.write_text(
        json.dumps(
            {"verdict": "no-improvement", "wait_for_cancel": True, "child_pid_file": str(pid_file)}
        )
    )
    (tmp_path / "mod.py").write_text(MODULE, encoding="utf-8")
    client = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CLIENT,
            json.dumps([FAKE_SERVER_COMMAND, str(tmp_path), str(script)]),
        ],
        stdout=subprocess.PIPE,
        env=SERVER_ENV,
        text=True,
    )
    try:
        assert client.stdout is not None
        server_pid = int(client.stdout.readline())
        wait_until(pid_file.exists)
        child_pid = int(pid_file.read_text())
        assert process_running(server_pid) and process_running(child_pid)

        client.send_signal(signal.SIGKILL)
        client.wait()

        wait_until(lambda: not process_running(server_pid))
        assert not process_running(child_pid)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
