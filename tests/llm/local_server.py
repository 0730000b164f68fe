"""A real OpenAI-compatible server for the llm tests: llama-cpp-python's own
``llama_cpp.server`` (the ``[server]`` extra) serving the embedded model on a free localhost
port. Readiness is waited for by polling ``/v1/models``; the timeouts only catch a hang."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

HANG_SECONDS = 300.0
"""Only a hung server takes this long to answer /v1/models (loading takes ~2 s)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalServer:
    process: subprocess.Popen[bytes]
    port: int
    model: str
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=60)


def start_server(model: Path, log: Path, *, alias: str = "smollm2") -> LocalServer:
    pytest.importorskip("uvicorn", reason="llama-cpp-python[server] is not installed")
    pytest.importorskip("sse_starlette", reason="llama-cpp-python[server] is not installed")
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model)]
    command += ["--model_alias", alias, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--n_ctx", "2048", "--n_threads", str(min(2, os.cpu_count() or 1))]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    server = LocalServer(process, port, alias, log)
    deadline = time.monotonic() + HANG_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"llama_cpp.server exited: {log.read_text(errors='replace')[-2000:]}"
            )
        if _serves_a_model(server.base_url):
            return server
        time.sleep(0.2)
    server.kill()
    raise RuntimeError("llama_cpp.server did not come up (hang)")


def _serves_a_model(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=5) as answer:
            return bool(json.load(answer).get("data"))
    except (OSError, ValueError):
        return False
