"""The engine: isolate -> workload -> search <-> verify -> edit. Shared by the CLI and the server.

Knows nothing of LSP. Blocking; callers run it off their event loop.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from speedsmith import edits
from speedsmith.errors import Cancelled, SpeedsmithError
from speedsmith.isolate import (
    FunctionInfo,
    Region,
    RegionError,
    RegionInfo,
    collect_context,
    find_function,
    snap_region,
)
from speedsmith.llm.base import Backend
from speedsmith.report import (
    CandidateCounts,
    FunctionEdit,
    HotRegion,
    HotSpot,
    OptimizeReport,
    TokenCounts,
)
from speedsmith.search import budget as budgets
from speedsmith.search.core import SearchResult
from speedsmith.search.prompt import hot_lines_text
from speedsmith.search.region import hot_region, replacement_of
from speedsmith.search.strategies import REVISING, StrategyConfig, run_search
from speedsmith.settings import Settings
from speedsmith.target import Target, interpreter_problem, resolve_target
from speedsmith.verify.verifier import (
    VerifyConfig,
    profile,
    replay_original,
    sandbox_refusal,
    side_effect_refusal,
    verify,
)
from speedsmith.workload import (
    Workload,
    record_workload,
    run_tests_with_candidate,
)

ProgressFn = Callable[[str, str], None]
"""``progress(phase, message)``; phase is one of ``workload``, ``generation``, ``verification``."""


def load_backend(settings: Settings) -> Backend:
    """The configured backend (the llama.cpp model is loaded once and kept)."""
    if settings.backend == "replay":
        from speedsmith.llm.replay import ReplayBackend

        return ReplayBackend.from_file(settings.replay_file)
    if settings.backend == "openai":
        from speedsmith.llm import openai

        return openai.load(settings)
    from speedsmith.llm.llama import load

    return load(
        settings.model_path,
        n_gpu_layers=settings.n_gpu_layers,
        n_ctx=settings.n_ctx,
        n_threads=settings.n_threads,
        batch_width=settings.batch_width,
        speculative_tokens=settings.speculative_tokens,
    )


def model_name(settings: Settings) -> str:
    if settings.backend == "replay":
        return f"replay:{Path(settings.replay_file or '-').name}"
    if settings.backend == "openai":
        return f"openai:{settings.openai_model or '?'}@{settings.openai_base_url}"
    if settings.model_path:
        return Path(settings.model_path).name
    from speedsmith.llm.model import FILE_NAME

    return FILE_NAME


class _Run:
    """One optimisation: its inputs, timings, and the report it ends with."""

    def __init__(
        self,
        path: Path,
        qualname: str,
        settings: Settings,
        source: str | None,
        region: Region | None = None,
    ):
        self.path = path
        self.region = region
        """The lines asked for (0-based, inclusive); ``self.snapped`` once snapped."""
        self.snapped: RegionInfo | None = None
        self.qualname = qualname
        self.settings = settings
        self.source = source
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}
        self.original = ""
        self.recorded_calls = 0
        self.sandbox: tuple[str, ...] = ()
        self.target: Target | None = None
        self.checks: VerifyConfig | None = None
        self.hot_lines: tuple[HotSpot, ...] = ()
        self.hot_region: RegionInfo | None = None
        """The hot region the search proposes rewrites of (``_profile``)."""
        self.hot_share = 0.0

    def report(self, verdict: str, reason: str, **fields: object) -> OptimizeReport:
        self.seconds["total"] = time.perf_counter() - self.started
        return OptimizeReport(
            target=f"{self.path}::{self.qualname}",
            verdict=verdict,  # type: ignore[arg-type]
            reason=reason,
            model=model_name(self.settings),
            original=self.original,
            seconds={k: round(v, 3) for k, v in self.seconds.items()},
            recorded_calls=self.recorded_calls,
            sandbox=self.sandbox,
            python=self.target.python if self.target is not None else "",
            region=(
                (self.snapped.start_line + 1, self.snapped.end_line + 1)
                if self.snapped is not None
                else None
            ),
            hot_lines=self.hot_lines,
            hot_region=(
                HotRegion(
                    self.hot_region.start_line + 1,
                    self.hot_region.end_line + 1,
                    self.hot_share,
                    self.hot_region.first,
                )
                if self.hot_region is not None
                else None
            ),
            **fields,  # type: ignore[arg-type]
        )


def optimize(
    path: Path,
    qualname: str,
    settings: Settings,
    *,
    source: str | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    backend: Backend | None = None,
    region: Region | None = None,
) -> OptimizeReport:
    """Optimise ``qualname`` in the file at ``path``.

    ``region`` (0-based lines of ``source``, inclusive; ``isolate.Region``) asks for a rewrite
    of those statements only: the selection is snapped to whole statements of one block
    (``isolate.snap_region``; one that reaches the ``def`` line means the whole function), the
    model writes only their replacement, and the whole function with it spliced in is verified
    as always. The report's ``region`` gives the lines rewritten (1-based) and its ``edit``
    covers only them, so the rest of the function stays byte for byte.

    ``source`` is the editor's text of the file (defaults to the file on disk); the returned
    report's ``edit`` is relative to it. User-level problems (no tests reach the function,
    syntax errors, missing model...) come back as verdict ``refused``/``error`` with a reason;
    never raises except ``speedsmith.errors.Cancelled`` once ``cancel`` is set.
    """
    run = _Run(Path(path).resolve(), qualname, settings, source, region)
    report = progress or (lambda phase, message: None)
    try:
        return _optimize(run, report, cancel, backend)
    except Cancelled:
        raise
    except SpeedsmithError as err:
        return run.report("error", str(err))


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")


def _optimize(
    run: _Run, progress: ProgressFn, cancel: threading.Event | None, backend: Backend | None
) -> OptimizeReport:
    try:
        disk = run.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return run.report("error", f"cannot read {run.path}: {err}")
    source = run.source if run.source is not None else disk
    fn = find_function(source, run.qualname)  # SourceError / TargetNotFound -> error
    run.original = fn.source
    if fn.is_nested:
        return run.report(
            "refused", f"{run.qualname} is nested in a function: tests cannot call it directly"
        )
    if fn.is_async:
        return run.report(
            "refused",
            f"{run.qualname} is an async function: speedsmith cannot replay and time "
            "coroutines yet",
        )
    try:
        on_disk = find_function(disk, run.qualname).source
    except SpeedsmithError:
        on_disk = None
    if on_disk != fn.source:
        return run.report("refused", f"{run.qualname} has unsaved changes: save the file first")
    if run.region is not None:
        try:
            run.snapped = snap_region(source, fn, run.region)
        except RegionError as err:
            return run.report("refused", str(err))
    weak = sandbox_refusal(run.settings)
    if weak is not None:
        return run.report("refused", weak)
    target = run.target = resolve_target(run.path, run.qualname, run.settings.python)
    problem = interpreter_problem(target)
    if problem is not None:
        return run.report("error", problem)
    checks = run.checks = VerifyConfig.build(target, run.settings)

    with tempfile.TemporaryDirectory(prefix="speedsmith-") as tmp:
        progress("workload", f"Recording calls from the project's tests ({target.python})")
        started = time.perf_counter()

        def tests_done(done: int, total: int) -> None:
            progress("workload", f"Recording calls from the project's tests: {done}/{total}")

        workload = record_workload(
            target,
            max_calls=run.settings.max_recorded_calls,
            timeout=run.settings.workload_timeout_seconds,
            cancel=cancel,
            out_dir=Path(tmp),
            doctests=target.run_doctests or ">>>" in fn.source,
            progress=tests_done,
        )
        run.recorded_calls = workload.calls
        refusal = _refusal(workload, run.qualname)
        allowed: tuple[str, ...] = ()
        if refusal is None:
            progress("workload", f"Checking the original is deterministic ({workload.calls} calls)")
            workload, baseline = replay_original(target, workload, checks, cancel=cancel)
            run.recorded_calls = workload.calls
            if workload.left_out:
                progress(
                    "workload",
                    f"Left out {workload.left_out} calls that depend on their test's set-up",
                )
            run.sandbox = baseline.sandbox_layers
            allowed = baseline.effects
            refusal = side_effect_refusal(run.qualname, baseline, run.settings)
            if refusal is None and not baseline.equivalent:
                refusal = (
                    f"{run.qualname} is not deterministic or cannot be replayed: "
                    f"a second run differs from the recorded one ({baseline.reason})"
                )
        run.seconds["workload"] = time.perf_counter() - started
        if refusal is not None:
            return run.report("refused", refusal)
        _check_cancel(cancel)
        hot_lines, profiled = _profile(run, disk, fn, workload, progress, cancel)

        progress("generation", "Loading the model")
        started = time.perf_counter()
        if backend is None:
            backend = load_backend(run.settings)
        seed = run.settings.seed if run.settings.seed is not None else int(time.time()) % 100000
        budget = budgets.resolve(
            run.settings.budget,
            run.settings.budget_seconds,
            budgets.candidate_tokens(run.snapped.text if run.snapped else fn.source),
        )
        result = run_search(
            fn,
            collect_context(source, fn),
            backend,
            lambda candidate: verify(
                target,
                run.qualname,
                workload,
                candidate,
                checks,
                cancel=cancel,
                allowed_effects=allowed,
            ),
            config=StrategyConfig.from_settings(run.settings),
            budget=budget,
            temperature=run.settings.temperature,
            seed=seed,
            progress=progress,
            cancel=cancel,
            hot_lines=hot_lines,
            region=run.snapped,
            hot_region=run.hot_region,
        )
        run.seconds["generation"] = time.perf_counter() - started - result.verification_seconds
        run.seconds["verification"] = result.verification_seconds + profiled
        return _conclude(run, target, fn, source, workload, result, progress, cancel)


def _profile(
    run: _Run,
    disk: str,
    fn: FunctionInfo,
    workload: Workload,
    progress: ProgressFn,
    cancel: threading.Event | None,
) -> tuple[str, float]:
    """Profile the original over the recorded calls, once per run before the search
    (``verifier.profile``: capped at ``PROFILE_SECONDS``, in the sandbox, counted as
    verification time): its hot lines for revision prompts (returned as text, '' when there
    are none) and the report (``run.hot_lines``, shown by the hover), and the hot region the
    search aims hot-region proposals at (``run.hot_region``, ``region.hot_region``). Runs for
    every strategy, since every strategy makes hot-region proposals; with a selection (no
    hot-region proposals) only for strategies that write revision prompts. Returns the
    seconds it took."""
    if run.snapped is not None and run.settings.strategy not in REVISING:
        return "", 0.0
    progress("verification", f"Profiling {run.qualname} on the recorded calls")
    started = time.perf_counter()
    found = profile(
        run.target or run.path, run.qualname, workload, run.checks or run.settings, cancel=cancel
    )
    try:
        on_disk = find_function(disk, run.qualname)
    except SpeedsmithError:
        return "", time.perf_counter() - started
    # The profile's lines are the file's on disk; ``fn`` may sit elsewhere in the editor's text
    # (the function itself is the same: the engine refuses unsaved changes to it).
    shift = fn.start_line - on_disk.start_line
    lines = fn.source.count("\n") + 1
    run.hot_lines = tuple(
        HotSpot(
            line.line_number + shift,
            line.line_number - 1 - on_disk.start_line,
            round(line.share, 3),
            line.hits,
            line.text,
        )
        for line in found.lines
        if 0 <= line.line_number - 1 - on_disk.start_line < lines
    )
    if run.snapped is None:
        spans = [(b.first_line - 1 + shift, b.last_line - 1 + shift) for b in found.regions]
        chosen = hot_region(run.source if run.source is not None else disk, fn, spans)
        if chosen is not None:
            index, run.hot_region = chosen
            run.hot_share = round(found.regions[index].share, 3)
    return hot_lines_text(found.lines, on_disk), time.perf_counter() - started


def _refusal(workload: Workload, qualname: str) -> str | None:
    """Why the recorded workload cannot verify anything (None: it can)."""
    if workload.run_error:
        return f"could not record calls of {qualname}: {workload.run_error}"
    if workload.error:
        return f"could not record calls of {qualname}: {workload.error}"
    if workload.calls == 0 and workload.skip_reasons:
        return (
            f"no call of {qualname} could be recorded ({workload.skipped} skipped): "
            + "; ".join(workload.skip_reasons)
        )
    if workload.calls == 0:
        why = f" ({workload.skipped} calls could not be recorded)" if workload.skipped else ""
        where = "no test or doctest" if workload.doctests else "no test"
        return f"{where} calls {qualname}: nothing to verify a candidate against{why}"
    return None


def _conclude(
    run: _Run,
    target: Target,
    fn: FunctionInfo,
    source: str,
    workload: Workload,
    result: SearchResult,
    progress: ProgressFn,
    cancel: threading.Event | None,
) -> OptimizeReport:
    counts = CandidateCounts(
        generated=result.generated,
        parsed=result.parsed,
        equivalent=len(result.equivalent),
        faster=len(result.faster),
        truncated=result.truncated,
        tool=result.tool,
        region=result.region,
        unparsed=result.unparsed,
    )
    tokens = TokenCounts(result.prompt_tokens, result.completion_tokens)
    started = time.perf_counter()
    for attempt in result.faster:
        assert attempt.source is not None and attempt.verdict is not None
        progress("verification", "Running the project's tests on the best candidate")
        passed, _output = run_tests_with_candidate(
            target,
            None,
            attempt.source,
            tuple(t for t in workload.reached_tests if t not in workload.failed_tests),
            timeout=run.settings.workload_timeout_seconds,
            cancel=cancel,
            sandbox=run.settings.sandbox,
            network=run.settings.gate_network,
            full_environment=run.settings.gate_full_environment,
        )
        if not passed:
            continue
        run.seconds["verification"] = run.seconds.get("verification", 0.0) + (
            time.perf_counter() - started
        )
        edit = _edit(run, source, fn, attempt.source, attempt.region)
        new_source = edits.apply_edit(source, edit)
        return run.report(
            "improved",
            attempt.verdict.reason,
            # Two decimals, as the verdict's reason shows them (so the figures agree).
            speedup=round(attempt.verdict.speedup or 1.0, 2),
            ci95=tuple(round(x, 2) for x in attempt.verdict.ci95 or (1.0, 1.0)),
            candidates=counts,
            tokens=tokens,
            optimized=attempt.source,
            diff=edits.unified_diff(source, new_source, _display_path(run.path)),
            edit=edit,
        )
    run.seconds["verification"] = run.seconds.get("verification", 0.0) + (
        time.perf_counter() - started
    )
    faster = "none faster" if counts.faster == 0 else f"{counts.faster} faster but failed the tests"
    reason = (
        f"{counts.generated} candidates, {counts.parsed} parsed, "
        f"{counts.equivalent} equivalent, {faster}"
    )
    if result.early_stop:
        reason = f"stopped early, {result.stopped.replace(':', ' -', 1)}; {reason}"
    return run.report("no-improvement", reason, candidates=counts, tokens=tokens)


def _edit(
    run: _Run, source: str, fn: FunctionInfo, candidate: str, hot: RegionInfo | None = None
) -> FunctionEdit:
    """The edit for a verified candidate: only the region's lines when one was asked for, or
    when a hot-region proposal (``hot``) changed nothing outside the hot region."""
    region = run.snapped or hot
    if region is not None:
        replacement = replacement_of(candidate, fn.source, region)
        if replacement is not None:
            return edits.region_edit(source, fn, region, replacement)
    return edits.function_edit(source, fn, candidate)


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return path.name
