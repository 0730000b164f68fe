"""Background suggestions: optimise the functions changed on save; hint at verified speedups.

LSP methods: ``textDocument/didOpen`` (remember the functions, show cached results),
``textDocument/didChange`` (drop hints whose function changed, cancel a stale job),
``textDocument/didSave`` (queue the functions changed since the last save),
``textDocument/didClose``, ``textDocument/hover`` (the cached result of the function under a
``def`` line, with the hot lines its run's profile found) and, outgoing,
``textDocument/publishDiagnostics`` (one Hint per verified speedup, source ``speedsmith``).
The quick fix behind a hint is offered by ``speedsmith.lsp.actions`` through
``Hints.quick_fixes``.

Only when the setting ``onSave`` is true (it runs the model after every save: opt-in). The
runs are queued on ``speedsmith.lsp.scheduler`` (one at a time, with the budget
``onSaveBudget``, each once ``onSaveDebounceSeconds`` have passed since its file's last save;
an explicit ``speedsmith.optimize`` pre-empts them). Functions no test
reaches are simply dropped when the engine refuses them. Conclusive results go to the on-disk
``speedsmith.cache``, so reopening a file shows them without running anything. A hint, its
quick fix and its hover hold only while the function's current text hashes to what was
verified; the edit is rebuilt from the current text.
"""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import logging
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.uris import to_fs_path

from speedsmith import edits, isolate, positions
from speedsmith.cache import CachedResult, ResultCache, result_key, tests_fingerprint
from speedsmith.errors import Cancelled, SpeedsmithError
from speedsmith.lsp import edits as lsp_edits
from speedsmith.lsp.documents import function_hash
from speedsmith.lsp.scheduler import Pending

if TYPE_CHECKING:
    from speedsmith.lsp.scheduler import Scheduler
    from speedsmith.lsp.state import State
    from speedsmith.report import OptimizeReport
    from speedsmith.settings import Settings

logger = logging.getLogger(__name__)

SOURCE = "speedsmith"
DIFF_LINES = 16
HOT_LINES_SHOWN = 3
"""The hover lists at most this many hot lines (those with at least ``HOT_LINE_SHARE``)."""
HOT_LINE_SHARE = 0.05
TESTS_FINGERPRINT_SECONDS = 2.0
CHANGE_QUIET_SECONDS = 0.1
"""``didChange`` re-checks the document this long after the last change (one check per burst
of typing): the check parses every function of the text and hashes the running job's (about
25 ms for 5,000 lines), which would otherwise delay the ``codeAction`` an editor sends right
after each keystroke. A stale result is never offered meanwhile (``_optimize`` and
``_valid`` compare hashes with the text of their moment)."""
"""How long a project's ``tests_fingerprint`` is reused (a burst of lookups walks once)."""


def functions(text: str) -> dict[str, isolate.FunctionInfo] | None:
    """The document's functions that can be optimised, by qualname; None if it doesn't parse."""
    try:
        found = isolate.parse_functions(text)
    except SpeedsmithError:
        return None
    result: dict[str, isolate.FunctionInfo] = {}
    for fn in found:
        if not fn.is_nested:
            result.setdefault(fn.qualname, fn)
    return result


def hashes(text: str, fns: dict[str, isolate.FunctionInfo]) -> dict[str, str]:
    """Each function's ``cache.function_hash`` (its source and the module code it uses)."""
    return {qualname: function_hash(text, fn) for qualname, fn in fns.items()}


def background_settings(settings: Settings) -> Settings:
    """The settings of a background run: the ``onSaveBudget`` as the budget."""
    return dataclasses.replace(settings, budget=settings.on_save_budget)


class Hints:
    """The verified results behind the published hints, and the background runs' bodies."""

    def __init__(self, state: State, scheduler: Scheduler) -> None:
        self.state = state
        self.scheduler = scheduler
        scheduler.background = self._optimize
        self.cache = ResultCache()
        self.baseline: dict[str, dict[str, str]] = {}
        """Per open document: each function's source hash at the last open or save."""
        self.found: dict[str, dict[str, CachedResult]] = {}
        """Per open document: verified (``improved``) results, by qualname."""
        self.tasks: set[asyncio.Task[None]] = set()
        self._recheck: dict[str, asyncio.TimerHandle] = {}
        """Per document: the pending check of ``changed`` (see ``CHANGE_QUIET_SECONDS``)."""
        self._fingerprints: dict[str, tuple[float, str]] = {}

    # -- documents -----------------------------------------------------------------------

    def _enabled(self, uri: str | None) -> bool:
        settings, _ = self.state.effective(uri)
        return settings.on_save

    def opened(self, uri: str, text: str) -> None:
        """``textDocument/didOpen`` (synchronous: ``text`` is the text of that moment)."""
        fns = functions(text)
        if fns is None:
            return
        self.baseline[uri] = hashes(text, fns)
        self._spawn(self._show_cached(uri))

    async def _show_cached(self, uri: str) -> None:
        settings = await self.state.settings_for(uri)
        text = self.state.text(uri)
        fns = functions(text) if text is not None else None
        if settings.on_save and fns is not None and uri in self.baseline:
            self._lookup_all(uri, fns, settings)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def changed(self, uri: str) -> None:
        """``textDocument/didChange``: re-publish and cancel a background job made stale, once
        the document has been quiet for ``CHANGE_QUIET_SECONDS``."""
        job = self.scheduler.current
        if uri not in self.found and (job is None or job.uri != uri):
            return
        pending = self._recheck.pop(uri, None)
        if pending is not None:
            pending.cancel()
        loop = asyncio.get_running_loop()
        self._recheck[uri] = loop.call_later(CHANGE_QUIET_SECONDS, self._changed_now, uri)

    def _changed_now(self, uri: str) -> None:
        self._recheck.pop(uri, None)
        if self.state.document(uri) is None:
            return
        job = self.scheduler.current
        if uri not in self.found and (job is None or job.uri != uri):
            return
        text = self.state.text(uri)
        fns = functions(text) if text is not None else None
        if job is not None and job.uri == uri and fns is not None:
            fn = fns.get(job.qualname)
            if fn is None or function_hash(text or "", fn) != job.function_hash:
                job.cancel.set()  # stale: its result could never be offered
        self.publish(uri, fns)

    def saved(self, uri: str) -> None:
        """``textDocument/didSave``: queue the functions changed since the last save."""
        self._forget_stale_tests()  # the saved file may be a test
        text = self.state.text(uri)
        fns = functions(text) if text is not None else None
        if fns is None:
            return
        now = hashes(text or "", fns)
        before = self.baseline.get(uri, {})
        self.baseline[uri] = now
        changed = {q: h for q, h in now.items() if before.get(q) != h}
        if changed:
            self._spawn(self._queue(uri, changed))

    async def _queue(self, uri: str, changed: dict[str, str]) -> None:
        settings = await self.state.settings_for(uri)
        if not settings.on_save or uri not in self.baseline:
            return
        tests = self._tests(uri)
        for qualname, hash_ in changed.items():
            entry = self._lookup(uri, qualname, hash_, settings, tests)
            if entry is not None:
                self._remember(uri, entry)
            else:
                self.scheduler.enqueue(
                    Pending(uri, qualname, hash_), settings.on_save_debounce_seconds
                )
        self.publish(uri)
        self.scheduler.kick()

    def closed(self, uri: str) -> None:
        """``textDocument/didClose``: forget the document, its queue and its hints."""
        self.baseline.pop(uri, None)
        self.found.pop(uri, None)
        pending = self._recheck.pop(uri, None)
        if pending is not None:
            pending.cancel()
        self.scheduler.drop(uri)
        self._clear(uri)

    async def settings_changed(self) -> None:
        """After ``workspace/didChangeConfiguration``: stop or resume per document."""
        for uri in list(self.baseline):
            settings = await self.state.settings_for(uri)
            if not settings.on_save:
                self.scheduler.drop(uri)
                self.found.pop(uri, None)
                self._clear(uri)
                continue
            text = self.state.text(uri)
            fns = functions(text) if text is not None else None
            if fns is not None:
                self._lookup_all(uri, fns, settings)
        self.scheduler.status()

    # -- cache ----------------------------------------------------------------------------

    def _tests(self, uri: str) -> str:
        """The ``tests_fingerprint`` of the project holding ``uri`` (reused for a moment)."""
        path = to_fs_path(uri)
        if path is None:
            return ""
        folder = str(Path(path).parent)
        now = time.monotonic()
        known = self._fingerprints.get(folder)
        if known is not None and now - known[0] < TESTS_FINGERPRINT_SECONDS:
            return known[1]
        fingerprint = tests_fingerprint(Path(path))
        self._fingerprints[folder] = (now, fingerprint)
        return fingerprint

    def _forget_stale_tests(self) -> None:
        """Drop the remembered results reached with tests that have changed since."""
        self._fingerprints.clear()
        for uri, found in list(self.found.items()):
            tests = self._tests(uri)
            stale = [q for q, entry in found.items() if entry.tests != tests]
            for qualname in stale:
                del found[qualname]
            if stale:
                self.publish(uri)

    def _keys(
        self, uri: str, qualname: str, hash_: str, settings: Settings, tests: str
    ) -> list[str]:
        path = to_fs_path(uri)
        if path is None:
            return []
        candidates = [background_settings(settings), settings]
        return list(
            dict.fromkeys(result_key(Path(path), qualname, hash_, s, tests) for s in candidates)
        )

    def _lookup(
        self, uri: str, qualname: str, hash_: str, settings: Settings, tests: str
    ) -> CachedResult | None:
        """A cached result for the background budget, else for the explicit one."""
        for key in self._keys(uri, qualname, hash_, settings, tests):
            entry = self.cache.get(key)
            if entry is not None:
                return entry
        return None

    def _lookup_all(
        self, uri: str, fns: dict[str, isolate.FunctionInfo], settings: Settings
    ) -> None:
        text = self.state.text(uri) or ""
        tests = self._tests(uri)
        for qualname, hash_ in hashes(text, fns).items():
            entry = self._lookup(uri, qualname, hash_, settings, tests)
            if entry is not None:
                self._remember(uri, entry)
        self.publish(uri, fns)

    def _remember(self, uri: str, entry: CachedResult) -> None:
        if entry.report.verdict == "improved" and entry.report.optimized:
            self.found.setdefault(uri, {})[entry.qualname] = entry

    def record(
        self,
        uri: str,
        qualname: str,
        text: str,
        settings: Settings,
        report: OptimizeReport,
        tests: str,
    ) -> None:
        """Cache the result of an explicit ``speedsmith.optimize`` (run on ``text`` with the
        project's tests as fingerprinted by ``tests`` when it started)."""
        path = to_fs_path(uri)
        try:
            fn = isolate.find_function(text, qualname)
        except SpeedsmithError:
            return
        if path is None:
            return
        hash_ = function_hash(text, fn)
        key = result_key(Path(path), qualname, hash_, settings, tests)
        try:
            entry = self.cache.put(key, hash_, settings.budget, report, tests)
        except OSError as err:
            self.state.log(f"speedsmith: could not write the result cache: {err}")
            return
        if entry is not None and uri in self.baseline and self._enabled(uri):
            self._remember(uri, entry)
            self.publish(uri)

    # -- hints ----------------------------------------------------------------------------

    def _valid(
        self, uri: str, fns: dict[str, isolate.FunctionInfo] | None
    ) -> list[tuple[isolate.FunctionInfo, CachedResult]]:
        """The remembered results whose function (and the code it uses) still has the verified
        text."""
        text = self.state.text(uri)
        if fns is None or text is None:
            return []
        valid = []
        for qualname, entry in self.found.get(uri, {}).items():
            fn = fns.get(qualname)
            if fn is not None and function_hash(text, fn) == entry.function_hash:
                valid.append((fn, entry))
        return valid

    def publish(self, uri: str, fns: dict[str, isolate.FunctionInfo] | None = None) -> None:
        """Send ``textDocument/publishDiagnostics``: one Hint per still-valid result."""
        text = self.state.text(uri)
        if text is None:
            return
        if fns is None:
            fns = functions(text)
        diagnostics = [diagnostic(text, fn, entry) for fn, entry in self._valid(uri, fns)]
        self.state.ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=uri, diagnostics=diagnostics, version=self.state.version(uri)
            )
        )

    def _clear(self, uri: str) -> None:
        self.state.ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )

    def quick_fixes(self, uri: str, range_: types.Range) -> list[types.CodeAction]:
        """Quick fixes for the function at ``range_`` (or on its ``def`` line), if verified.

        Rebuilt from the document's current text and version; none if the function changed.
        """
        if uri not in self.found:
            return []
        text = self.state.text(uri)
        if text is None:
            return []
        version = self.state.version(uri)
        fns = functions(text)
        offset = positions.position_to_byte(text, range_.start.line, range_.start.character)
        try:
            at = isolate.function_at(text, offset)
        except SpeedsmithError:
            return []
        fixes = []
        for fn, entry in self._valid(uri, fns):
            if at is None or not (fn.start_byte <= at.start_byte and at.end_byte <= fn.end_byte):
                continue
            assert entry.report.optimized is not None
            edit = lsp_edits.text_edit(text, edits.function_edit(text, fn, entry.report.optimized))
            report = entry.report
            fixes.append(
                types.CodeAction(
                    title=f"Use the verified {report.speedup or 1.0:.2f}x faster {fn.qualname}",
                    kind=types.CodeActionKind.QuickFix,
                    diagnostics=[diagnostic(text, fn, entry)],
                    edit=lsp_edits.workspace_edit(self.state, uri, version, edit),
                    is_preferred=True,
                )
            )
        return fixes

    def hover(self, uri: str, position: types.Position) -> types.Hover | None:
        """``textDocument/hover`` on a ``def`` line: the cached result of that function."""
        text = self.state.text(uri)
        if text is None:
            return None
        # One lookup at the end of the line (inside a ``def`` header), not a walk of every
        # function: hover stays cheap on long files.
        offset = positions.position_to_byte(text, position.line, 2**31 - 1)
        try:
            at = isolate.function_at(text, offset)
        except SpeedsmithError:
            return None
        for fn in [at] if at is not None and not at.is_nested else []:
            line = def_line(fn)
            if position.line != line:
                continue
            hash_ = function_hash(text, fn)
            entry = self.found.get(uri, {}).get(fn.qualname)
            if entry is None or entry.function_hash != hash_:
                settings, _ = self.state.effective(uri)
                entry = self._lookup(uri, fn.qualname, hash_, settings, self._tests(uri))
            if entry is None:
                return None
            return types.Hover(
                contents=types.MarkupContent(
                    kind=types.MarkupKind.Markdown, value=hover_markdown(entry, fn)
                ),
                range=name_range(text, fn),
            )
        return None

    # -- a background run --------------------------------------------------------------------

    async def _optimize(self, pending: Pending) -> None:
        """The body of a background job (run by the scheduler)."""
        uri = pending.uri
        text = self.state.text(uri)
        path = to_fs_path(uri)
        fns = functions(text) if text is not None else None
        fn = fns.get(pending.qualname) if fns is not None else None
        if text is None or path is None or fn is None:
            return
        if function_hash(text, fn) != pending.function_hash:
            return  # edited since it was saved; the next save queues it again
        settings = await self.state.settings_for(uri)
        if not settings.on_save or pending.cancel.is_set():
            return
        run_settings = background_settings(settings)
        # Walking the project for its tests is I/O: on the job executor.
        tests = await self.scheduler.run_blocking(lambda: tests_fingerprint(Path(path)))
        key = result_key(Path(path), pending.qualname, pending.function_hash, run_settings, tests)
        cached = self.cache.get(key)
        if cached is not None:
            self._remember(uri, cached)
            self.publish(uri)
            return
        self.scheduler.started_run()

        def work() -> CachedResult | OptimizeReport:
            # The engine pulls in numpy/scipy: imported on the worker, not the event loop.
            from speedsmith import engine

            if pending.cancel.is_set():
                raise Cancelled("cancelled before it started")
            report = engine.optimize(
                Path(path), pending.qualname, run_settings, source=text, cancel=pending.cancel
            )
            entry = self.cache.put(key, pending.function_hash, run_settings.budget, report, tests)
            return entry if entry is not None else report

        try:
            outcome = await self.scheduler.run_blocking(work)
        except Cancelled:
            return
        report = outcome.report if isinstance(outcome, CachedResult) else outcome
        self.state.log(f"speedsmith: background {pending.qualname}: {report.summary()}")
        if isinstance(outcome, CachedResult) and self._enabled(uri) and uri in self.baseline:
            self._remember(uri, outcome)
            self.publish(uri)


def def_line(fn: isolate.FunctionInfo) -> int:
    """0-based line of the ``def`` keyword (after any decorators)."""
    return fn.start_line + sum(decorator.count("\n") + 1 for decorator in fn.decorators)


def name_range(text: str, fn: isolate.FunctionInfo) -> types.Range:
    """The range of the function's name on its ``def`` line."""
    line = def_line(fn)
    lines = text.split("\n")
    line_text = lines[line].rstrip("\r") if line < len(lines) else ""
    start = line_text.find(f"def {fn.name}")
    if start < 0:
        return types.Range(
            start=types.Position(line=line, character=0),
            end=types.Position(line=line, character=positions.utf16_units(line_text)),
        )
    start += len("def ")
    return types.Range(
        start=types.Position(line=line, character=positions.utf16_units(line_text[:start])),
        end=types.Position(
            line=line, character=positions.utf16_units(line_text[: start + len(fn.name)])
        ),
    )


def diagnostic_message(report: OptimizeReport) -> str:
    speedup = report.speedup or 1.0
    message = f"verified {speedup:.1f}x faster version available"
    if report.ci95:
        message += f" (95% CI {report.ci95[0]:.1f}-{report.ci95[1]:.1f}x)"
    return message


def diagnostic(text: str, fn: isolate.FunctionInfo, entry: CachedResult) -> types.Diagnostic:
    return types.Diagnostic(
        range=name_range(text, fn),
        message=diagnostic_message(entry.report),
        severity=types.DiagnosticSeverity.Hint,
        source=SOURCE,
        code="faster-version",
        data={"qualname": fn.qualname, "key": entry.key},
    )


def short_diff(original: str, optimized: str) -> str:
    """The function's diff without file headers, at most ``DIFF_LINES`` lines."""
    lines = [
        line.rstrip("\n")
        for line in difflib.unified_diff(
            original.splitlines(), optimized.splitlines(), lineterm="", n=1
        )
        if not line.startswith(("---", "+++"))
    ]
    if len(lines) > DIFF_LINES:
        lines = [*lines[:DIFF_LINES], f"... ({len(lines) - DIFF_LINES} more lines)"]
    return "\n".join(lines)


def _code(text: str) -> str:
    """``text`` as inline Markdown code (a double backtick span when it holds a backtick)."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def hot_lines_markdown(report: OptimizeReport, fn: isolate.FunctionInfo | None = None) -> str:
    """Where the original spent its time over the recorded calls, from the run's profile
    (``OptimizeReport.hot_lines``; nothing is profiled here): up to ``HOT_LINES_SHOWN`` lines,
    numbered where they are now in ``fn`` (else where they were), and the hot region whose
    rewrites the search proposed. '' when the run recorded none."""
    hot = [line for line in report.hot_lines if line.share >= HOT_LINE_SHARE][:HOT_LINES_SHOWN]
    if not hot:
        return ""

    def number(line: int, offset: int) -> int:
        return fn.start_line + offset + 1 if fn is not None else line

    rows = [
        f"- line {number(h.line, h.offset)}: {_code(h.text)} {h.share:.0%} "
        f"({h.hits} {'run' if h.hits == 1 else 'runs'})"
        for h in hot
    ]
    text = "Where it spends its time (profile of the recorded calls):\n\n" + "\n".join(rows)
    region = report.hot_region
    if region is not None:
        first = number(region.start, region.offset)
        last = first + region.end - region.start
        lines = f"line {first}" if first == last else f"lines {first}-{last}"
        text += (
            f"\n\nHot region {lines} ({region.share:.0%} of the time): "
            f"{report.candidates.region} candidates aimed at it"
        )
    return text


def hover_markdown(entry: CachedResult, fn: isolate.FunctionInfo | None = None) -> str:
    """The hover of a cached result; ``fn``: the function where it is now (hot line numbers)."""
    report = entry.report
    if report.verdict == "improved" and report.optimized:
        head = f"**speedsmith**: {diagnostic_message(report)}"
    else:
        head = f"**speedsmith**: {report.summary()}"
    facts = (
        f"Checked against {report.recorded_calls} recorded calls from your tests · "
        f"model `{report.model}` · budget `{entry.budget}`"
    )
    parts = [head, facts]
    if report.verdict == "improved" and report.optimized:
        parts.append("```diff\n" + short_diff(report.original, report.optimized) + "\n```")
        parts.append("Apply it with the quick fix on the `def` line.")
    hot = hot_lines_markdown(report, fn)
    if hot:
        parts.append(hot)
    return "\n\n".join(parts)
