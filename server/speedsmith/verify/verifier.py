"""Verify one candidate: equivalence on the recorded workload, then the timing decision."""

from __future__ import annotations

import functools
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speedsmith import compute
from speedsmith.errors import Cancelled
from speedsmith.settings import Settings
from speedsmith.target import Target, resolve_target
from speedsmith.verify.confine import SandboxUnavailable, strongest
from speedsmith.verify.sandbox import Limits, run_harness
from speedsmith.verify.timing import TimingDecision, decide
from speedsmith.workload import Workload, without_calls


@dataclass(frozen=True)
class Verdict:
    equivalent: bool
    reason: str
    mismatches: tuple[str, ...] = ()
    speedup: float | None = None
    ci95: tuple[float, float] | None = None
    faster: bool = False
    rounds: int = 0
    seconds: float = 0.0
    sandboxed_network: bool = False
    """The child ran without network (a fresh network namespace)."""
    read_only_tree: bool = False
    """The child saw the whole filesystem read-only except its scratch directory."""
    sandbox_layers: tuple[str, ...] = ()
    """The confinement layers that were active (``confine.Plan.layers``)."""
    effects: tuple[str, ...] = ()
    """With no candidate: the side effects the original attempted on the recorded calls
    (``write PATH``, ``run CMD``...) and whether it reads the clock or uses randomness; reads
    outside the project are listed too (``read PATH``), they are not side effects."""
    irreproducible: tuple[int, ...] = ()
    """With no candidate: recorded calls that replay differently from their recording, the
    same way on both passes, while every other call replays exactly (their test arranged
    something the replay cannot: a mock, a patched module). ``without_calls`` drops them."""
    instructions_ratio: float | None = None
    """Original's / candidate's CPU instructions over one pass of the recorded calls, a second
    signal beside the timing; None where the counters are not readable (``counters_readable``)."""


@dataclass(frozen=True)
class VerifyConfig:
    """Everything verification needs, built once per run from the settings and the target
    (``VerifyConfig.build``) and handed to every ``verify`` and ``profile`` call."""

    target: Target
    rel_tol: float
    abs_tol: float
    exception_messages: bool
    generated_examples: int
    generated_seconds: float
    timing_max_rounds: int
    timing_max_seconds: float
    min_speedup: float
    sandbox: str
    candidate_timeout_seconds: float
    candidate_memory_mb: int
    instructions: bool
    """The interpreter can count CPU instructions (probed once: ``counters_readable``)."""

    MIN_ROUND_SECONDS = 0.005

    @classmethod
    def build(cls, target: Target, settings: Settings) -> VerifyConfig:
        return cls(
            target=target,
            rel_tol=settings.float_rel_tol,
            abs_tol=settings.float_abs_tol,
            exception_messages=settings.compare_exception_messages,
            generated_examples=settings.generated_examples,
            generated_seconds=settings.generated_seconds,
            timing_max_rounds=settings.timing_max_rounds,
            timing_max_seconds=settings.timing_max_seconds,
            min_speedup=settings.min_speedup,
            sandbox=settings.sandbox,
            candidate_timeout_seconds=settings.candidate_timeout_seconds,
            candidate_memory_mb=settings.candidate_memory_mb,
            instructions=counters_readable(target.python),
        )

    def limits(self, extra_seconds: float = 0.0) -> Limits:
        return Limits(
            cpu_seconds=int(self.candidate_timeout_seconds + extra_seconds) + 5,
            memory_bytes=self.candidate_memory_mb << 20,
        )


def _config_for(file: Any, qualname: str, settings: Settings | VerifyConfig) -> VerifyConfig:
    if isinstance(settings, VerifyConfig):
        return settings
    return VerifyConfig.build(as_target(file, qualname, settings), settings)


def verify(
    file: Any,
    qualname: str,
    workload: Workload,
    candidate: str | None,
    settings: Settings | VerifyConfig,
    *,
    timing: bool = True,
    cancel: threading.Event | None = None,
    allowed_effects: tuple[str, ...] = (),
) -> Verdict:
    """``candidate`` None replays the original itself (a determinism check, no timing).

    ``allowed_effects``: what the original itself attempted (its baseline ``Verdict.effects``);
    a candidate attempting anything else is not equivalent."""
    started = time.perf_counter()
    verify_config = _config_for(file, qualname, settings)
    target = verify_config.target
    config: dict[str, Any] = {
        "sys_path": list(target.sys_path),
        "module": target.module,
        "qualname": target.qualname,
        "workload": str(workload.path),
        "candidate": candidate,
        "rel_tol": verify_config.rel_tol,
        "abs_tol": verify_config.abs_tol,
        "exception_messages": verify_config.exception_messages,
        "generated_examples": verify_config.generated_examples,
        "generated_seconds": verify_config.generated_seconds,
        "allowed_effects": list(allowed_effects),
        "timing": None
        if candidate is None or not timing
        else {
            "max_rounds": verify_config.timing_max_rounds,
            "min_round_seconds": VerifyConfig.MIN_ROUND_SECONDS,
            "instructions": verify_config.instructions,
        },
    }
    original: list[float] = []
    new: list[float] = []
    decision: list[TimingDecision] = []

    def on_message(message: dict[str, Any]) -> bool:
        if message.get("phase") == "equivalence" and not message.get("equivalent"):
            return False
        if message.get("phase") != "round":
            return True
        original.append(float(message["original"]))
        new.append(float(message["candidate"]))
        if len(original) % 2 == 0:
            current = decide(original, new, min_speedup=verify_config.min_speedup)
            if current.state != "undecided":
                decision.append(current)
                return False
        return True

    budget = verify_config.candidate_timeout_seconds + verify_config.timing_max_seconds
    try:
        run = run_harness(
            config,
            read_only_paths=_read_only_paths(target, workload),
            python=target.python,
            sandbox=verify_config.sandbox,
            limits=verify_config.limits(),
            timeout_seconds=budget,
            on_message=on_message,
            cancel=cancel,
            # Equivalence checks may overlap generation; timing rounds never do.
            timing_gate=lambda: compute.exclusive(priority=True),
        )
    except SandboxUnavailable as err:
        return Verdict(False, str(err), (str(err),), seconds=time.perf_counter() - started)
    seconds = time.perf_counter() - started
    by_phase = {m.get("phase"): m for m in run.messages}
    sandbox: dict[str, Any] = {
        "sandboxed_network": run.isolated_network,
        "read_only_tree": run.read_only_tree,
        "sandbox_layers": run.layers,
    }
    if "error" in by_phase:
        return Verdict(False, str(by_phase["error"].get("error")), seconds=seconds, **sandbox)
    if "tampered" in by_phase:
        changes = ", ".join(str(c) for c in by_phase["tampered"].get("changes", []))
        reason = f"changed the harness or module state while timed: {changes}"
        return Verdict(False, reason, (reason,), seconds=seconds, **sandbox)
    equivalence = by_phase.get("equivalence")
    if equivalence is None:
        why = "timed out" if run.timed_out else _exit_reason(run.returncode)
        detail = run.stderr_tail.strip().splitlines()[-1:] if run.stderr_tail.strip() else []
        reason = f"the candidate's process {why} before reporting" + (
            f" ({detail[0][:200]})" if detail else ""
        )
        return Verdict(False, reason, (reason,), seconds=seconds, **sandbox)
    mismatches = tuple(str(m) for m in equivalence.get("mismatches", []))[:5]
    sandbox["effects"] = tuple(str(e) for e in equivalence.get("effects") or ())
    sandbox["irreproducible"] = tuple(int(i) for i in equivalence.get("irreproducible") or ())
    if not equivalence.get("equivalent"):
        return Verdict(
            False,
            mismatches[0] if mismatches else "not equivalent",
            mismatches,
            seconds=seconds,
            **sandbox,
        )
    if config["timing"] is None:
        return Verdict(True, "equivalent", seconds=seconds, **sandbox)
    final = (
        decision[0]
        if decision
        else decide(original, new, min_speedup=verify_config.min_speedup, final=True)
    )
    if final.rounds == 0:
        return Verdict(
            True, "equivalent, but timing produced no rounds", seconds=seconds, **sandbox
        )
    faster = final.state == "faster"
    low, high = final.ci95
    reason = f"{final.speedup:.2f}x (95% CI {low:.2f}-{high:.2f}) over {final.rounds} rounds"
    counted = by_phase.get("instructions")
    ratio = None
    if counted is not None and int(counted.get("candidate") or 0) > 0:
        ratio = int(counted["original"]) / int(counted["candidate"])
        reason += f"; {ratio:.2f}x fewer instructions"
    return Verdict(
        True,
        reason,
        (),
        final.speedup,
        final.ci95,
        faster,
        final.rounds,
        seconds,
        **sandbox,
        instructions_ratio=ratio,
    )


_PROBE = """
import warnings
warnings.simplefilter("ignore")
from cirron import Collector
with Collector() as collector:
    sum(range(1000))
assert collector.counters.instruction_count > 0
"""


@functools.cache
def counters_readable(python: str) -> bool:
    """Whether ``python`` can count CPU instructions (``cirron`` installed, its helper library
    built, perf_event_open permitted). Probed once per interpreter in a child process, which
    also builds the library outside the sandbox (the sandbox cannot write it)."""
    try:
        probe = subprocess.run(
            [python, "-c", _PROBE],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


@dataclass(frozen=True)
class HotLine:
    """One line of the original where its recorded calls spend time."""

    line_number: int
    """Absolute (1-based) line in the module file."""
    hits: int
    seconds: float
    share: float
    """Fraction of all traced seconds (what the line calls counts for the line)."""
    text: str
    """The line's source, stripped."""


@dataclass(frozen=True)
class HotBlock:
    """Consecutive whole statements of one block of the original (``measure.hot_blocks``)."""

    first_line: int
    """Absolute (1-based) line in the module file where the first statement starts."""
    last_line: int
    """Where the last statement ends (inclusive)."""
    seconds: float
    share: float
    """Fraction of all traced seconds (what the statements call counts for them)."""


@dataclass(frozen=True)
class Profile:
    lines: tuple[HotLine, ...] = ()
    """The hottest lines, most time first (at most ``HOT_LINES_KEPT``; empty when profiling
    failed)."""
    calls: int = 0
    """Recorded calls profiled (replay stops after ``PROFILE_SECONDS``)."""
    seconds: float = 0.0
    """Wall time of the profiling run."""
    method: str = ""
    """``sys.monitoring`` (the child's Python is 3.12+) or ``sys.settrace``."""
    blocks: tuple[HotBlock, ...] = ()
    """Every block of statements (a body: the function's, a loop's, an ``if``'s...) that took
    time, most first."""
    regions: tuple[HotBlock, ...] = ()
    """The hot regions, outermost first: the fewest consecutive statements of one block holding
    at least ``HOT_REGION_SHARE`` of the time, then the same inside it while it is a single
    statement with such a block (``measure.hot_blocks``)."""


PROFILE_SECONDS = 2.0
"""Cap on the traced replay (tracing makes the original several times slower)."""
HOT_REGION_SHARE = 0.5
"""A hot region holds at least this share of the original's time."""
HOT_LINES_KEPT = 5


def profile(
    file: Any,
    qualname: str,
    workload: Workload,
    settings: Settings | VerifyConfig,
    *,
    cancel: threading.Event | None = None,
) -> Profile:
    """Hot lines and blocks of the original over the recorded calls (line events in the
    sandbox: ``sys.monitoring`` where the project's Python is 3.12+, else ``sys.settrace``).

    Never raises except ``Cancelled``: any failure gives an empty ``Profile``.
    """
    started = time.perf_counter()
    try:
        verify_config = _config_for(file, qualname, settings)
        target = verify_config.target
        config: dict[str, Any] = {
            "sys_path": list(target.sys_path),
            "module": target.module,
            "qualname": target.qualname,
            "workload": str(workload.path),
            "candidate": None,
            "timing": None,
            "profile": True,
            "profile_seconds": PROFILE_SECONDS,
            "profile_region_share": HOT_REGION_SHARE,
        }
        run = run_harness(
            config,
            read_only_paths=_read_only_paths(target, workload),
            python=target.python,
            sandbox=verify_config.sandbox,
            limits=verify_config.limits(PROFILE_SECONDS),
            timeout_seconds=verify_config.candidate_timeout_seconds + PROFILE_SECONDS,
            cancel=cancel,
        )
        found = next((m for m in run.messages if m.get("phase") == "profile"), None)
        if found is None:
            return Profile(seconds=time.perf_counter() - started)
        source = target.file.read_text(encoding="utf-8").splitlines()
        total = float(found.get("seconds") or 0.0)

        def share(seconds: float) -> float:
            return min(seconds / total, 1.0) if total > 0 else 0.0

        lines: list[HotLine] = []
        for line_number, hits, seconds in found.get("lines", [])[:HOT_LINES_KEPT]:
            number, spent = int(line_number), float(seconds)
            text = source[number - 1].strip() if 0 < number <= len(source) else ""
            lines.append(HotLine(number, int(hits), spent, share(spent), text))

        def blocks(key: str) -> tuple[HotBlock, ...]:
            return tuple(
                HotBlock(int(first), int(last), float(seconds), share(float(seconds)))
                for first, last, seconds in found.get(key) or []
            )

        return Profile(
            tuple(lines),
            int(found.get("calls", 0)),
            time.perf_counter() - started,
            str(found.get("method") or ""),
            blocks("blocks"),
            blocks("regions"),
        )
    except Cancelled:
        raise
    except Exception:
        return Profile(seconds=time.perf_counter() - started)


def replay_original(
    target: Target,
    workload: Workload,
    checks: VerifyConfig,
    *,
    cancel: threading.Event | None = None,
) -> tuple[Workload, Verdict]:
    """The baseline: the original replayed on its own recording (twice, a determinism check).

    Calls whose test arranged what the replay cannot (a mock: ``Verdict.irreproducible``)
    are left out and the rest replayed once more on its own; the final gate still runs those
    tests. Returns the workload to verify candidates on, and the baseline's verdict."""
    baseline = verify(target, target.qualname, workload, None, checks, cancel=cancel)
    if baseline.equivalent and baseline.irreproducible:
        workload = without_calls(workload, baseline.irreproducible)
        baseline = verify(target, target.qualname, workload, None, checks, cancel=cancel)
    return workload, baseline


def sandbox_refusal(settings: Settings) -> str | None:
    """Why candidates cannot run here with the ``sandbox`` setting (None: they can)."""
    try:
        strongest(settings.sandbox)
    except SandboxUnavailable as err:
        return str(err)
    return None


def side_effect_refusal(qualname: str, baseline: Verdict, settings: Settings) -> str | None:
    """Why an original whose replay attempted side effects cannot be verified safely (None
    when it attempted none, or the user opted in with ``allow_side_effects``). Reads and
    listings outside the project are not side effects."""
    effects = [e for e in baseline.effects if not e.startswith(("read ", "list "))]
    if not effects or settings.allow_side_effects:
        return None
    shown = [e if e.startswith(("reads ", "uses ")) else f"tried to {e}" for e in effects[:3]]
    more = f" and {len(effects) - 3} more" if len(effects) > 3 else ""
    return (
        f"{qualname} cannot be verified safely: on the recorded calls it "
        f"{'; '.join(shown)}{more}. Set allowSideEffects = true to verify it anyway (the "
        "sandbox still contains what it does)"
    )


def as_target(file: Any, qualname: str, settings: Settings) -> Target:
    """``file`` itself when it is a ``Target``, else the target it and ``qualname`` name."""
    if isinstance(file, Target):
        return file
    return resolve_target(Path(file), qualname, settings.python)


def _read_only_paths(target: Target, workload: Workload) -> tuple[str, ...]:
    """What the harness reads besides the system and the interpreter."""
    paths = [str(target.root), *target.sys_path, str(workload.path.parent)]
    return tuple(dict.fromkeys(paths))


def _exit_reason(returncode: int | None) -> str:
    signals = {
        -signal.SIGXCPU: "exceeded its CPU time limit",
        -signal.SIGXFSZ: "exceeded its file size limit",
        -signal.SIGSEGV: "crashed (segmentation fault)",
        -signal.SIGKILL: "was killed",
    }
    if returncode is not None and 128 < returncode < 160:
        returncode = 128 - returncode  # bubblewrap reports a child's signal N as 128 + N
    if returncode is not None and returncode in signals:
        return signals[returncode]
    return f"exited with status {returncode}"
