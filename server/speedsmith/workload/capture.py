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

import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speedsmith.errors import Cancelled
from speedsmith.verify import confine
from speedsmith.verify.sandbox import clean_env

PLUGIN_DIR = Path(__file__).resolve().parent
PLUGIN = "speedsmith_capture"
ROOT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", "pytest.ini", "tox.ini", ".git")


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


def project_root(path: Path) -> Path:
    """The nearest folder above ``path`` holding a project marker, else the file's folder."""
    for folder in path.resolve().parents:
        if any((folder / marker).exists() for marker in ROOT_MARKERS):
            return folder
    return path.resolve().parent


def module_location(path: Path) -> tuple[Path, str]:
    """(sys.path entry, dotted module name) for a module file: packages are folders with
    ``__init__.py``."""
    path = path.resolve()
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    return folder, ".".join(parts)


def _env(config: dict[str, Any], base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ) if base is None else dict(base)
    extra = [str(PLUGIN_DIR), config["sys_path"]]
    if env.get("PYTHONPATH"):
        extra.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(extra)
    env["SPEEDSMITH_CAPTURE"] = json.dumps(config)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONHASHSEED"] = "0"  # the harness replays with the same seed
    env.pop("PYTEST_ADDOPTS", None)
    return env


def _run_pytest(
    python: str,
    root: Path,
    config: dict[str, Any],
    args: list[str],
    *,
    timeout: float,
    cancel: threading.Event | None,
    prefix: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> tuple[int, str]:
    command = [python, "-m", "pytest", "-q", "-p", PLUGIN, "-p", "no:cacheprovider"]
    command += ["-p", "no:randomly", "--color=no", "-x" if config["mode"] == "substitute" else ""]
    command = [*prefix, *(c for c in command if c), *args]
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=env if env is not None else _env(config),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        try:
            while process.poll() is None:
                if cancel is not None and cancel.is_set():
                    raise Cancelled("cancelled")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the tests took longer than {timeout:.0f} s")
                time.sleep(0.05)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, 9)
                process.wait()
        output.seek(0)
        text = output.read()[-20000:].decode("utf-8", "replace")
    return process.returncode, text


def record_workload(
    file: Path,
    qualname: str,
    *,
    python: str | None = None,
    max_calls: int = 200,
    timeout: float = 120.0,
    cancel: threading.Event | None = None,
    out_dir: Path,
) -> Workload:
    """Run the project's tests once, recording the target's calls into ``out_dir``."""
    root = project_root(file)
    sys_path, module = module_location(file)
    out = out_dir / "workload.pkl"
    config = {
        "mode": "record",
        "module": module,
        "qualname": qualname,
        "sys_path": str(sys_path),
        "out": str(out),
        "max_calls": max_calls,
    }
    try:
        _code, output = _run_pytest(
            python or sys.executable, root, config, [], timeout=timeout, cancel=cancel
        )
    except TimeoutError as err:
        return _empty(out, str(err), "")
    if not out.exists():
        return _empty(out, "pytest did not run (is pytest installed for this interpreter?)", output)
    with out.open("rb") as handle:
        data = pickle.load(handle)
    # Node ids are relative to pytest's rootdir, which may differ from the folder pytest runs
    # in: keep them absolute so a later run can select them from anywhere.
    rootdir = Path(data["rootdir"] or root)
    reached = tuple(_absolute(rootdir, node) for node in data["reached"] if node)
    outcomes = {_absolute(rootdir, node): outcome for node, outcome in data["tests"].items()}
    return Workload(
        path=out,
        calls=len(data["calls"]),
        skipped=int(data["skipped"]),
        truncated=bool(data["truncated"]),
        reached_tests=reached,
        failed_tests=tuple(t for t in reached if outcomes.get(t, "passed") != "passed"),
        original_seconds=sum(float(c["seconds"]) for c in data["calls"]),
        error=str(data["error"]),
        pytest_output=output,
    )


def _absolute(rootdir: Path, node: str) -> str:
    """``rootdir/path::rest`` without touching ``rest`` (parameter ids may hold ``//``)."""
    path, separator, rest = node.partition("::")
    return f"{rootdir / path}{separator}{rest}"


def _empty(out: Path, error: str, output: str) -> Workload:
    return Workload(out, 0, 0, False, (), (), 0.0, error, output)


def run_tests_with_candidate(
    file: Path,
    qualname: str,
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

    Confined by ``sandbox`` (a ``Settings.sandbox`` mode); ``network`` and
    ``full_environment`` open the two doors a suite may need. Fails when the candidate was
    never called. With no tests (every test that reached the function already failed with
    the original) there is nothing to run: (True, ...)."""
    if not tests:
        return True, "no passing test reaches the function"
    root = project_root(file)
    sys_path, module = module_location(file)
    python = shutil.which(python) or python if python else sys.executable
    with tempfile.TemporaryDirectory(prefix="speedsmith-gate-") as tmp:
        scratch = Path(tmp)
        counts = scratch / "calls.json"
        config = {
            "mode": "substitute",
            "module": module,
            "qualname": qualname,
            "sys_path": str(sys_path),
            "candidate": candidate,
            "out": str(counts),
        }
        try:
            plan = confine.plan(
                sandbox,
                scratch=scratch,
                read_only=(str(root), str(sys_path), str(PLUGIN_DIR), *_test_files(root, tests)),
                python=python,
                network=network,
                restrict_reads=False,
                cwd=root,
            )
        except confine.SandboxUnavailable as err:
            return False, str(err)
        env = _env(config, None if full_environment else clean_env(scratch))
        env["HOME"] = env["TMPDIR"] = str(scratch)
        jail = (python, "-s", "-B", str(confine.JAIL), json.dumps(plan.world), "--")
        args = [*tests, f"--basetemp={scratch / 'basetemp'}"]
        try:
            code, output = _run_pytest(
                python,
                root,
                config,
                args,
                timeout=timeout,
                cancel=cancel,
                prefix=(*plan.prefix, *jail),
                env=env,
            )
        except TimeoutError as err:
            return False, str(err)
        try:
            called = int(json.loads(counts.read_text(encoding="utf-8"))["calls"])
        except (OSError, ValueError, KeyError, TypeError):
            called = 0
    if code == 0 and called == 0:
        return False, f"the tests never called the candidate {qualname}\n{output}"
    return code == 0, output


def _test_files(root: Path, tests: tuple[str, ...]) -> list[str]:
    """The folders of the test files (they may lie outside the project root)."""
    folders = {str((root / node.partition("::")[0]).resolve().parent) for node in tests}
    return sorted(f for f in folders if os.path.isdir(f))
