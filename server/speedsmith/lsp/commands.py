"""Run the engine for the editor and hand its verified result back as an edit.

LSP methods: ``workspace/executeCommand`` for ``speedsmith.optimize`` (reports through
``window/workDoneProgress/create`` and ``$/progress``; proposes the result with
``workspace/applyEdit``; explains itself with ``window/showMessage``), ``speedsmith.cancel``
(stops every job, background ones included), ``speedsmith.settings`` (the effective settings,
camelCase) and ``speedsmith.status`` (the background queue: running, queued, runs); and
``window/workDoneProgress/cancel`` (stops the job behind a progress token).

The engine is blocking and calls ``progress`` from its worker thread: it runs on the
scheduler's executor, and progress is marshalled back to the event loop. A result is proposed
only for the document version (and text) the run started from: typing during a search, closing
the document or a document that is not open any more means no edit, and a message saying why.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from speedsmith.cache import tests_fingerprint
from speedsmith.errors import Cancelled
from speedsmith.isolate import Region
from speedsmith.lsp import edits
from speedsmith.lsp.scheduler import Job
from speedsmith.settings import to_wire

if TYPE_CHECKING:
    from speedsmith.lsp.hints import Hints
    from speedsmith.lsp.scheduler import Scheduler
    from speedsmith.lsp.state import State
    from speedsmith.report import OptimizeReport

logger = logging.getLogger(__name__)

OPTIMIZE_COMMAND = "speedsmith.optimize"
CANCEL_COMMAND = "speedsmith.cancel"
SETTINGS_COMMAND = "speedsmith.settings"
STATUS_COMMAND = "speedsmith.status"
COMMANDS = (OPTIMIZE_COMMAND, CANCEL_COMMAND, SETTINGS_COMMAND, STATUS_COMMAND)
CANCELLED = "Cancelled"


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


def optimize_request(args: Sequence[Any]) -> tuple[str, tuple[str, ...], Region | None]:
    """What ``speedsmith.optimize`` is asked: the uri, the functions (one, or several from
    ``{"qualnames": [...]}``: run one after another) and the region (``{"region":
    {"startLine", "endLine"}}``, 0-based lines, inclusive; one function only)."""
    if len(args) == 1 and isinstance(args[0], Mapping) and "qualnames" in args[0]:
        uri, names = args[0].get("uri"), args[0].get("qualnames")
        if not (
            isinstance(uri, str)
            and uri
            and isinstance(names, list)
            and names
            and all(isinstance(n, str) and n for n in names)
        ):
            raise JsonRpcInvalidParams(
                f"{OPTIMIZE_COMMAND} expects [{{'uri': str, 'qualnames': [str, ...]}}], "
                f"got {list(args)!r}"
            )
        return uri, tuple(names), None
    uri, qualname = optimize_arguments(args)
    span = args[0].get("region") if isinstance(args[0], Mapping) else None
    if span is None:
        return uri, (qualname,), None
    first = span.get("startLine") if isinstance(span, Mapping) else None
    last = span.get("endLine") if isinstance(span, Mapping) else None
    if not (_line(first) and _line(last)):
        raise JsonRpcInvalidParams(
            f"{OPTIMIZE_COMMAND}: region must be {{'startLine': int, 'endLine': int}}, got {span!r}"
        )
    return uri, (qualname,), Region(first, last)


def _line(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class Commands:
    """The handlers of speedsmith's commands."""

    def __init__(self, state: State, scheduler: Scheduler, hints: Hints) -> None:
        self.state = state
        self.scheduler = scheduler
        self.hints = hints

    # -- the small ones -------------------------------------------------------------------------

    def cancel(self, *args: Any) -> int:
        """``speedsmith.cancel``: how many jobs were asked to stop."""
        return self.scheduler.cancel_all()

    def status(self, *args: Any) -> dict[str, Any]:
        """``speedsmith.status``: the background queue."""
        return self.scheduler.state()

    async def settings(self, *args: Any) -> dict[str, Any]:
        """``speedsmith.settings [{"uri"}]``: the effective settings, camelCase."""
        uri = args[0].get("uri") if args and isinstance(args[0], Mapping) else None
        return to_wire(await self.state.settings_for(uri if isinstance(uri, str) else None))

    def progress_cancel(self, params: types.WorkDoneProgressCancelParams) -> None:
        """``window/workDoneProgress/cancel``."""
        self.scheduler.cancel_token(str(params.token))

    # -- speedsmith.optimize --------------------------------------------------------------------

    async def optimize(self, *args: Any) -> dict[str, Any] | None:
        """``speedsmith.optimize``: the report's JSON, None if cancelled or not run."""
        uri, qualnames, region = optimize_request(args)
        state = self.state
        document = state.document(uri)
        was_open = document is not None
        if document is None:
            try:
                document = state.ls.workspace.get_text_document(uri)
            except Exception as err:
                state.show(f"speedsmith: cannot open {uri}: {err}", types.MessageType.Error)
                return None
        if document.path is None:
            state.show(
                f"speedsmith: {uri} is not a file on disk; save it first", types.MessageType.Error
            )
            return None
        try:
            text = document.source
        except (OSError, UnicodeDecodeError) as err:
            state.show(f"speedsmith: cannot read {uri}: {err}", types.MessageType.Error)
            return None
        job = Job(
            token=f"speedsmith/{uuid.uuid4()}",
            uri=uri,
            qualname=qualnames[0] if len(qualnames) == 1 else f"{len(qualnames)} functions",
            version=document.version,
            text=text,
            was_open=was_open,
            qualnames=qualnames,
            region=region,
        )
        self.scheduler.add(job)  # an explicit request goes first
        try:
            return await self._run(job, Path(document.path))
        finally:
            state.ls.work_done_progress.tokens.pop(job.token, None)
            self.scheduler.finish(job)

    async def _run(self, job: Job, path: Path) -> dict[str, Any] | None:
        state = self.state
        progress = await self._begin(job)
        settings = await state.settings_for(job.uri)
        loop = asyncio.get_running_loop()

        names = job.qualnames or (job.qualname,)

        def work() -> tuple[list[OptimizeReport], str]:
            # Imported here, on the worker: the engine pulls in numpy/scipy (about a second),
            # which should delay neither the server's start nor its event loop.
            from speedsmith import engine

            if job.cancel.is_set():
                raise Cancelled("cancelled before it started")
            tests = tests_fingerprint(path)  # the tests as this run finds them
            reports = []
            for index, name in enumerate(names):  # several: one after another
                if job.cancel.is_set():
                    raise Cancelled("cancelled")
                which = f"{name} ({index + 1}/{len(names)}) " if len(names) > 1 else ""

                def on_progress(phase: str, message: str, which: str = which) -> None:
                    # called on the worker thread
                    text = f"{which}{phase}: {message}"
                    loop.call_soon_threadsafe(self._report, job, progress, text)

                report = engine.optimize(
                    path,
                    name,
                    settings,
                    source=job.text,
                    progress=on_progress,
                    cancel=job.cancel,
                    region=job.region,
                )
                reports.append(report)
            return reports, tests

        try:
            reports, tests = await self.scheduler.run_blocking(work)
        except Cancelled:
            self._end(job, progress, CANCELLED)
            return None
        except asyncio.CancelledError:  # $/cancelRequest for the executeCommand request itself
            job.cancel.set()
            self._end(job, progress, CANCELLED)
            raise
        except Exception as err:
            logger.exception("optimizing %s failed", job.qualname)
            self._end(job, progress, "Failed")
            state.show(
                f"speedsmith: optimizing {job.qualname} failed: {type(err).__name__}: {err}",
                types.MessageType.Error,
            )
            return None

        for name, done in zip(names, reports, strict=True):
            if done.region is None or done.verdict == "improved":  # a region's failure is its own
                self.hints.record(job.uri, name, job.text, settings, done, tests)
        if len(names) > 1:
            return await self._conclude_all(job, path, progress, names, reports)
        [report] = reports
        summary = report.summary()
        if report.verdict == "improved" and report.edit is not None:
            stale = self._stale(job)
            if stale:
                self._end(job, progress, f"Document {stale}; no edit applied")
                state.show(
                    f"speedsmith: {path.name} {stale} while optimizing {job.qualname}; "
                    "no edit applied. Run Optimize again.",
                    types.MessageType.Warning,
                )
            else:
                self._end(job, progress, summary)
                if await self._apply(job, report):
                    state.show(f"speedsmith: {job.qualname}: {summary}", types.MessageType.Info)
        else:
            self._end(job, progress, summary)
            kind = types.MessageType.Error if report.verdict == "error" else types.MessageType.Info
            state.show(f"speedsmith: {job.qualname}: {summary}", kind)
        return report.to_json()

    async def _conclude_all(
        self,
        job: Job,
        path: Path,
        progress: bool,
        names: Sequence[str],
        reports: Sequence[OptimizeReport],
    ) -> dict[str, Any]:
        """ "Optimize all N functions": one message per function, and the improved ones'
        edits proposed together, as one edit of the version the run started from."""
        state = self.state
        improved = [
            (name, report)
            for name, report in zip(names, reports, strict=True)
            if report.verdict == "improved" and report.edit is not None
        ]
        summary = "; ".join(f"{n}: {r.summary()}" for n, r in zip(names, reports, strict=True))
        stale = self._stale(job) if improved else ""
        if stale:
            self._end(job, progress, f"Document {stale}; no edit applied")
            state.show(
                f"speedsmith: {path.name} {stale} while optimizing {job.qualname}; "
                "no edit applied. Run Optimize again.",
                types.MessageType.Warning,
            )
        else:
            self._end(job, progress, summary)
            applied = bool(improved) and await self._apply_all(job, [r for _, r in improved])
            for name, report in zip(names, reports, strict=True):
                if report.verdict == "improved" and not applied:
                    continue
                kind = (
                    types.MessageType.Error if report.verdict == "error" else types.MessageType.Info
                )
                state.show(f"speedsmith: {name}: {report.summary()}", kind)
        return {"reports": [report.to_json() for report in reports]}

    async def _apply_all(self, job: Job, reports: Sequence[OptimizeReport]) -> bool:
        """Send one ``workspace/applyEdit`` with every report's edit; whether it was applied."""
        state = self.state
        text_edits = [edits.text_edit(job.text, r.edit) for r in reports if r.edit is not None]
        if not state.client_supports("workspace.apply_edit"):
            for report in reports:
                state.log(f"speedsmith: optimized {report.target}:\n{report.diff}")
            state.show(
                f"speedsmith: {job.qualname}: this editor cannot apply edits "
                "(workspace/applyEdit), the new code is in the log",
                types.MessageType.Warning,
            )
            return False
        return await self._send(job, text_edits, "the editor did not apply the edits")

    async def _begin(self, job: Job) -> bool:
        """Create the job's progress token and begin; False if the client can't show progress."""
        state = self.state
        if not state.client_supports("window.work_done_progress"):
            return False
        try:
            await state.ls.work_done_progress.create_async(job.token)
        except Exception as err:
            state.log(f"speedsmith: window/workDoneProgress/create failed: {err}")
            return False
        ahead = self.scheduler.ahead_of(job)
        state.ls.work_done_progress.begin(
            job.token,
            types.WorkDoneProgressBegin(
                title=f"Optimizing {job.qualname}",
                cancellable=True,
                message=f"waiting for {', '.join(ahead)}" if ahead else "starting",
            ),
        )
        return True

    def _report(self, job: Job, progress: bool, message: str) -> None:
        if progress and not job.done and not job.cancel.is_set():
            self.state.ls.work_done_progress.report(
                job.token, types.WorkDoneProgressReport(message=message)
            )

    def _end(self, job: Job, progress: bool, message: str) -> None:
        job.done = True
        if progress:
            self.state.ls.work_done_progress.end(
                job.token, types.WorkDoneProgressEnd(message=message)
            )

    def _stale(self, job: Job) -> str:
        """Why the job's result can no longer be proposed ("" if it can): the document was
        closed, or moved on from the version (or text) the job started from."""
        current = self.state.document(job.uri)
        if current is None:
            if job.was_open:
                return "was closed"
            current = self.state.ls.workspace.get_text_document(job.uri)  # read from disk
        if current.version != job.version:
            return "changed"
        try:
            return "changed" if current.source != job.text else ""
        except (OSError, UnicodeDecodeError):
            return "changed"

    async def _apply(self, job: Job, report: OptimizeReport) -> bool:
        """Send ``workspace/applyEdit`` for the report's edit; whether the editor applied it."""
        state = self.state
        assert report.edit is not None
        text_edit = edits.text_edit(job.text, report.edit)
        if not state.client_supports("workspace.apply_edit"):
            state.log(f"speedsmith: optimized {job.qualname}:\n{report.diff or text_edit.new_text}")
            state.show(
                f"speedsmith: {job.qualname}: {report.summary()}; this editor cannot apply edits "
                "(workspace/applyEdit), the new code is in the log",
                types.MessageType.Warning,
            )
            return False
        return await self._send(
            job, text_edit, f"the editor did not apply the edit to {job.qualname}"
        )

    async def _send(
        self, job: Job, text_edits: types.TextEdit | list[types.TextEdit], refused: str
    ) -> bool:
        """``workspace/applyEdit`` for the version the job started from; False (and a message
        saying why) when it failed or the editor refused."""
        state = self.state
        try:
            result = await edits.apply(
                state,
                job.uri,
                job.version,
                text_edits,
                label=f"speedsmith: optimize {job.qualname}",
            )
        except Exception as err:
            state.show(f"speedsmith: applying the edit failed: {err}", types.MessageType.Error)
            return False
        if not result.applied:
            reason = result.failure_reason or "no reason given"
            state.show(f"speedsmith: {refused}: {reason}", types.MessageType.Warning)
            return False
        return True
