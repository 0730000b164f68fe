"""Run the project's pytest tests in a subprocess with the capture plugin.

``record_workload`` records every call of the target (your tests with your code: trusted, run
as you would run them); ``run_tests_with_candidate`` runs the tests that reached it with a
candidate substituted (the final gate before an edit is offered), confined like the
verification harness (``verify/confine.py``: read-only world, private home and /tmp, no
network, allow-listed environment, every process gone when it ends) and failing when the
candidate was never called. Neither writes to the project: pytest's cache provider is
disabled, output goes to a temporary directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import re
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speedsmith.target import Target, interpreter_problem, resolve_target
from speedsmith.verify import confine
from speedsmith.verify.process import run_child
from speedsmith.verify.sandbox import clean_env
from speedsmith.workload.selection import blocked_plugins, select_test_files, suite_roots

PLUGIN_DIR = Path(__file__).resolve().parent
PLUGIN = "speedsmith_capture"
INTERRUPT_GRACE_SECONDS = 10.0
"""After the time limit, pytest gets this long to stop cleanly (and save what it recorded)."""
ERROR_LINES = 15


@dataclass(frozen=True)
class Workload:
    path: Path
    """The pickle file holding the recorded calls (read by the verification harness)."""
    calls: int
    skipped: int
    """Calls whose arguments or results could not be pickled."""
    truncated: bool
    reached_tests: tuple[str, ...]
    """pytest node ids of the tests that called the target, with absolute paths."""
    failed_tests: tuple[str, ...]
    """Of those, the ones that failed with the original code."""
    original_seconds: float
    """Sum of the recorded calls' durations."""
    error: str
    pytest_output: str
    skip_reasons: tuple[str, ...] = ()
    """Why calls could not be recorded (e.g. ``cannot snapshot `self` (X): ...``)."""
    run_error: str = ""
    """The test run itself failed (collection or import errors, INTERNALERROR, the time
    limit): what happened, with pytest's own error lines."""
    doctests: bool = False
    """The module's doctests were part of the run."""
    selected_files: int = 0
    """Test files run when the suite was narrowed to those that can reach the target (0:
    the whole suite ran)."""
    python: str = ""
    """The interpreter the tests ran in."""
    left_out: int = 0
    """Recorded calls left out because they replay differently outside their test (it
    arranged something the replay cannot, e.g. a mock): ``without_calls``."""


def _as_target(file: Path | Target, qualname: str | None, python: str | None) -> Target:
    if isinstance(file, Target):
        return file
    assert qualname is not None
    return resolve_target(Path(file), qualname, python)


def _env(
    target: Target, config: dict[str, Any], base: dict[str, str] | None = None
) -> dict[str, str]:
    env = dict(os.environ) if base is None else dict(base)
    extra = [str(PLUGIN_DIR), *target.sys_path]
    if env.get("PYTHONPATH"):
        extra.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(extra)
    env["SPEEDSMITH_CAPTURE"] = json.dumps(config)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONHASHSEED"] = "0"  # the harness replays with the same seed
    env.pop("PYTEST_ADDOPTS", None)
    if target.interpreter.source != "speedsmith":
        # speedsmith's own virtualenv must not leak into the project's interpreter.
        env.pop("VIRTUAL_ENV", None)
        env.pop("PYTHONHOME", None)
    return env


def _config(target: Target, mode: str, out: Path, **extra: Any) -> dict[str, Any]:
    return {
        "mode": mode,
        "module": target.module,
        "qualname": target.qualname,
        "sys_path": list(target.sys_path),
        "module_file": str(target.file),
        "out": str(out),
        **extra,
    }


def _pytest_flags(target: Target, mode: str, doctests: bool) -> list[str]:
    """Flags of every run: our plugin, nothing written to the project, no reordering, one
    process (so every call is seen here), no coverage files."""
    flags = ["-q", "-p", PLUGIN, "-p", "no:cacheprovider", "-p", "no:randomly", "--color=no"]
    for name in blocked_plugins(target):
        flags += ["-p", f"no:{name}"]
    addopts = target.pytest.addopts
    if any(a == "-n" or a.startswith(("-n", "--numprocesses")) for a in addopts):
        flags += ["-n", "0"]
    if any(a.startswith("--cov") for a in addopts):
        flags.append("--no-cov")
    if doctests:
        flags.append("--doctest-modules")
    flags.append("-x" if mode == "substitute" else "--continue-on-collection-errors")
    return flags


def _run_pytest(
    target: Target,
    config: dict[str, Any],
    args: list[str],
    *,
    timeout: float,
    cancel: threading.Event | None,
    prefix: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    doctests: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, str, bool]:
    """(exit status, output tail, hit the time limit). At the limit pytest is interrupted
    (it then saves what it recorded) and killed ``INTERRUPT_GRACE_SECONDS`` later."""
    command = [target.python, "-m", "pytest", *_pytest_flags(target, config["mode"], doctests)]
    command = [*prefix, *command, *args]
    counter = Path(config["progress"]) if config.get("progress") else None

    def tick() -> None:
        if counter is not None and progress is not None:
            _report_progress(counter, progress)

    with tempfile.TemporaryFile() as output:
        end = run_child(
            command,
            cwd=target.root,
            env=env if env is not None else _env(target, config),
            timeout_seconds=timeout,
            cancel=cancel,
            output=output,
            interrupt_grace_seconds=INTERRUPT_GRACE_SECONDS,
            on_tick=tick,
        )
        output.seek(0)
        text = output.read()[-20000:].decode("utf-8", "replace")
    return end.returncode if end.returncode is not None else -9, text, end.interrupted


def _report_progress(counter: Path, progress: Callable[[int, int], None]) -> None:
    try:
        done, total = (int(x) for x in counter.read_text(encoding="ascii").split()[:2])
    except (OSError, ValueError):
        return
    progress(done, total)


def record_workload(
    file: Path | Target,
    qualname: str | None = None,
    *,
    python: str | None = None,
    max_calls: int = 200,
    timeout: float = 120.0,
    cancel: threading.Event | None = None,
    out_dir: Path,
    doctests: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Workload:
    """Run the project's tests once, recording the target's calls into ``out_dir``.

    ``file`` is a ``Target`` (or a file, resolved with ``qualname`` and ``python``).
    ``doctests``: also run the module's doctests (default: when the project runs them).
    In a large suite only the test files that can reach the target run first; when they
    record nothing, the whole suite runs. ``progress(done, total)`` counts tests."""
    target = _as_target(file, qualname, python)
    run_doctests = target.run_doctests if doctests is None else doctests
    selected = select_test_files(target)
    workload = _record(
        target, selected, run_doctests, max_calls, timeout, cancel, out_dir, progress
    )
    if selected is not None and workload.calls == 0 and not workload.run_error:
        workload = _record(
            target, None, run_doctests, max_calls, timeout, cancel, out_dir, progress
        )
    return workload


def _record(
    target: Target,
    selected: tuple[Path, ...] | None,
    doctests: bool,
    max_calls: int,
    timeout: float,
    cancel: threading.Event | None,
    out_dir: Path,
    progress: Callable[[int, int], None] | None,
) -> Workload:
    out = out_dir / "workload.pkl"
    out.unlink(missing_ok=True)
    config = _config(
        target,
        "record",
        out,
        max_calls=max_calls,
        doctests=doctests,
        progress=str(out_dir / "progress.txt"),
    )
    args: list[str] = []
    if selected is not None:
        args = [str(f) for f in selected]
    elif doctests:
        args = [str(p) for p in suite_roots(target)]
    if doctests and args:
        args.append(str(target.file))
    code, output, timed_out = _run_pytest(
        target,
        config,
        args,
        timeout=timeout,
        cancel=cancel,
        doctests=doctests,
        progress=progress,
    )
    base: dict[str, Any] = {
        "doctests": doctests,
        "selected_files": len(selected or ()),
        "python": target.python,
    }
    if not out.exists():
        return _empty(out, _run_failure(target, code, output, timed_out, timeout), output, **base)
    with out.open("rb") as handle:
        data = pickle.load(handle)
    # Node ids are relative to pytest's rootdir, which may differ from the folder pytest runs
    # in: keep them absolute so a later run can select them from anywhere.
    rootdir = Path(data["rootdir"] or target.root)
    reached = tuple(_absolute(rootdir, node) for node in data["reached"] if node)
    outcomes = {_absolute(rootdir, node): outcome for node, outcome in data["tests"].items()}
    run_error = ""
    if timed_out:
        run_error = _timeout_message(timeout, len(data["calls"]))
    elif not data["calls"] and (code not in (0, 1) or _had_errors(output)):
        run_error = _run_failure(target, code, output, False, timeout)
    return Workload(
        path=out,
        calls=len(data["calls"]),
        skipped=int(data["skipped"]),
        truncated=bool(data["truncated"]) or (timed_out and bool(data["calls"])),
        reached_tests=reached,
        failed_tests=tuple(t for t in reached if outcomes.get(t, "passed") != "passed"),
        original_seconds=sum(float(c["seconds"]) for c in data["calls"]),
        error=str(data["error"]),
        pytest_output=output,
        skip_reasons=tuple(str(r) for r in data.get("skip_reasons", ()))[:5],
        run_error=run_error if not data["calls"] else "",
        **base,
    )


EXIT_CODES = {
    2: "was interrupted (collection errors)",
    3: "hit an internal error (INTERNALERROR)",
    4: "was given bad arguments or configuration (usage error)",
    5: "collected no tests",
}


def _run_failure(target: Target, code: int, output: str, timed_out: bool, timeout: float) -> str:
    """Why the test run produced nothing, with pytest's own error lines."""
    if timed_out:
        return _timeout_message(timeout, 0)
    if "No module named pytest" in output:
        return interpreter_problem(target) or output.strip()[-500:]
    what = EXIT_CODES.get(code, f"exited with status {code}")
    if code == 1 and _had_errors(output):
        what = "reported errors (collection, import or fixture errors)"
    lines = error_lines(output)
    shown = "\n".join(lines) if lines else output.strip()[-1500:]
    return f"the project's tests did not run: pytest {what} under {target.python}:\n{shown}"


def _had_errors(output: str) -> bool:
    """pytest's summary counts errors (collection, import or fixture errors, not failures)."""
    summary = next((line for line in reversed(output.splitlines()) if line.strip()), "")
    return re.search(r"\b\d+ errors?\b", summary) is not None


def _timeout_message(timeout: float, calls: int) -> str:
    kept = f"; the {calls} calls recorded so far are used" if calls else ""
    return (
        f"the project's tests took longer than the {timeout:.0f} s limit "
        f"(setting workloadTimeoutSeconds){kept}"
    )


ERROR_MARKERS = ("E   ", "ERROR ", "INTERNALERROR", "ImportError", "ModuleNotFoundError")


def error_lines(output: str) -> list[str]:
    """pytest's error lines from its output (the last ``ERROR_LINES``)."""
    picked = [
        line.rstrip()
        for line in output.splitlines()
        if line.startswith(ERROR_MARKERS) or "Error" in line.split(":", 1)[0]
    ]
    return picked[-ERROR_LINES:]


def without_calls(workload: Workload, indices: tuple[int, ...]) -> Workload:
    """``workload`` less the recorded calls at ``indices`` (rewritten beside the original:
    ``<name>.kept.pkl``); what is left is counted again."""
    with workload.path.open("rb") as handle:
        data = pickle.load(handle)
    dropped = set(indices)
    data["calls"] = [c for i, c in enumerate(data["calls"]) if i not in dropped]
    path = workload.path.with_suffix(".kept.pkl")
    with path.open("wb") as handle:
        pickle.dump(data, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return dataclasses.replace(
        workload,
        path=path,
        calls=len(data["calls"]),
        original_seconds=sum(float(c["seconds"]) for c in data["calls"]),
        left_out=workload.left_out + len(dropped),
    )


def _absolute(rootdir: Path, node: str) -> str:
    """``rootdir/path::rest`` without touching ``rest`` (parameter ids may hold ``//``)."""
    path, separator, rest = node.partition("::")
    return f"{rootdir / path}{separator}{rest}"


def _empty(out: Path, error: str, output: str, **fields: Any) -> Workload:
    return Workload(out, 0, 0, False, (), (), 0.0, "", output, run_error=error, **fields)


def run_tests_with_candidate(
    file: Path | Target,
    qualname: str | None,
    candidate: str,
    tests: tuple[str, ...],
    *,
    python: str | None = None,
    timeout: float = 120.0,
    cancel: threading.Event | None = None,
    sandbox: str = "auto",
    network: bool = False,
    full_environment: bool = False,
) -> tuple[bool, str]:
    """Run ``tests`` (node ids) with the candidate substituted: (all passed, pytest output).

    ``file`` is a ``Target`` (or a file, resolved with ``qualname`` and ``python``). Confined
    by ``sandbox`` (a ``Settings.sandbox`` mode); ``network`` and ``full_environment`` open the
    two doors a suite may need. Fails when the candidate was never called. With no tests
    (every test that reached the function already failed with the original) there is nothing
    to run: (True, ...)."""
    if not tests:
        return True, "no passing test reaches the function"
    target = _as_target(file, qualname, python)
    doctests = any(node.partition("::")[0] == str(target.file) for node in tests)
    with tempfile.TemporaryDirectory(prefix="speedsmith-gate-") as tmp:
        scratch = Path(tmp)
        counts = scratch / "calls.json"
        config = _config(target, "substitute", counts, candidate=candidate, doctests=doctests)
        try:
            plan = confine.plan(
                sandbox,
                scratch=scratch,
                read_only=(
                    str(target.root),
                    *target.sys_path,
                    str(PLUGIN_DIR),
                    *_test_files(target.root, tests),
                ),
                python=target.python,
                network=network,
                restrict_reads=False,
                cwd=target.root,
            )
        except confine.SandboxUnavailable as err:
            return False, str(err)
        env = _env(target, config, None if full_environment else clean_env(scratch))
        env["HOME"] = env["TMPDIR"] = str(scratch)
        jail = (target.python, "-s", "-B", str(confine.JAIL), json.dumps(plan.world), "--")
        args = [*tests, f"--basetemp={scratch / 'basetemp'}"]
        code, output, timed_out = _run_pytest(
            target,
            config,
            args,
            timeout=timeout,
            cancel=cancel,
            prefix=(*plan.prefix, *jail),
            env=env,
            doctests=doctests,
        )
        if timed_out:
            return False, f"the tests took longer than {timeout:.0f} s\n{output}"
        try:
            called = int(json.loads(counts.read_text(encoding="utf-8"))["calls"])
        except (OSError, ValueError, KeyError, TypeError):
            called = 0
    if code == 0 and called == 0:
        return False, f"the tests never called the candidate {target.qualname}\n{output}"
    return code == 0, output


def _test_files(root: Path, tests: tuple[str, ...]) -> list[str]:
    """The folders of the test files (they may lie outside the project root)."""
    folders = {str((root / node.partition("::")[0]).resolve().parent) for node in tests}
    return sorted(f for f in folders if os.path.isdir(f))
