"""The speedsmith language server object and how it is started.

LSP methods handled here: ``initialize`` (only to pin the position encoding to UTF-16, the one
``speedsmith.positions`` speaks) and ``shutdown`` (cancels running jobs). The features live
in sibling modules:

- ``speedsmith.lsp.config``: ``initialize``, ``initialized``,
  ``workspace/didChangeConfiguration``;
- ``speedsmith.lsp.actions``: ``textDocument/codeAction``;
- ``speedsmith.lsp.background``: ``textDocument/didOpen``, ``didChange``, ``didSave``,
  ``didClose``, ``textDocument/hover``, ``textDocument/publishDiagnostics`` (background
  suggestions on save);
- ``speedsmith.lsp.commands``: ``workspace/executeCommand`` (``speedsmith.optimize``,
  ``speedsmith.cancel``, ``speedsmith.settings``) and ``window/workDoneProgress/cancel``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.uris import to_fs_path

from speedsmith import __version__
from speedsmith.settings import DEFAULTS, Settings

if TYPE_CHECKING:
    from speedsmith.lsp.background import Background

logger = logging.getLogger(__name__)


class SpeedsmithProtocol(LanguageServerProtocol):
    """pygls' protocol, but positions are always UTF-16 code units.

    pygls picks the first encoding the client offers (Neovim offers UTF-8 first); speedsmith
    converts positions in one place only (``speedsmith.positions``, UTF-16), so it never
    negotiates anything else.
    """

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(
        self, params: types.InitializeParams
    ) -> Generator[Any, Any, types.InitializeResult]:
        general = params.capabilities.general
        if general is not None and general.position_encodings is not None:
            general.position_encodings = [types.PositionEncodingKind.Utf16]
        return (yield from super().lsp_initialize(params))


@dataclass
class Job:
    """One ``speedsmith.optimize`` run."""

    token: str
    uri: str
    qualname: str
    version: int | None
    """The document version the run started from."""
    text: str
    """The document text the run started from (the edit's offsets refer to it)."""
    cancel: threading.Event = field(default_factory=threading.Event)
    done: bool = False


class SpeedsmithServer(LanguageServer):
    """State shared by the handlers: settings layers, the job executor and running jobs."""

    def __init__(self) -> None:
        super().__init__(
            "speedsmith",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=SpeedsmithProtocol,
        )
        self.init_options: dict[str, Any] = {}
        """``initializationOptions`` (the ``speedsmith`` object when nested)."""
        self.client_settings: Settings = DEFAULTS
        """Defaults + initializationOptions + workspace/configuration (no pyproject)."""
        self.configured = asyncio.Event()
        """Set once the first ``workspace/configuration`` pull is over."""
        self.jobs: dict[str, Job] = {}
        """Running and queued optimisation jobs by progress token."""
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="speedsmith-job")
        """Runs the (blocking) engine; one job at a time, never on pygls' shared pool."""
        self.background: Background | None = None
        """Background suggestions on save (``speedsmith.lsp.background``)."""

    # -- capabilities -------------------------------------------------------------------

    def client_supports(self, capability: str) -> bool:
        """Whether the dotted snake_case client capability is present and truthy."""
        return bool(get_capability(self.client_capabilities, capability, False))

    # -- paths ----------------------------------------------------------------------------

    def project_root(self, uri: str | None = None) -> Path | None:
        """The workspace folder holding ``uri`` (the deepest one), else the workspace root."""
        try:
            workspace = self.workspace
        except RuntimeError:
            return None
        path = to_fs_path(uri) if uri else None
        if path is not None:
            best: Path | None = None
            for folder in workspace.folders.values():
                folder_path = to_fs_path(folder.uri)
                if folder_path is None:
                    continue
                candidate = Path(folder_path)
                if Path(path).is_relative_to(candidate) and (
                    best is None or len(candidate.parts) > len(best.parts)
                ):
                    best = candidate
            if best is not None:
                return best
        root = workspace.root_path
        return Path(root) if root else None

    # -- messages ---------------------------------------------------------------------------

    def show(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def log(self, message: str, kind: types.MessageType = types.MessageType.Log) -> None:
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    def warn_settings(self, warnings: list[str], *, popup: bool) -> None:
        """Log every settings warning; with ``popup`` also show one summary message."""
        for warning in warnings:
            self.log(f"speedsmith: {warning}", types.MessageType.Warning)
        if popup and warnings:
            self.show("speedsmith: " + "; ".join(warnings), types.MessageType.Warning)

    # -- jobs -----------------------------------------------------------------------------------

    def cancel_jobs(self) -> int:
        """Ask every running or queued job to stop; returns how many were asked."""
        count = 0
        for job in self.jobs.values():
            if not job.cancel.is_set():
                job.cancel.set()
                count += 1
        return count


def create_server() -> SpeedsmithServer:
    """A new server with every feature registered."""
    from speedsmith.lsp import actions, background, commands, config

    server = SpeedsmithServer()
    config.register(server)
    actions.register(server)
    commands.register(server)
    background.register(server)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: SpeedsmithServer, params: None) -> None:
        ls.cancel_jobs()
        if ls.background is not None:
            ls.background.cancel_all()
        ls.executor.shutdown(wait=False, cancel_futures=True)

    return server


def _parse_tcp(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {address!r}")
    return host or "127.0.0.1", int(port)


def start(tcp: str | None = None) -> None:
    """Run the language server until the client disconnects.

    ``tcp`` is ``"HOST:PORT"`` to listen on a socket; ``None`` speaks LSP on stdin/stdout.
    In stdio mode the protocol gets private copies of file descriptors 0 and 1, and the
    process's own stdin/stdout become /dev/null and stderr, so nothing the engine or a
    subprocess (the user's tests) reads or prints can corrupt the LSP stream.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.WARNING, stream=sys.stderr, format="speedsmith %(levelname)s %(message)s"
        )
        logging.getLogger("pygls").setLevel(logging.ERROR)
    server = create_server()
    if tcp is not None:
        host, port = _parse_tcp(tcp)
        server.start_tcp(host, port)
        return
    sys.stdout.flush()
    protocol_in = os.fdopen(os.dup(0), "rb")
    protocol_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    sys.stdout = sys.stderr
    server.start_io(protocol_in, protocol_out)  # type: ignore[arg-type]
