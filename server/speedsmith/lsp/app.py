"""The speedsmith language server: the pygls server, its features, and how it is started.

LSP methods registered here, each handed to the module that serves it:

- ``initialize`` (also pins the position encoding to UTF-16, the one ``speedsmith.positions``
  speaks), ``initialized``, ``workspace/didChangeConfiguration``: ``speedsmith.lsp.state``;
- ``textDocument/didOpen``, ``didChange``, ``didSave``, ``didClose``, ``textDocument/hover``
  (and outgoing ``textDocument/publishDiagnostics``): ``speedsmith.lsp.hints``;
- ``textDocument/codeAction``: ``speedsmith.lsp.actions``;
- ``workspace/executeCommand`` (``speedsmith.optimize``, ``speedsmith.cancel``,
  ``speedsmith.settings``, ``speedsmith.status``) and ``window/workDoneProgress/cancel``:
  ``speedsmith.lsp.commands``, whose jobs run on ``speedsmith.lsp.scheduler``;
- ``shutdown`` and ``exit``, and the client going away (end of input): every job is cancelled
  (the engine kills its children) before the process ends.

Only this module knows the server class; the features receive the objects they use.

Over stdio the event loop reads the client's pipe itself (``LoopReader``): pygls hands every
header line and body to a thread of its pool and back, three thread switches a message, each
waiting for the interpreter lock while a search holds it, which was most of ``codeAction``'s
tail latency under load. Documents are ``speedsmith.lsp.documents.LineDocument``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import threading
from collections.abc import Generator
from typing import IO, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcMethodNotFound
from pygls.io_ import StdinAsyncReader, StdoutWriter, run_async
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method

from speedsmith import __version__
from speedsmith.lsp import actions, commands
from speedsmith.lsp.documents import LineWorkspace
from speedsmith.lsp.hints import Hints
from speedsmith.lsp.scheduler import Scheduler
from speedsmith.lsp.state import State

logger = logging.getLogger(__name__)

EXIT_WAIT_SECONDS = 10.0
"""At exit, how long the running job gets to stop (and kill its children) before the process
ends anyway."""


SWITCH_INTERVAL_SECONDS = 0.0005
"""The interpreter's thread switch interval in the server (the default is 0.005)."""

HEADER_LINE_LIMIT = 1 << 16
"""The longest header line ``LoopReader`` reads; a longer one is junk and dropped."""
YIELD_EVERY = 32
"""``LoopReader`` lets the event loop run other callbacks after this many messages in a row."""


class LoopReader:
    """pygls's reader interface (``readline``, ``readexactly``) over the client's pipe, read
    by the event loop itself: no thread hands each message over. End of input reads as b""."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.stream = stream
        self.messages = 0

    @classmethod
    async def connect(cls, pipe: IO[bytes]) -> LoopReader:
        """Read ``pipe`` (a pipe, socket or terminal; ValueError for a regular file)."""
        loop = asyncio.get_running_loop()
        stream = asyncio.StreamReader(limit=HEADER_LINE_LIMIT, loop=loop)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream), pipe)
        return cls(stream)

    async def readline(self) -> bytes:
        try:
            return await self.stream.readline()
        except ValueError:  # over HEADER_LINE_LIMIT: not a header (the stream dropped it)
            return b"?\r\n"

    async def readexactly(self, n: int) -> bytes:
        self.messages += 1
        if self.messages % YIELD_EVERY == 0:  # a long burst: let timers and tasks run too
            await asyncio.sleep(0)
        try:
            return await self.stream.readexactly(n)
        except asyncio.IncompleteReadError as end:  # input ended inside the body
            return end.partial


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

    def use_line_documents(self) -> None:
        """Make the workspace pygls has just created (in ``initialize``, before the server's
        own handler runs) keep its documents as ``LineDocument``: the class adds no state."""
        self.workspace.__class__ = LineWorkspace

    def _execute_handler(
        self,
        msg_id: Any,
        handler: Any,
        callback: Any,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        """pygls's, without its leak: a notification handled by a generator or a coroutine
        (``didOpen``, ``didChange``, ``didSave``, ``didClose``...) is filed under a fresh id
        that no response ever removes, so each one kept about 1.8 KB for good (18 MB per
        10,000 edits). Notifications can't be cancelled by id: forget them once done."""
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        if callback != self._check_handler_result:  # a request: its response removes it
            return
        future = self._request_futures.get(msg_id)
        if future is None:
            return
        if future.done():
            self._request_futures.pop(msg_id, None)
        else:
            future.add_done_callback(lambda _: self._forget_later(msg_id))

    def _forget_later(self, msg_id: Any) -> None:
        """Drop ``msg_id`` on the event loop's next turn: a done callback may run while pygls
        iterates over the table (``shutdown`` cancels everything in it)."""
        try:
            asyncio.get_running_loop().call_soon(self._request_futures.pop, msg_id, None)
        except RuntimeError:  # no loop in this thread: nothing iterates the table here
            self._request_futures.pop(msg_id, None)

    def structure_message(self, data: dict[str, Any]) -> Any:
        """pygls's, but a request whose params do not fit its method is still answered.

        pygls raises while decoding such a request and never answers it, so the editor would
        wait forever: answer ``MethodNotFound`` when nothing handles the method (whatever its
        params), else ``InvalidParams``.
        """
        try:
            return super().structure_message(data)
        except JsonRpcException as error:
            request_id = data.get("id") if isinstance(data, dict) else None
            method = data.get("method") if isinstance(data, dict) else None
            if isinstance(request_id, int | str) and isinstance(method, str):
                answer: JsonRpcException = error
                try:
                    self._get_handler(method)
                except JsonRpcMethodNotFound as missing:
                    answer = missing
                self._send_response(request_id, None, answer.to_response_error())
            raise


class SpeedsmithServer(LanguageServer):
    """pygls's server holding speedsmith's parts: state, scheduler, hints, actions, commands."""

    def __init__(self) -> None:
        super().__init__(
            "speedsmith",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=SpeedsmithProtocol,
        )
        self.state = State(self)
        self.scheduler = Scheduler(lambda method, params: self.protocol.notify(method, params))
        self.hints = Hints(self.state, self.scheduler)
        self.actions = actions.Actions(self.state, self.hints)
        self.commands = commands.Commands(self.state, self.scheduler, self.hints)

    def start_io(self, stdin: Any = None, stdout: Any = None) -> None:
        """pygls's stdio server, but the event loop reads ``stdin`` (``LoopReader``) unless it
        is a regular file (then pygls's reader, on its thread pool)."""
        stdin = stdin or sys.stdin.buffer
        self._stop_event = threading.Event()
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        try:
            asyncio.run(self._serve(stdin))
        except BrokenPipeError:
            logger.error("the client's pipe closed")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()

    async def _serve(self, stdin: Any) -> None:
        reader: LoopReader | StdinAsyncReader
        try:
            reader = await LoopReader.connect(stdin)
        except (OSError, ValueError):
            reader = StdinAsyncReader(stdin, self.thread_pool)
        assert self._stop_event is not None
        await run_async(
            stop_event=self._stop_event,
            reader=reader,
            protocol=self.protocol,
            logger=logger,
            error_handler=self.report_server_error,
        )

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Errors outside a request (a malformed message, say) go to the log, not a popup: a
        misbehaving client must not flood the user with messages."""
        logger.warning("%s: %s", getattr(source, "__name__", source), error)
        try:
            self.state.log(f"speedsmith: error in server: {error}", types.MessageType.Warning)
        except Exception:  # the transport may be gone
            logger.debug("could not log the error", exc_info=True)


def create_server() -> SpeedsmithServer:
    """A new server with every feature registered."""
    server = SpeedsmithServer()
    state, hints = server.state, server.hints

    @server.feature(types.INITIALIZE)
    def initialize(ls: SpeedsmithServer, params: types.InitializeParams) -> None:
        protocol = ls.protocol
        assert isinstance(protocol, SpeedsmithProtocol)
        protocol.use_line_documents()
        state.initialize(params.initialization_options)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: SpeedsmithServer, params: types.InitializedParams) -> None:
        await state.initialized()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: SpeedsmithServer, params: types.DidChangeConfigurationParams
    ) -> None:
        await state.pull(params.settings, popup=True)
        await hints.settings_changed()

    # didOpen and didSave are synchronous on purpose: the text they look at must be the one
    # of that moment, before any later didChange is applied.
    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: SpeedsmithServer, params: types.DidOpenTextDocumentParams) -> None:
        hints.opened(params.text_document.uri, params.text_document.text)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: SpeedsmithServer, params: types.DidChangeTextDocumentParams) -> None:
        hints.changed(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: SpeedsmithServer, params: types.DidSaveTextDocumentParams) -> None:
        hints.saved(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: SpeedsmithServer, params: types.DidCloseTextDocumentParams) -> None:
        hints.closed(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: SpeedsmithServer, params: types.HoverParams) -> types.Hover | None:
        return hints.hover(params.text_document.uri, params.position)

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, actions.OPTIONS)
    def code_action(
        ls: SpeedsmithServer, params: types.CodeActionParams
    ) -> list[types.CodeAction | types.Command] | None:
        return server.actions.code_actions(params)

    handlers = server.commands

    @server.command(commands.OPTIMIZE_COMMAND)
    async def optimize(ls: SpeedsmithServer, *args: Any) -> dict[str, Any] | None:
        return await handlers.optimize(*args)

    @server.command(commands.CANCEL_COMMAND)
    def cancel(ls: SpeedsmithServer, *args: Any) -> int:
        return handlers.cancel(*args)

    @server.command(commands.STATUS_COMMAND)
    def status(ls: SpeedsmithServer, *args: Any) -> dict[str, Any]:
        return handlers.status(*args)

    @server.command(commands.SETTINGS_COMMAND)
    async def settings(ls: SpeedsmithServer, *args: Any) -> dict[str, Any]:
        return await handlers.settings(*args)

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def progress_cancel(ls: SpeedsmithServer, params: types.WorkDoneProgressCancelParams) -> None:
        handlers.progress_cancel(params)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: SpeedsmithServer, params: None) -> None:
        server.scheduler.close()

    return server


def _parse_tcp(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {address!r}")
    return host or "127.0.0.1", int(port)


def start(tcp: str | None = None) -> None:
    """Run the language server until the client disconnects (or sends ``exit``).

    ``tcp`` is ``"HOST:PORT"`` to listen on a socket; ``None`` speaks LSP on stdin/stdout.
    In stdio mode the protocol gets private copies of file descriptors 0 and 1, and the
    process's own stdin/stdout become /dev/null and stderr, so nothing the engine or a
    subprocess (the user's tests) reads or prints can corrupt the LSP stream. When the
    client goes away (its end of the pipe closes, e.g. it was killed), every job is cancelled
    and the process ends, leaving no child behind.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.WARNING, stream=sys.stderr, format="speedsmith %(levelname)s %(message)s"
        )
        logging.getLogger("pygls").setLevel(logging.ERROR)
    # The engine's thread holds the GIL in stretches; hand it back to the event loop more often
    # than the default 5 ms, so codeAction and hover answer in a few ms while a search runs.
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    server = create_server()
    # What is loaded by now lives as long as the process: out of the collector's way, so a
    # full collection (which stops every thread) only walks what came after.
    gc.freeze()
    try:
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
    finally:
        if not server.scheduler.close(wait=EXIT_WAIT_SECONDS):
            logger.error("a job did not stop within %g s; exiting anyway", EXIT_WAIT_SECONDS)
            sys.stderr.flush()
            os._exit(1)
