"""``speedsmith verify``: check one given candidate against the original with the project's
tests (the same workload, sandbox, equivalence rules and timing decision as a search)."""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from speedsmith.errors import SpeedsmithError
from speedsmith.isolate import find_function
from speedsmith.search.prompt import extract
from speedsmith.settings import Settings
from speedsmith.target import interpreter_problem, resolve_target
from speedsmith.verify.verifier import (
    VerifyConfig,
    replay_original,
    sandbox_refusal,
    side_effect_refusal,
    verify,
)
from speedsmith.workload import record_workload


@dataclass(frozen=True)
class CheckReport:
    equivalent: bool
    reason: str
    mismatches: tuple[str, ...] = ()
    speedup: float | None = None
    ci95: tuple[float, float] | None = None
    faster: bool = False
    seconds: float = 0.0
    recorded_calls: int = 0
    error: bool = False
    instructions_ratio: float | None = None
    """Instructions original / candidate; None where CPU counters are not readable."""
    sandbox: tuple[str, ...] = ()
    """The confinement layers the candidate ran under."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["mismatches"] = list(self.mismatches)
        data["ci95"] = list(self.ci95) if self.ci95 else None
        data["seconds"] = round(self.seconds, 3)
        data["sandbox"] = list(self.sandbox)
        return data


def check_candidate(
    path: Path,
    qualname: str,
    candidate_source: str,
    settings: Settings,
    *,
    cancel: threading.Event | None = None,
) -> CheckReport:
    """Verify ``candidate_source`` (the new text of the function) against the original."""
    started = time.perf_counter()

    def done(equivalent: bool, reason: str, **fields: Any) -> CheckReport:
        return CheckReport(equivalent, reason, seconds=time.perf_counter() - started, **fields)

    try:
        original = find_function(path.read_text(encoding="utf-8"), qualname)
    except (OSError, UnicodeDecodeError) as err:
        return done(False, f"cannot read {path}: {err}", error=True)
    except SpeedsmithError as err:
        return done(False, str(err), error=True)
    extracted = extract(candidate_source, original, model_reply=False)
    if extracted.source is None:
        return done(False, f"the candidate is not usable: {extracted.error}")
    weak = sandbox_refusal(settings)
    if weak is not None:
        return done(False, weak, error=True)
    target = resolve_target(path, qualname, settings.python)
    problem = interpreter_problem(target)
    if problem is not None:
        return done(False, problem, error=True)
    with tempfile.TemporaryDirectory(prefix="speedsmith-verify-") as tmp:
        workload = record_workload(
            target,
            doctests=target.run_doctests or ">>>" in original.source,
            max_calls=settings.max_recorded_calls,
            timeout=settings.workload_timeout_seconds,
            cancel=cancel,
            out_dir=Path(tmp),
        )
        if workload.run_error or workload.error or workload.calls == 0:
            why = workload.run_error or workload.error
            why = why or f"no test calls {qualname}: nothing to verify against"
            return done(False, why, error=True)
        checks = VerifyConfig.build(target, settings)
        workload, baseline = replay_original(target, workload, checks, cancel=cancel)
        refusal = side_effect_refusal(qualname, baseline, settings)
        if refusal is None and not baseline.equivalent:
            refusal = f"the original is not deterministic: {baseline.reason}"
        if refusal is not None:
            return done(False, refusal, error=True, recorded_calls=workload.calls)
        verdict = verify(
            target,
            qualname,
            workload,
            extracted.source,
            checks,
            cancel=cancel,
            allowed_effects=baseline.effects,
        )
    return done(
        verdict.equivalent,
        verdict.reason,
        mismatches=verdict.mismatches,
        speedup=verdict.speedup,
        ci95=verdict.ci95,
        faster=verdict.faster,
        recorded_calls=workload.calls,
        instructions_ratio=verdict.instructions_ratio,
        sandbox=verdict.sandbox_layers,
    )
