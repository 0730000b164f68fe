"""Run the engine for the editor and hand its verified result back as an edit.

LSP methods: ``workspace/executeCommand`` for ``speedsmith.optimize`` (reports through
``window/workDoneProgress/create`` and ``$/progress``; proposes the result with
``workspace/applyEdit``; explains itself with ``window/showMessage``), ``speedsmith.cancel``
(stops every job, background ones included), ``speedsmith.settings`` (the effective settings,
camelCase) and ``speedsmith.status`` (the background queue: running, queued, runs); and
``window/workDoneProgress/cancel`` (stops the job behind a progress token).

The engine is blocking and calls ``progress`` from its worker thread: it runs on the
server's own single-worker executor, and progress is marshalled back to the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from speedsmith import positions
from speedsmith.cache import tests_fingerprint
from speedsmith.errors import Cancelled
from speedsmith.lsp.config import settings_for
from speedsmith.lsp.server import Job, SpeedsmithServer
from speedsmith.report import OptimizeReport
from speedsmith.settings import to_wire

logger = logging.getLogger(__name__)

OPTIMIZE_COMMAND = "speedsmith.optimize"
CANCEL_COMMAND = "speedsmith.cancel"
SETTINGS_COMMAND = "speedsmith.settings"
STATUS_COMMAND = "speedsmith.status"
CANCELLED = "Cancelled"


def register(server: SpeedsmithServer) -> None:
    @server.command(OPTIMIZE_COMMAND)
    async def optimize(ls: SpeedsmithServer, *args: Any) -> dict[str, Any] | None:
        uri, qualname = optimize_arguments(args)
        return await run_optimize(ls, uri, qualname)

    @server.command(CANCEL_COMMAND)
    def cancel(ls: SpeedsmithServer, *args: Any) -> int:
        count = ls.cancel_jobs()
        if ls.background is not None:
            count += ls.background.cancel_all()
        return count

    @server.command(STATUS_COMMAND)
    def status(ls: SpeedsmithServer, *args: Any) -> dict[str, Any]:
        return ls.background.state() if ls.background is not None else {}

    @server.command(SETTINGS_COMMAND)
    async def settings(ls: SpeedsmithServer, *args: Any) -> dict[str, Any]:
        uri = args[0].get("uri") if args and isinstance(args[0], Mapping) else None
        return to_wire(await settings_for(ls, uri if isinstance(uri, str) else None))

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def progress_cancel(ls: SpeedsmithServer, params: types.WorkDoneProgressCancelParams) -> None:
        job = ls.jobs.get(str(params.token))
        if job is not None:
            job.cancel.set()


def optimize_arguments(args: Sequence[Any]) -> tuple[str, str]:
    """``[{"uri", "qualname", "version"?}]`` (what the code action sends) or ``[uri, qualname]``."""
    if len(args) == 1 and isinstance(args[0], Mapping):
        uri, qualname = args[0].get("uri"), args[0].get("qualname")
    elif len(args) == 2:
        uri, qualname = args
    else:
        uri = qualname = None
    if not (isinstance(uri, str) and uri and isinstance(qualname, str) and qualname):
        raise JsonRpcInvalidParams(
            f"{OPTIMIZE_COMMAND} expects [{{'uri': str, 'qualname': str}}], got {list(args)!r}"
        )
    return uri, qualname


async def run_optimize(ls: SpeedsmithServer, uri: str, qualname: str) -> dict[str, Any] | None:
    """Optimise ``qualname`` in the document at ``uri``; the report's JSON, None if cancelled."""
    document = ls.workspace.get_text_document(uri)
    if document.path is None:
        ls.show(f"speedsmith: {uri} is not a file on disk; save it first", types.MessageType.Error)
        return None
    try:
        text = document.source
    except (OSError, UnicodeDecodeError) as err:
        ls.show(f"speedsmith: cannot read {uri}: {err}", types.MessageType.Error)
        return None
    job = Job(
        token=f"speedsmith/{uuid.uuid4()}",
        uri=uri,
        qualname=qualname,
        version=document.version,
        text=text,
    )
    ls.jobs[job.token] = job
    if ls.background is not None:
        ls.background.preempt()  # an explicit request goes first
    try:
        return await _run(ls, job, Path(document.path))
    finally:
        job.done = True
        ls.jobs.pop(job.token, None)
        ls.work_done_progress.tokens.pop(job.token, None)
        if ls.background is not None:
            ls.background.kick()


async def _run(ls: SpeedsmithServer, job: Job, path: Path) -> dict[str, Any] | None:
    progress = await _begin(ls, job)
    settings = await settings_for(ls, job.uri)
    loop = asyncio.get_running_loop()

    def on_progress(phase: str, message: str) -> None:  # called on the worker thread
        loop.call_soon_threadsafe(_report, ls, job, progress, f"{phase}: {message}")

    def work() -> tuple[OptimizeReport, str]:
        # Imported here, on the worker: the engine pulls in numpy/scipy (about a second),
        # which should delay neither the server's start nor its event loop.
        from speedsmith import engine

        if job.cancel.is_set():
            raise Cancelled("cancelled before it started")
        tests = tests_fingerprint(path)  # the tests as this run finds them
        report = engine.optimize(
            path, job.qualname, settings, source=job.text, progress=on_progress, cancel=job.cancel
        )
        return report, tests

    try:
        report, tests = await loop.run_in_executor(ls.executor, work)
    except Cancelled:
        _end(ls, job, progress, CANCELLED)
        return None
    except asyncio.CancelledError:  # $/cancelRequest for the executeCommand request itself
        job.cancel.set()
        _end(ls, job, progress, CANCELLED)
        raise
    except Exception as err:
        logger.exception("optimizing %s failed", job.qualname)
        _end(ls, job, progress, "Failed")
        ls.show(
            f"speedsmith: optimizing {job.qualname} failed: {type(err).__name__}: {err}",
            types.MessageType.Error,
        )
        return None

    if ls.background is not None:
        ls.background.record(job.uri, job.qualname, job.text, settings, report, tests)
    summary = report.summary()
    if report.verdict == "improved" and report.edit is not None:
        if _changed(ls, job):
            _end(ls, job, progress, "Document changed; no edit applied")
            ls.show(
                f"speedsmith: {path.name} changed while optimizing {job.qualname}; "
                "no edit applied. Run Optimize again.",
                types.MessageType.Warning,
            )
        else:
            _end(ls, job, progress, summary)
            if await _apply(ls, job, report):
                ls.show(f"speedsmith: {job.qualname}: {summary}", types.MessageType.Info)
    else:
        _end(ls, job, progress, summary)
        kind = types.MessageType.Error if report.verdict == "error" else types.MessageType.Info
        ls.show(f"speedsmith: {job.qualname}: {summary}", kind)
    return report.to_json()


async def _begin(ls: SpeedsmithServer, job: Job) -> bool:
    """Create the job's progress token and begin; False if the client can't show progress."""
    if not ls.client_supports("window.work_done_progress"):
        return False
    try:
        await ls.work_done_progress.create_async(job.token)
    except Exception as err:
        ls.log(f"speedsmith: window/workDoneProgress/create failed: {err}")
        return False
    ahead = []  # jobs started earlier (ls.jobs keeps insertion order) that still run
    for other in ls.jobs.values():
        if other is job:
            break
        if not other.done:
            ahead.append(other.qualname)
    ls.work_done_progress.begin(
        job.token,
        types.WorkDoneProgressBegin(
            title=f"Optimizing {job.qualname}",
            cancellable=True,
            message=f"waiting for {', '.join(ahead)}" if ahead else "starting",
        ),
    )
    return True


def _report(ls: SpeedsmithServer, job: Job, progress: bool, message: str) -> None:
    if progress and not job.done and not job.cancel.is_set():
        ls.work_done_progress.report(job.token, types.WorkDoneProgressReport(message=message))


def _end(ls: SpeedsmithServer, job: Job, progress: bool, message: str) -> None:
    job.done = True
    if progress:
        ls.work_done_progress.end(job.token, types.WorkDoneProgressEnd(message=message))


def _changed(ls: SpeedsmithServer, job: Job) -> bool:
    """Whether the document moved on from the version (or text) the job started from."""
    current = ls.workspace.get_text_document(job.uri)
    if current.version != job.version:
        return True
    try:
        return current.source != job.text
    except (OSError, UnicodeDecodeError):
        return True


async def _apply(ls: SpeedsmithServer, job: Job, report: OptimizeReport) -> bool:
    """Send ``workspace/applyEdit`` for the report's edit; whether the editor applied it."""
    assert report.edit is not None
    edit = report.edit
    text_edit = types.TextEdit(
        range=types.Range(
            start=types.Position(*positions.byte_to_position(job.text, edit.start_byte)),
            end=types.Position(*positions.byte_to_position(job.text, edit.end_byte)),
        ),
        new_text=edit.new_text,
    )
    if ls.client_supports("workspace.workspace_edit.document_changes"):
        workspace_edit = types.WorkspaceEdit(
            document_changes=[
                types.TextDocumentEdit(
                    text_document=types.OptionalVersionedTextDocumentIdentifier(
                        uri=job.uri, version=job.version
                    ),
                    edits=[text_edit],
                )
            ]
        )
    else:
        workspace_edit = types.WorkspaceEdit(changes={job.uri: [text_edit]})
    if not ls.client_supports("workspace.apply_edit"):
        ls.log(f"speedsmith: optimized {job.qualname}:\n{report.diff or edit.new_text}")
        ls.show(
            f"speedsmith: {job.qualname}: {report.summary()}; this editor cannot apply edits "
            "(workspace/applyEdit), the new code is in the log",
            types.MessageType.Warning,
        )
        return False
    try:
        result = await ls.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(
                edit=workspace_edit, label=f"speedsmith: optimize {job.qualname}"
            )
        )
    except Exception as err:
        ls.show(f"speedsmith: applying the edit failed: {err}", types.MessageType.Error)
        return False
    if not result.applied:
        reason = result.failure_reason or "no reason given"
        ls.show(
            f"speedsmith: the editor did not apply the edit to {job.qualname}: {reason}",
            types.MessageType.Warning,
        )
        return False
    return True
