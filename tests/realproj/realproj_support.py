"""Run the capture plugin and the verification harness on a copy of a fixture project.

The parent side (``speedsmith.workload.capture``, ``speedsmith.verify.verifier``) is left out
on purpose: these helpers start pytest with ``-p speedsmith_capture`` and the harness with a
config file exactly as the contract between parent and children says, so the children are
tested on their own.
"""

from __future__ import annotations

import json
import os
import pickle
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PLUGIN_DIR = REPO / "server" / "speedsmith" / "workload"
HARNESS = REPO / "server" / "speedsmith" / "verify" / "harness.py"
PROJECTS = Path(__file__).resolve().parent / "projects"
TIMEOUT = 120


def copy_project(name: str, tmp_path: Path) -> Path:
    """A fresh copy of ``projects/NAME`` (never run anything in the fixture folder itself)."""
    target = tmp_path / name
    shutil.copytree(
        PROJECTS / name, target, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache")
    )
    return target


def _env(config: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PLUGIN_DIR), *config["sys_path"]])
    env["SPEEDSMITH_CAPTURE"] = json.dumps(config)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONHASHSEED"] = "0"
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env.pop("PYTEST_ADDOPTS", None)
    return env


def run_pytest(root: Path, config: dict[str, Any], args: list[str]) -> tuple[int, str]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "speedsmith_capture"]
    command += ["-p", "no:cacheprovider", "--color=no", *args]
    process = subprocess.run(
        command,
        cwd=root,
        env=_env(config),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    return process.returncode, process.stdout + process.stderr


@dataclass
class Recording:
    data: dict[str, Any]
    path: Path
    output: str

    @property
    def calls(self) -> list[dict[str, Any]]:
        return list(self.data["calls"])

    def tests(self) -> list[str]:
        return [call["test"] for call in self.calls]


def record(
    root: Path,
    module: str,
    qualname: str,
    args: list[str],
    *,
    doctests: bool = False,
    extra: dict[str, Any] | None = None,
) -> Recording:
    out = root.parent / f"{root.name}-{qualname}-workload.pkl"
    config = {
        "mode": "record",
        "module": module,
        "qualname": qualname,
        "sys_path": [str(root)],
        "out": str(out),
        "max_calls": 200,
        "doctests": doctests,
        **(extra or {}),
    }
    _code, output = run_pytest(root, config, [*args, "--continue-on-collection-errors"])
    assert out.exists(), output
    with out.open("rb") as handle:
        data = pickle.load(handle)  # bytes and plain values only: no project import needed
    return Recording(data, out, output)


@dataclass
class Gate:
    passed: bool
    calls: int
    output: str


def substitute(
    root: Path,
    module: str,
    qualname: str,
    candidate: str,
    args: list[str],
    *,
    doctests: bool = False,
    extra: dict[str, Any] | None = None,
) -> Gate:
    out = root.parent / f"{root.name}-{qualname}-gate.json"
    out.unlink(missing_ok=True)
    config = {
        "mode": "substitute",
        "module": module,
        "qualname": qualname,
        "sys_path": [str(root)],
        "candidate": candidate,
        "out": str(out),
        "doctests": doctests,
        **(extra or {}),
    }
    code, output = run_pytest(root, config, [*args, "-x"])
    calls = json.loads(out.read_text(encoding="utf-8"))["calls"] if out.exists() else 0
    return Gate(code == 0, int(calls), output)


def replay(
    root: Path,
    module: str,
    qualname: str,
    workload: Path,
    candidate: str | None,
    *,
    python: str = sys.executable,
) -> dict[str, Any]:
    """The harness's ``equivalence`` message (or ``error``) for ``candidate`` (None: the
    original against its own recording), run by ``python`` without a sandbox or timing."""
    nonce = secrets.token_hex(8)
    config = {
        "nonce": nonce,
        "sys_path": [str(root)],
        "module": module,
        "qualname": qualname,
        "workload": str(workload),
        "candidate": candidate,
        "rel_tol": 1e-9,
        "abs_tol": 0.0,
        "exception_messages": True,
        "generated_examples": 0,
        "generated_seconds": 0.0,
        "allowed_effects": [],
        "timing": None,
        "world": {},
        "limits": {},
    }
    config_path = root.parent / f"harness-{nonce}.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONHASHSEED": "0"}
    process = subprocess.run(
        [python, "-s", "-B", str(HARNESS), str(config_path)],
        cwd=root.parent,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    messages = []
    for line in process.stdout.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("nonce") == nonce:
            messages.append(message)
    for message in messages:
        if message.get("phase") in ("equivalence", "error"):
            return dict(message)
    raise AssertionError(f"no verdict from the harness: {process.stdout}\n{process.stderr}")
