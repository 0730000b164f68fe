"""A bare LSP client over stdio: sends any bytes, reads every message the server writes.

pytest-lsp's client only sends well-formed messages; the abuse tests need malformed JSON, wrong
``Content-Length`` headers and floods, and to see exactly what comes back. A reader thread
parses the server's output into a queue; ``request`` waits for the answer with the same id.
"""

from __future__ import annotations

import itertools
import json
import queue
import subprocess
import threading
from pathlib import Path
from typing import Any

from lsp_helpers import FAKE_SERVER_COMMAND, HANG, SERVER_COMMAND, SERVER_ENV


def frame(body: bytes, length: int | None = None) -> bytes:
    """``body`` with its header (``length`` overrides the true Content-Length)."""
    size = len(body) if length is None else length
    return f"Content-Length: {size}\r\n\r\n".encode() + body


def encode(message: dict[str, Any]) -> bytes:
    return frame(json.dumps(message).encode())


class RawClient:
    """One server process and what it said."""

    def __init__(self, *, fake: bool = True, env: dict[str, str] | None = None) -> None:
        command = FAKE_SERVER_COMMAND if fake else SERVER_COMMAND
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**SERVER_ENV, **(env or {})},
        )
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        """Every message read so far (``wait_for`` and ``request`` move them here)."""
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if length is None:
                continue
            self.messages.put(json.loads(stream.read(length)))

    # -- sending ----------------------------------------------------------------------------------

    def send_bytes(self, data: bytes) -> None:
        assert self.process.stdin is not None
        with self.lock:
            self.process.stdin.write(data)
            self.process.stdin.flush()

    def notify(self, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self.send_bytes(encode(message))

    def send_request(self, method: str, params: Any = None) -> int:
        request_id = next(self.ids)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send_bytes(encode(message))
        return request_id

    def request(self, method: str, params: Any = None, timeout: float = HANG) -> dict[str, Any]:
        """Send a request and return the response message (``result`` or ``error``)."""
        request_id = self.send_request(method, params)
        return self.response(request_id, timeout)

    # -- receiving --------------------------------------------------------------------------------

    def wait_for(self, match: Any, timeout: float = HANG) -> dict[str, Any]:
        """The first message (seen before or arriving within ``timeout``) for which ``match``
        is true; answers the server's own requests on the way."""
        for message in self.seen:
            if match(message):
                return message
        while True:
            message = self.messages.get(timeout=timeout)
            self.seen.append(message)
            self._answer(message)
            if match(message):
                return message

    def response(self, request_id: int, timeout: float = HANG) -> dict[str, Any]:
        return self.wait_for(
            lambda m: m.get("id") == request_id and "method" not in m, timeout=timeout
        )

    def _answer(self, message: dict[str, Any]) -> None:
        """Answer the server's requests: configuration (empty), progress tokens, edits."""
        if "id" not in message or "method" not in message:
            return
        result: Any = None
        if message["method"] == "workspace/configuration":
            result = [None for _ in message["params"]["items"]]
        elif message["method"] == "workspace/applyEdit":
            result = {"applied": True}
        self.send_bytes(encode({"jsonrpc": "2.0", "id": message["id"], "result": result}))

    def messages_of(self, method: str) -> list[dict[str, Any]]:
        self.drain()
        return [m for m in self.seen if m.get("method") == method]

    def drain(self) -> None:
        while True:
            try:
                message = self.messages.get_nowait()
            except queue.Empty:
                return
            self.seen.append(message)
            self._answer(message)

    # -- the session ------------------------------------------------------------------------------

    def initialize(self, root: Path, options: Any = None) -> dict[str, Any]:
        response = self.request(
            "initialize",
            {
                "processId": None,
                "rootUri": root.as_uri(),
                "capabilities": {
                    "window": {"workDoneProgress": True},
                    "workspace": {
                        "applyEdit": True,
                        "workspaceEdit": {"documentChanges": True},
                    },
                    "textDocument": {
                        "codeAction": {
                            "codeActionLiteralSupport": {
                                "codeActionKind": {"valueSet": ["refactor.rewrite", "quickfix"]}
                            }
                        }
                    },
                },
                "initializationOptions": options,
            },
        )
        self.notify("initialized", {})
        return response

    def open(self, path: Path, text: str | None = None, version: int = 1) -> str:
        uri = path.as_uri()
        self.notify(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": uri,
                    "languageId": "python",
                    "version": version,
                    "text": path.read_text(encoding="utf-8") if text is None else text,
                }
            },
        )
        return uri

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        if self.alive():
            try:
                self.request("shutdown", timeout=30)
                self.notify("exit")
            except (OSError, queue.Empty):
                pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
